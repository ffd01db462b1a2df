"""Suite-wide guard: no test may reach a remote model (the HTTP transport refuses non-loopback hosts)."""

import os

os.environ["DATAMILL_BLOCK_REMOTE_MODELS"] = "1"
