"""Sign-in, the session cookie, CSRF, tenancy and the routes the API keeps, over real HTTP (no browser)."""

from __future__ import annotations

from pathlib import Path

import httpx
from runs_helpers import MAPPING, qa_rows, runs_server, upload
from web_helpers import csrf_of, session_client

from conftest import RunningServer


def test_pages_redirect_to_sign_in_and_a_bad_key_is_refused(web_server: RunningServer) -> None:
    with httpx.Client(base_url=web_server.base_url) as client:
        answer = client.get("/datasets/ds_x/compare?offset=5")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?next=/datasets/ds_x/compare%3Foffset%3D5"
        refused = client.post("/login", data={"api_key": "dm_not-a-key"})
        assert refused.status_code == 401
        assert "unknown or revoked API key" in refused.text
        assert "datamill_session" not in refused.cookies
        script = client.get("/datasets/ds_x/status.json", headers={"accept": "application/json"})
        assert script.status_code == 401
        assert script.json()["message"].startswith("sign in first")


def test_session_cookie_is_httponly_lax_expiring_and_holds_no_key(web_server: RunningServer) -> None:
    key = web_server.new_key()
    with httpx.Client(base_url=web_server.base_url) as client:
        answer = client.post("/login", data={"api_key": key, "next": "//evil.example/x"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/datasets"  # never off-site
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("datamill_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Max-Age=43200" in cookie
    assert "Secure" not in cookie  # plain http here; https requests get Secure
    assert key not in cookie
    assert key[3:] not in cookie


def test_a_tampered_or_revoked_session_signs_out(web_server: RunningServer) -> None:
    key = web_server.new_key()
    with session_client(web_server.base_url, key) as client:
        assert client.get("/datasets").status_code == 200
        token = client.cookies["datamill_session"]
        payload, _, signature = token.partition(".")
        client.cookies.set("datamill_session", f"{payload}x.{signature}")
        assert client.get("/datasets").status_code == 303
        client.cookies.set("datamill_session", token)
        assert client.get("/datasets").status_code == 200
        assert web_server.context.tenants.revoke_key(key[:11]) == 1
        assert client.get("/datasets").status_code == 303


def test_posts_need_the_sessions_csrf_token(web_server: RunningServer) -> None:
    with session_client(web_server.base_url, web_server.new_key()) as client:
        body = {"name": "a.csv", "size_bytes": 10}
        refused = client.post("/datasets/upload", json=body, headers={"accept": "application/json"})
        assert refused.status_code == 403
        assert "CSRF" in refused.json()["message"]
        wrong = client.post("/datasets/upload", json=body, headers={"x-csrf-token": "0" * 64})
        assert wrong.status_code == 403
        assert client.post("/logout").status_code == 403
        token = csrf_of(client)
        made = client.post("/datasets/upload", json=body, headers={"x-csrf-token": token})
        assert made.status_code == 201, made.text
        assert made.json()["upload_url"].startswith("/_uploads/")
        out = client.post("/logout", data={"csrf_token": token})
        assert out.status_code == 303
        assert client.get("/datasets").status_code == 303


def test_upload_flow_and_bad_input_answers_naming_the_field(web_server: RunningServer) -> None:
    with session_client(web_server.base_url, web_server.new_key()) as client:
        headers = {"x-csrf-token": csrf_of(client), "accept": "application/json"}
        bad = client.post("/datasets/upload", json={"name": "notes.rtf"}, headers=headers)
        assert bad.status_code == 400
        assert bad.json()["errors"][0]["field"] == "source.file_format"
        made = client.post("/datasets/upload", json={"name": "qa.csv"}, headers=headers).json()
        data = b"question,answer\nq1,a1\nq2,a2\n"
        assert client.put(made["upload_url"], content=data).status_code == 200
        short = client.post(
            f"/datasets/{made['dataset_id']}/upload/complete", json={"size_bytes": 3}, headers=headers
        )
        assert short.status_code == 400
        assert short.json()["errors"][0]["field"] == "file_size_bytes"
        done = client.post(
            f"/datasets/{made['dataset_id']}/upload/complete", json={"size_bytes": len(data)}, headers=headers
        )
        assert done.status_code == 200
        assert done.json()["url"] == f"/datasets/{made['dataset_id']}"


def test_adapt_check_gives_the_apis_issues_and_an_estimate(web_server: RunningServer, tmp_path: Path) -> None:
    key = web_server.new_key()
    sdk = web_server.client(key=key)
    dataset_id = upload(sdk, tmp_path / "qa.jsonl", qa_rows(6))
    body = {"column_mapping": {"prompt": "question", "completion": "question"}}
    with session_client(web_server.base_url, key) as client:
        headers = {"x-csrf-token": csrf_of(client), "accept": "application/json"}
        bad = client.post(f"/datasets/{dataset_id}/adapt/check", json=body, headers=headers)
        api = httpx.post(
            f"{web_server.base_url}/api/v1/datasets/{dataset_id}/adapt",
            json=body | {"estimate": True},
            headers={"authorization": f"Bearer {key}"},
        )
        assert bad.status_code == api.status_code == 400
        assert bad.json()["errors"] == api.json()["errors"]
        assert bad.json()["errors"][0]["field"] == "column_mapping.completion"
        missing = {"column_mapping": {"prompt": "nope"}}
        answer = client.post(f"/datasets/{dataset_id}/adapt/check", json=missing, headers=headers)
        assert answer.status_code == 400
        assert "available columns" in answer.json()["errors"][0]["reason"]
        good = client.post(
            f"/datasets/{dataset_id}/adapt/check", json={"column_mapping": MAPPING}, headers=headers
        )
        assert good.status_code == 200, good.text
        estimate = good.json()
        assert estimate["rows_in"] == 6
        assert estimate["rows_out"] == 6
        assert estimate["credits"] > 0
        assert estimate["calls"] > 0


def test_other_tenants_ids_are_not_found(web_server: RunningServer, tmp_path: Path) -> None:
    owner = web_server.client()
    dataset_id = upload(owner, tmp_path / "qa.csv", qa_rows(3))
    with session_client(web_server.base_url, web_server.new_key()) as client:
        listing = client.get("/datasets").text
        assert dataset_id not in listing
        for path in ("", "/adapt", "/run", "/compare", "/report", "/download/csv", "/status.json"):
            answer = client.get(f"/datasets/{dataset_id}{path}")
            assert answer.status_code == 404, path
            assert f"dataset &#39;{dataset_id}&#39; not found" in answer.text or dataset_id in answer.text
        headers = {"x-csrf-token": csrf_of(client)}
        check = client.post(
            f"/datasets/{dataset_id}/adapt/check", json={"column_mapping": MAPPING}, headers=headers
        )
        assert check.status_code == 404


def test_the_api_docs_and_health_still_answer(web_server: RunningServer) -> None:
    with httpx.Client(base_url=web_server.base_url) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/docs").status_code == 200
        unknown = client.get("/api/v1/nope")
        assert unknown.status_code == 404
        assert unknown.json()["message"].startswith("no such route")
        assert client.get("/static/app.js").status_code == 200
        page = client.get("/no/such/page", headers={"cookie": ""})
        assert page.status_code == 404
        assert "text/html" in page.headers["content-type"]


def test_the_cookie_is_secure_behind_an_https_public_url(tmp_path: Path) -> None:
    with runs_server(tmp_path, public_url="https://data.example") as running:
        answer = httpx.post(f"{running.base_url}/login", data={"api_key": running.new_key()})
    assert answer.status_code == 303
    assert "Secure" in answer.headers["set-cookie"]


def test_publish_answers_on_the_page(web_server: RunningServer, tmp_path: Path) -> None:
    key = web_server.new_key()
    dataset_id = upload(web_server.client(key=key), tmp_path / "qa.csv", qa_rows(3))
    with session_client(web_server.base_url, key) as client:
        form = {"csrf_token": csrf_of(client), "target": "local", "location": str(tmp_path / "out")}
        answer = client.post(f"/datasets/{dataset_id}/publish", data=form)
        assert answer.status_code == 400
        assert "text/html" in answer.headers["content-type"]
        assert "DATAMILL_PUBLISH_ROOTS" in answer.text
        assert (
            client.post(f"/datasets/{dataset_id}/publish", data=form | {"csrf_token": "x"}).status_code == 403
        )


def test_signing_out_ends_the_session_on_the_server(web_server: RunningServer) -> None:
    """A copy of the cookie taken before sign-out no longer works after it (the server revoked it)."""
    key = web_server.new_key()
    with session_client(web_server.base_url, key) as client:
        stolen = client.cookies["datamill_session"]
        assert client.post("/logout", data={"csrf_token": csrf_of(client)}).status_code == 303
    with httpx.Client(base_url=web_server.base_url, cookies={"datamill_session": stolen}) as copy:
        assert copy.get("/datasets").status_code == 303
        assert copy.get("/datasets/x/status.json", headers={"accept": "application/json"}).status_code == 401
    with session_client(web_server.base_url, key) as again:  # the key itself still signs in
        assert again.get("/datasets").status_code == 200
