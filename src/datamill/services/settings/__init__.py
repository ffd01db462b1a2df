"""Settings of the entry points, the server and the runs, read from the environment once, in factories."""
