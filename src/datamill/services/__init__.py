"""Services shared by the CLI, the Python API and the server, split by domain (see docs/architecture.md)."""
