"""Where published files go: a Hugging Face Hub dataset repo, or a path under a root the operator allows.

Both take a staging directory of finished files (relative names such as ``data/train-00000-of-00001.parquet``
and ``README.md``) and answer where they now are.

The Hub: `push_to_hub` creates the dataset repo if it is missing (``exist_ok``) and commits every file in one
commit through `huggingface_hub`, against the configured endpoint with the configured token. A refusal or an
unreachable Hub is a `PublishUpstreamError` that carries the Hub's answer.

Paths: `resolve_path` accepts a local path or an fsspec URL only inside one of the allowed roots. A relative
path is taken under the first root; ``..``, symlinks and absolute paths are resolved first, so nothing can
escape a root. `copy_to_path` writes each file beside its final name and moves it into place.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datamill.core.errors import ValidationError
from datamill.services.errors import ServiceError

log = logging.getLogger(__name__)

_REPO_ID = re.compile(r"(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}")


class PublishUpstreamError(ServiceError):
    """The destination refused the files or could not be reached; the message carries its answer."""


def check_repo_id(value: object) -> str:
    """A Hub repo id, ``namespace/name`` (or ``name`` for the token's own namespace)."""
    if not isinstance(value, str) or not _REPO_ID.fullmatch(value) or ".." in value or "--" in value:
        raise ValidationError.of(
            "target_spec.repo_id", "required: a Hugging Face repo id such as 'my-org/my-dataset'"
        )
    return value


def push_to_hub(
    staged: Path,
    names: Sequence[str],
    *,
    repo_id: str,
    endpoint: str,
    token: str,
    private: bool | None,
    message: str,
) -> str:
    """Create the dataset repo if needed and commit the files; returns the repo's URL.

    Raises:
        PublishUpstreamError: The Hub refused the request or could not be reached.
    """
    from huggingface_hub import CommitOperationAdd, HfApi  # an optional dependency (the server extra)
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=endpoint, token=token, library_name="datamill")
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(staged / name)) for name in names]
    try:
        url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.create_commit(url.repo_id, operations, commit_message=message, repo_type="dataset")
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise PublishUpstreamError(f"the Hugging Face Hub at {endpoint} answered {status}: {exc}") from exc
    except Exception as exc:
        # Connection failures surface as the HTTP client's own errors, whose classes change across
        # huggingface_hub versions; whatever fails inside the client is the Hub's side of the publish.
        log.warning("publishing to %s failed", endpoint, exc_info=exc)
        raise PublishUpstreamError(f"publishing to the Hugging Face Hub at {endpoint} failed: {exc}") from exc
    return f"{endpoint.rstrip('/')}/datasets/{url.repo_id}"


def _split(url: str) -> tuple[str, str]:
    """(protocol, path) of an fsspec URL; ``file`` and plain paths are local, with a resolved real path."""
    protocol, sep, rest = url.partition("://")
    if not sep or protocol == "file":
        local = rest if sep else url
        return "file", os.path.realpath(os.path.expanduser(local))
    return protocol, posixpath.normpath("/" + rest).lstrip("/")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def resolve_path(path: object, roots: Sequence[str]) -> str:
    """The URL or local path to publish to, if it lies inside an allowed root.

    Raises:
        ValidationError: A missing path, or one outside every root (field ``target_spec.path``).
    """
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        raise ValidationError.of("target_spec.path", "required: where to write the files")
    if "://" not in path and not os.path.isabs(os.path.expanduser(path)):
        protocol, root = _split(roots[0])
        path = os.path.join(root, path) if protocol == "file" else f"{protocol}://{root}/{path}"
    protocol, wanted = _split(path)
    for allowed in roots:
        root_protocol, root = _split(allowed)
        if root_protocol == protocol and _inside(wanted, root):
            return wanted if protocol == "file" else f"{protocol}://{wanted}"
    raise ValidationError.of(
        "target_spec.path",
        f"{path!r} is outside the directories this server may publish to: {', '.join(roots)}",
    )


def copy_to_path(staged: Path, names: Sequence[str], target: str) -> str:
    """Copy the staged files under ``target`` (a local path or fsspec URL); returns ``target``.

    Raises:
        PublishUpstreamError: The destination cannot be written.
    """
    import fsspec  # the server extra

    fs: Any
    fs, root = fsspec.core.url_to_fs(target)
    try:
        for name in names:
            final = f"{str(root).rstrip('/')}/{name}"
            fs.makedirs(posixpath.dirname(final), exist_ok=True)
            partial = f"{final}.{secrets.token_hex(6)}.partial"
            fs.put_file(str(staged / name), partial)
            fs.mv(partial, final)
    except OSError as exc:
        raise PublishUpstreamError(f"cannot write to {target}: {exc}") from exc
    return target
