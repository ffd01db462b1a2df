"""The certificate authorities TLS connections trust, from the variables other HTTP clients honour.

- ``SSL_CERT_FILE`` (a PEM bundle) and ``SSL_CERT_DIR`` (a hashed directory, as ``c_rehash`` makes it):
  OpenSSL's own variables, honoured as they are by curl, httpx and Python's ``ssl``.
- ``REQUESTS_CA_BUNDLE``, then ``CURL_CA_BUNDLE``: a PEM bundle, as requests and curl take them, used when
  ``SSL_CERT_FILE`` is not set.

A named bundle or directory replaces the system's CAs (as in curl and requests). A variable naming a path
that does not exist is a configuration error, never a silent fall back to the system's CAs.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping

from datamill.core.errors import ConfigError

#: The variables naming a CA bundle, in the order they are looked at.
BUNDLE_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
DIRECTORY_VARIABLE = "SSL_CERT_DIR"


def tls_context(environ: Mapping[str, str]) -> ssl.SSLContext:
    """A client context that verifies certificates and host names against the CAs ``environ`` names.

    Raises:
        ConfigError: a variable names a file or directory that does not exist or holds no usable CA.
    """
    cafile = capath = None
    for name in BUNDLE_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            if not os.path.isfile(value):
                raise ConfigError(f"{name}={value!r} is not a file; point it at a PEM bundle of CAs")
            cafile, source = value, name
            break
    directory = environ.get(DIRECTORY_VARIABLE, "").strip()
    if directory:
        if not os.path.isdir(directory):
            raise ConfigError(f"{DIRECTORY_VARIABLE}={directory!r} is not a directory of CA certificates")
        capath, source = directory, DIRECTORY_VARIABLE
    if cafile is None and capath is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"{source}: the CA certificates cannot be loaded: {exc}") from exc
