"""Every code a failed dataset, run or job reports in its ``error_data`` (``{message, code, level}``).

| code  | name                  | meaning                                                                  |
|-------|-----------------------|--------------------------------------------------------------------------|
| E0100 | FILE_UNREADABLE       | an uploaded file cannot be read (the message says what and where)        |
| E0102 | MAPPING_COLUMN_MISSING| the raw column mapping names a column the data lacks                     |
| E0103 | BATCH_COLUMNS_DIFFER  | the files of a batch do not share one set of columns                     |
| E0104 | IMPORT_FAILED         | a URL import could not fetch or store its file                           |
| E0199 | INGEST_INTERNAL       | an internal error while reading an upload (logged on the server)         |
| E0300 | MODEL_UNUSABLE        | the model cannot be used: unknown model, missing key, 401/402/403/404,   |
|       |                       | no quota or credit left, an unreachable endpoint, a 400 on every request |
| E0301 | REQUEST_UNFIT         | the request does not fit the data or the model (e.g. a column is missing) |
| E0302 | GIVEN_UP              | the job stopped its worker too many times in a row without progress      |
| E0303 | INPUT_UNREADABLE      | the job's input (a dataset's files, seed files) cannot be read           |
| E0304 | CANCELLED             | the run was cancelled; the rows finished before stay downloadable        |
| E0305 | NOTHING_DELIVERED     | every row was rejected, so there is nothing to deliver (the message names |
|       |                       | the commonest cause with an example row)                                 |
| E0399 | INTERNAL              | an internal error of a job (the server log has the traceback)            |

E01xx are about a dataset's files, E03xx about a job (run, spec analysis, generation, evaluation).
`datamill.services.jobs.failures.job_failure` maps the exception that stopped a job to its code.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """The codes of the module docstring; each is the string the wire APIs carry."""

    FILE_UNREADABLE = "E0100"
    MAPPING_COLUMN_MISSING = "E0102"
    BATCH_COLUMNS_DIFFER = "E0103"
    IMPORT_FAILED = "E0104"
    INGEST_INTERNAL = "E0199"
    MODEL_UNUSABLE = "E0300"
    REQUEST_UNFIT = "E0301"
    GIVEN_UP = "E0302"
    INPUT_UNREADABLE = "E0303"
    CANCELLED = "E0304"
    NOTHING_DELIVERED = "E0305"
    INTERNAL = "E0399"


def error_data(code: ErrorCode, message: str) -> dict[str, Any]:
    """The ``error_data`` of a failed dataset, run or job (Adaption API)."""
    return {"message": message, "code": code.value, "level": "error"}
