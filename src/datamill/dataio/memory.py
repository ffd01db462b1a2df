"""Which allocator pyarrow uses in a datamill process, for the entry points that opt in.

pyarrow's default pool (mimalloc in current wheels) keeps the memory of freed buffers for reuse. A run makes
many short-lived buffers (a parquet part per batch, csv blocks, exports), so mimalloc held about 20 MB
more resident memory than jemalloc or the system allocator over a 10,000-row run (measured with
``bench/pipeline_throughput.py``), for no measurable speed. The CLI's data commands (``adapt``, ``serve``,
``worker``, ...) therefore switch the process's default pool to jemalloc (the system allocator where a
pyarrow build lacks it), unless ``ARROW_DEFAULT_MEMORY_POOL`` is set, in which case pyarrow's own choice
stands. Importing datamill changes nothing: an application embedding it keeps its own pool.
"""

from __future__ import annotations

import pyarrow as pa

POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


def use_lean_memory_pool(chosen: str | None = None) -> str:
    """Set pyarrow's default pool as described above; return the backend now in use.

    Args:
        chosen: the pool the operator named in ``ARROW_DEFAULT_MEMORY_POOL``; when set, nothing changes.
    """
    if not chosen:
        try:
            pool = pa.jemalloc_memory_pool()
        except NotImplementedError:
            pool = pa.system_memory_pool()
        pa.set_memory_pool(pool)
    return str(pa.default_memory_pool().backend_name)
