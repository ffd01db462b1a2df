"""A ``.tsv`` file dropped on the web app is read as a table (the drop zone lists tsv), and the output of its
run downloads under the dataset's name with the download's own extension (``tickets.jsonl``, not
``tickets.tsv.jsonl``)."""

from __future__ import annotations

import re
from typing import Any

from runs_helpers import MAPPING, qa_rows, wait_done
from web_helpers import drop_file, sign_in

from conftest import RunningServer


def test_a_tsv_upload_is_read_and_its_output_downloads_under_a_clean_name(
    web_server: RunningServer, browser: Any
) -> None:
    key = web_server.new_key("acme-tsv")
    page = sign_in(browser, web_server.base_url, key)
    assert "tsv" in page.inner_text("#dropzone")
    rows = qa_rows(4)
    lines = ["id\tquestion\tanswer", *(f"{r['id']}\t{r['question']}, please\t{r['answer']}" for r in rows)]
    drop_file(page, "#dropzone", "tickets.tsv", "\n".join(lines) + "\n")
    page.wait_for_url(re.compile(r".*/datasets/ds_[^/]+$"))
    page.wait_for_selector("#preview")
    assert page.inner_text("#dataset-rows") == "4"
    header = page.inner_text("#preview thead")
    assert all(name in header for name in ("id", "question", "answer"))
    assert f"{rows[0]['question']}, please" in page.inner_text("#preview tbody")  # commas stay in the cell

    dataset_id = page.url.rsplit("/", 1)[-1]
    sdk = web_server.client(key=key)
    sdk.datasets.adapt(dataset_id, column_mapping=MAPPING)
    assert wait_done(sdk, dataset_id).status == "succeeded"
    page.goto(f"{page.url}/run")
    for fmt, name in (("jsonl", "tickets.jsonl"), ("csv", "tickets.csv"), ("parquet", "tickets.tar.gz")):
        with page.expect_download() as download:
            page.click(f'.downloads a[href$="/download/{fmt}"]')
        assert download.value.suggested_filename == name
    page.context.close()
