"""The HTTP server: the wire APIs (Adaption today) over the shared services, built by `create_app`."""

from datamill.server.app import create_app

__all__ = ["create_app"]
