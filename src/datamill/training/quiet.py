"""Keep the training libraries quiet: no progress bars, and their warnings off while they run.

transformers, trl, peft and datasets warn about their own deprecations and defaults on every call; those
are not the user's concern, and a warnings filter of ``error`` (as in a test suite) would turn them into
failures of a run that works. The process environment is left as it is: library code changes nothing
process-wide, and the loggers' own switches below turn the progress bars off.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """While the block runs: no progress bars, the libraries' warnings ignored, their logs at errors only."""
    import datasets.utils.logging as datasets_logging
    import transformers.utils.logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    datasets_logging.disable_progress_bar()
    datasets_logging.set_verbosity_error()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
