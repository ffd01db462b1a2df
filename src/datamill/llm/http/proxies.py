"""Which proxy a request goes through: the proxy environment variables, read with curl's rules.

- ``https_proxy`` / ``HTTPS_PROXY`` for ``https://`` URLs, ``http_proxy`` / ``HTTP_PROXY`` for ``http://``
  URLs, else ``all_proxy`` / ``ALL_PROXY``; the lower-case name wins when both are set. As in Python's
  ``urllib`` (and curl, which reads only the lower-case ``http_proxy``), ``HTTP_PROXY`` is ignored when
  ``REQUEST_METHOD`` is set: in a CGI process it can come from a request header.
- ``no_proxy`` / ``NO_PROXY``: comma- or space-separated entries; ``*`` matches every host; a name matches
  itself and its subdomains (``example.com`` and ``.example.com`` both match ``api.example.com``); an IP
  address matches itself and a CIDR block (``10.0.0.0/8``) the addresses in it; letter case is ignored.
- Loopback hosts (``localhost``, ``127.0.0.0/8``, ``::1``) never go through a proxy taken from the
  environment, as in Go's HTTP client: a model server on the same machine is reached directly. A route's
  own ``proxy`` still applies to them.
- A proxy URL without a scheme is ``http://``. Only ``http://`` proxies are spoken: an ``https`` URL goes
  through a ``CONNECT`` tunnel and TLS to the provider inside it; an ``http`` URL is sent to the proxy in
  absolute form. ``user:password@`` in the proxy URL becomes ``Proxy-Authorization: Basic``.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from datamill.core.errors import ConfigError

#: What a route's ``proxy`` field may say to go direct even where the environment names a proxy.
DIRECT = frozenset({"", "none", "direct", "off"})


@dataclass(frozen=True, slots=True)
class Proxy:
    """An HTTP proxy: where to connect and the ``Proxy-Authorization`` header to send, if any."""

    url: str
    host: str
    port: int
    authorization: str | None = None

    @classmethod
    def parse(cls, url: str, *, source: str) -> Proxy:
        """A proxy from its URL; ``source`` names where the URL came from, for the error message.

        Raises:
            ConfigError: the URL has no host, a bad port or a scheme other than ``http``.
        """
        text = url.strip()
        parts = urlsplit(text if "://" in text else f"http://{text}")
        scheme = parts.scheme.lower()
        if scheme != "http":
            raise ConfigError(
                f"{source}: proxy {text!r} uses {scheme}://, but only http:// proxies are supported "
                "(https targets still get TLS end to end through the proxy's CONNECT tunnel)"
            )
        try:
            port = parts.port or 80
        except ValueError as exc:
            raise ConfigError(f"{source}: proxy {text!r} has an invalid port") from exc
        if not parts.hostname:
            raise ConfigError(f"{source}: proxy {text!r} names no host")
        authorization = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
        return cls(f"http://{parts.hostname}:{port}", parts.hostname, port, authorization)


class ProxyRules:
    """The proxy environment of one process, read once; `for_url` picks the proxy of a URL."""

    def __init__(self, http: Proxy | None = None, https: Proxy | None = None, no_proxy: str = "") -> None:
        self.http = http
        self.https = https
        self._no_proxy = [e.strip().lower() for e in no_proxy.replace(" ", ",").split(",") if e.strip()]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ProxyRules:
        """Rules from the proxy variables of ``environ`` (``os.environ`` at the entry point).

        Raises:
            ConfigError: a proxy variable holds a URL that is not an ``http://`` proxy.
        """
        cgi = "REQUEST_METHOD" in environ
        every = _proxy(environ, "all_proxy", upper=True)
        http = _proxy(environ, "http_proxy", upper=not cgi) or every
        https = _proxy(environ, "https_proxy", upper=True) or every
        return cls(http, https, _first(environ, "no_proxy", upper=True) or "")

    def for_url(self, scheme: str, host: str, route_proxy: str | None = None) -> Proxy | None:
        """The proxy for a request to ``host`` over ``scheme``, or None to connect directly.

        ``route_proxy`` is the route's own ``proxy`` field: None follows the environment, a value in
        `DIRECT` goes direct, anything else is the proxy's URL.
        """
        if route_proxy is not None:
            if route_proxy.strip().lower() in DIRECT:
                return None
            return Proxy.parse(route_proxy, source="the route's proxy")
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or _is_loopback(host) or self.bypasses(host):
            return None
        return proxy

    def bypasses(self, host: str) -> bool:
        """Whether ``no_proxy`` sends requests to ``host`` directly."""
        name = host.lower().strip("[]").rstrip(".")
        address = _address(name)
        for entry in self._no_proxy:
            if entry == "*":
                return True
            bare = entry.replace("[", "").replace("]", "")
            if address is not None and ("/" in bare or _address(bare) is not None):
                try:
                    if address in ipaddress.ip_network(bare, strict=False):
                        return True
                except ValueError:
                    continue
                continue
            domain = entry.lstrip(".").rstrip(".")
            if domain and (name == domain or name.endswith("." + domain)):
                return True
        return False


def _first(environ: Mapping[str, str], name: str, *, upper: bool) -> str | None:
    value = environ.get(name)
    if value is None and upper:
        value = environ.get(name.upper())
    return value.strip() if value is not None and value.strip() else None


def _proxy(environ: Mapping[str, str], name: str, *, upper: bool) -> Proxy | None:
    value = _first(environ, name, upper=upper)
    if value is None:
        return None
    source = name if environ.get(name) else name.upper()
    return Proxy.parse(value, source=source)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_loopback(host: str) -> bool:
    name = host.lower().strip("[]").rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    address = _address(name)
    return address is not None and address.is_loopback
