"""The datamill command line."""
