"""datamill's Python API: what the CLI, and later the server, call to run jobs."""
