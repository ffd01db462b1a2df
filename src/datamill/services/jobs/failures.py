"""The one mapping from the exception that stopped a job to the ``error_data`` the job reports.

Every job kind (adaptation runs, spec analysis, generation runs, generation evaluations) uses it, so the same
failure has the same code whatever the job: an unreadable input is E0303, a model that cannot be used
E0300, anything else a job raises because of what it was asked to do E0301 (`datamill.core.error_codes`).
"""

from __future__ import annotations

from typing import Any

from datamill.core.error_codes import ErrorCode, error_data
from datamill.core.errors import ConfigError, DataFormatError, ModelError


def job_failure(
    exc: Exception, *, input_name: str = "the input", model_name: str = "the model"
) -> dict[str, Any]:
    """The ``error_data`` of a job stopped by `exc`; its message is what users see.

    Args:
        exc: the error that stopped the job.
        input_name: what the job reads, as the message names it (``the seed files``).
        model_name: which model the job calls, as the message names it (``the evaluation model``).
    """
    if isinstance(exc, DataFormatError):
        return error_data(ErrorCode.INPUT_UNREADABLE, f"{input_name} cannot be read: {exc.reason}")
    if isinstance(exc, ConfigError | ModelError):
        return error_data(ErrorCode.MODEL_UNUSABLE, f"{model_name} cannot be used: {exc}")
    return error_data(ErrorCode.REQUEST_UNFIT, str(exc))
