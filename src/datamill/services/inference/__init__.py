"""The inference surface of the server: the models it routes, the tools it offers, and stored responses."""
