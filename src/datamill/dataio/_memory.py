"""Which allocator pyarrow uses in a datamill process.

pyarrow's default pool (mimalloc in current wheels) keeps the memory of freed buffers for reuse. A run makes
many short-lived buffers (a parquet part per batch, csv blocks, exports), so mimalloc held about 20 MB
more resident memory than jemalloc or the system allocator over a 10,000-row run (measured with
``bench/pipeline_throughput.py``), for no measurable speed. datamill therefore switches the process's
default pool to jemalloc (the system allocator where a pyarrow build lacks it), unless
``ARROW_DEFAULT_MEMORY_POOL`` is set, in which case pyarrow's own choice stands.
"""

from __future__ import annotations

import os

import pyarrow as pa

POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


def use_lean_memory_pool() -> str:
    """Set pyarrow's default pool as described above; return the backend now in use."""
    if not os.environ.get(POOL_ENV):
        try:
            pool = pa.jemalloc_memory_pool()
        except NotImplementedError:
            pool = pa.system_memory_pool()
        pa.set_memory_pool(pool)
    return str(pa.default_memory_pool().backend_name)
