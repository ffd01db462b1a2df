"""Errors the services raise for requests that cannot be served; each entry point maps them to its medium.

ServiceError (a DatamillError)
 ├── NotFoundError          no such resource for this tenant (another tenant's id looks the same: absent)
 ├── ConflictError          the resource is in a state that forbids the action (a dataset being processed)
 ├── NotReadyError          the action needs something that has not happened yet (a download before any run)
 ├── UploadRejectedError    an upload link that is invalid, expired or already used
 ├── IdempotencyKeyReusedError  an idempotency key sent again with a request that differs from its first
 ├── RunOutputMissingError  a run has rows its output files are not in this server's run storage for
 └── PayloadTooLargeError   an upload over the size limit

Bad input is a `datamill.core.errors.ValidationError`, which names each field.
"""

from __future__ import annotations

from datamill.core.errors import DatamillError


class ServiceError(DatamillError):
    """A request the services cannot carry out; the message says why."""


class NotFoundError(ServiceError):
    """No such resource for this tenant."""

    def __init__(self, kind: str, ident: str) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(f"{kind} {ident!r} not found")


class ConflictError(ServiceError):
    """The resource's state forbids the action."""


class NotReadyError(ServiceError):
    """The action needs something that has not happened yet."""


class UploadRejectedError(ServiceError):
    """An upload link that is invalid, expired or already used."""


class PayloadTooLargeError(ServiceError):
    """An upload bigger than the configured limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the upload is larger than the limit of {limit} bytes")


class IdempotencyKeyReusedError(ServiceError):
    """An idempotency key sent again with parameters that differ from the request it was first used with.

    Attributes:
        field: where the request carries the key (``idempotency_key``, ``job_specification.idempotency_key``
            or the ``Idempotency-Key`` header).
        key: the key.
    """

    def __init__(self, field: str, key: str, what: str) -> None:
        self.field, self.key = field, key
        super().__init__(
            f"idempotency key {key!r} was already used for a {what} request with different parameters: "
            "send the first request unchanged to get its answer again, or use a new key for a new request"
        )


class RunOutputMissingError(ServiceError):
    """A run has rows (finished, or processed so far) but this server finds none of its output files (503).

    The worker that ran it wrote them where this server does not read: the processes do not share the
    run storage (``DATAMILL_RUN_DATA_URL``, by default ``<data dir>/runs``), a misconfiguration. Answering an
    empty file instead would pass off a lost output as a run that produced nothing.
    """

    def __init__(self, run_id: str, rows: int, *, running: bool = False) -> None:
        self.run_id, self.rows, self.running = run_id, rows, running
        done = f"has processed {rows} rows so far" if running else f"recorded {rows} finished rows"
        super().__init__(
            f"run {run_id!r} {done}, but its output is not in this server's "
            "run storage: the worker that runs it writes run data elsewhere. Point every API and worker "
            "process at the same run storage (DATAMILL_RUN_DATA_URL, or the same data directory: "
            "DATAMILL_HOME / --data-dir)"
        )
