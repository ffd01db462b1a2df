"""Opening a connection: name resolution, happy eyeballs, proxy tunnels, TLS, and what each failure means.

A host name can resolve to several addresses (IPv6 and IPv4). They are tried as RFC 8305 "happy eyeballs"
says: the families interleaved, the first address first, the next one started `HAPPY_EYEBALLS_DELAY_S`
later or as soon as the one before fails; the first to connect wins and the others are closed. (asyncio's
``happy_eyeballs_delay`` does the same, but uvloop's loop, which runs datamill's runs, does not take it.)

Failures that no retry can mend are `ConnectionConfigError`: a name that does not resolve (``dns``), a port
where nothing listens (``refused``), a certificate that does not verify (``tls``), a proxy that cannot be
reached or refuses the tunnel (``proxy``). Anything else (a reset, a timeout) stays an ``OSError`` for the
caller to treat as transient.

A connection may carry an `AddressCheck` (a route whose endpoint a tenant named does): every address the
name resolves to is judged before any is dialled, and one refused address refuses the host (``policy``).
The addresses judged are the addresses connected to, so a name cannot resolve to a public address for a
check and to an internal one for the connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Callable

from datamill.core.errors import ConnectionConfigError
from datamill.llm.http.http1 import Http1Connection, ProtocolError
from datamill.llm.http.proxies import Proxy
from datamill.llm.types import AddressCheck

#: Seconds before the next address is tried while the one before is still connecting (RFC 8305: 250 ms).
HAPPY_EYEBALLS_DELAY_S = 0.25


async def open_connection(
    host: str,
    port: int,
    *,
    tls: ssl.SSLContext | None,
    proxy: Proxy | None,
    factory: Callable[[], Http1Connection],
    address_check: AddressCheck | None = None,
) -> Http1Connection:
    """A connection to ``host:port`` (through ``proxy`` when given), TLS-wrapped when ``tls`` is given.

    With ``address_check`` the connection is direct (``proxy`` must be None) and every address of ``host``
    must pass it.

    Raises:
        ConnectionConfigError: the name does not resolve, an address is refused by ``address_check``, the port
            refuses, the certificate does not verify, or the proxy cannot be reached or refuses the tunnel.
        OSError, ProtocolError: any other failure.
    """
    loop = asyncio.get_running_loop()
    if proxy is None:
        sock = await _connect_tcp(host, port, what="", address_check=address_check)
        return await _wrap(loop, sock, tls, host, factory)
    sock = await _connect_tcp(proxy.host, port=proxy.port, what=f"proxy {proxy.url}")
    if tls is None:  # plain http through the proxy: requests go to it in absolute form
        _, conn = await loop.create_connection(factory, sock=sock)
        return conn
    transport, tunnel = await loop.create_connection(_TunnelReply, sock=sock)
    try:
        await _open_tunnel(transport, tunnel, host, port, proxy)
        conn = factory()
        try:
            tls_transport = await loop.start_tls(transport, conn, tls, server_hostname=host)
        except ssl.SSLCertVerificationError as exc:
            raise _tls_error(host, exc) from exc
    except BaseException:
        transport.abort()
        raise
    if tls_transport is None:
        raise ConnectionResetError(f"the tunnel to {host}:{port} closed during the TLS handshake")
    conn.connection_made(tls_transport)
    return conn


async def _wrap(
    loop: asyncio.AbstractEventLoop,
    sock: socket.socket,
    tls: ssl.SSLContext | None,
    host: str,
    factory: Callable[[], Http1Connection],
) -> Http1Connection:
    try:
        if tls is None:
            _, conn = await loop.create_connection(factory, sock=sock)
        else:
            _, conn = await loop.create_connection(factory, sock=sock, ssl=tls, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        raise _tls_error(host, exc) from exc
    return conn


def _tls_error(host: str, exc: ssl.SSLCertVerificationError) -> ConnectionConfigError:
    return ConnectionConfigError(
        f"the TLS certificate of {host} does not verify ({exc.verify_message or exc}); if your network "
        "inspects TLS, point SSL_CERT_FILE or REQUESTS_CA_BUNDLE at a PEM bundle holding its CA",
        "tls",
    )


async def _connect_tcp(
    host: str, port: int, *, what: str, address_check: AddressCheck | None = None
) -> socket.socket:
    """A connected non-blocking socket: every address of ``host`` raced with happy eyeballs."""
    loop = asyncio.get_running_loop()
    label = what or f"{host}:{port}"
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:  # UnicodeError: not a name DNS can carry
        reason = exc.strerror if isinstance(exc, socket.gaierror) else "not a valid host name"
        hint = "check the proxy URL" if what else "check the base URL, or set HTTPS_PROXY if this network "
        hint += "" if what else "reaches the internet through a proxy"
        raise ConnectionConfigError(
            f"cannot resolve {host!r} ({reason}) for {label}; {hint}", "proxy" if what else "dns"
        ) from exc
    if address_check is not None:
        _judge(host, [address for _, _, _, _, address in infos], address_check)
    addresses = _interleave([(family, address) for family, _, _, _, address in infos])
    try:
        return await _race(loop, addresses)
    except ConnectionRefusedError as exc:
        hint = "is the proxy running?" if what else "is the server running, and is the base URL's port right?"
        raise ConnectionConfigError(
            f"{label} refused the connection; {hint}", "proxy" if what else "refused"
        ) from exc


def _judge(host: str, addresses: list[tuple[object, ...]], address_check: AddressCheck) -> None:
    """Refuse ``host`` when any address it resolved to fails ``address_check``."""
    for address in addresses:
        literal = str(address[0])
        try:
            parsed = ipaddress.ip_address(literal.split("%", 1)[0])
        except ValueError:
            raise ConnectionConfigError(f"{host} resolved to {literal!r}, not an address", "policy") from None
        reason = address_check(host, parsed)
        if reason is not None:
            raise ConnectionConfigError(reason, "policy")


def _interleave(addresses: list[tuple[int, tuple[object, ...]]]) -> list[tuple[int, tuple[object, ...]]]:
    """The addresses with their families alternating, the first address's family first (RFC 8305)."""
    if len(addresses) < 2:
        return addresses
    first = addresses[0][0]
    same = [a for a in addresses if a[0] == first]
    other = [a for a in addresses if a[0] != first]
    mixed = []
    for i in range(max(len(same), len(other))):
        mixed += same[i : i + 1] + other[i : i + 1]
    return mixed


