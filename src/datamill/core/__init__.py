"""Domain types and validation: pure, no I/O, no framework imports."""
