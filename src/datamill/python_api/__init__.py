"""The Python API: adapt data held in memory or in files from a script or a notebook (docs/python.md).

It sits at the top of the layers, beside the command line, and calls the same services.
"""

from datamill.python_api.adapt import Adapted, adapt, adapt_async, estimate, estimate_async
from datamill.python_api.generation import (
    Generated,
    create_spec,
    create_spec_async,
    evaluate,
    evaluate_async,
    generate,
    generate_async,
)
from datamill.python_api.progress import Progress, ProgressCallback, tqdm_progress
from datamill.steps.prompt_step import PromptStep

__all__ = [
    "Adapted",
    "Generated",
    "Progress",
    "ProgressCallback",
    "PromptStep",
    "adapt",
    "adapt_async",
    "create_spec",
    "create_spec_async",
    "estimate",
    "estimate_async",
    "evaluate",
    "evaluate_async",
    "generate",
    "generate_async",
    "tqdm_progress",
]