async def _race(
    loop: asyncio.AbstractEventLoop, addresses: list[tuple[int, tuple[object, ...]]]
) -> socket.socket:
    """Connect to the addresses, staggered; the first to connect wins, the others are cancelled."""
    if len(addresses) == 1:
        return await _connect_one(loop, *addresses[0])
    pending: set[asyncio.Task[socket.socket]] = set()
    errors: list[OSError] = []
    queue = iter(addresses)
    winner: socket.socket | None = None
    try:
        while winner is None:
            follow = next(queue, None)
            if follow is not None:
                pending.add(asyncio.ensure_future(_connect_one(loop, *follow)))
            if not pending:
                break
            done, pending = await asyncio.wait(
                pending,
                timeout=HAPPY_EYEBALLS_DELAY_S if follow is not None else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in done:
                exc = task.exception()
                if exc is None:
                    if winner is None:
                        winner = task.result()
                    else:
                        task.result().close()  # two connected at once: keep one
                elif isinstance(exc, OSError):
                    errors.append(exc)
                else:
                    raise exc
    finally:
        for task in pending:
            task.cancel()
            task.add_done_callback(_close_socket)
    if winner is not None:
        return winner
    if errors and all(isinstance(e, ConnectionRefusedError) for e in errors):
        raise errors[0]
    raise OSError(f"could not connect to any address: {'; '.join(str(e) for e in errors)}")


def _close_socket(task: asyncio.Task[socket.socket]) -> None:
    """Close the socket of a losing attempt that connected before it was cancelled."""
    if not task.cancelled() and task.exception() is None:
        task.result().close()


async def _connect_one(
    loop: asyncio.AbstractEventLoop, family: int, address: tuple[object, ...]
) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    return sock


class _TunnelReply(asyncio.Protocol):
    """Reads the proxy's reply to ``CONNECT``: its status line and headers, nothing after them."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end >= 0 and not self.done.done():
            if end + 4 != len(self.head):
                self.done.set_exception(ProtocolError("the proxy sent bytes after its reply to CONNECT"))
                return
            line = bytes(self.head.split(b"\r\n", 1)[0])
            parts = line.split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                self.done.set_exception(ProtocolError(f"not an HTTP reply to CONNECT: {line[:80]!r}"))
                return
            self.done.set_result(int(parts[1]))
        elif len(self.head) > 64 * 1024 and not self.done.done():
            self.done.set_exception(ProtocolError("the proxy's reply to CONNECT exceeds 64 KB"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionResetError("the proxy closed the connection during CONNECT"))


async def _open_tunnel(
    transport: asyncio.Transport, tunnel: _TunnelReply, host: str, port: int, proxy: Proxy
) -> None:
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    auth = f"Proxy-Authorization: {proxy.authorization}\r\n" if proxy.authorization else ""
    transport.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n".encode("latin-1"))
    status = await tunnel.done
    if status == 200:
        return
    if status == 407:
        reason = "needs credentials: put them in the proxy URL (http://user:password@host:port)"
    else:
        reason = f"answered HTTP {status}"
    raise ConnectionConfigError(f"proxy {proxy.url} refused a tunnel to {target}: it {reason}", "proxy")
