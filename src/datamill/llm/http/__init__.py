"""The HTTP client of the model gateway: kept-alive HTTP/1.1 connections, JSON in and out.

- `interface`: the `Transport` protocol the providers use, with `HttpRequest` and `HttpReply`;
- `transport`: `HttpTransport`, the real one (pools, in-flight caps, deadlines from `deadlines`);
- `http1`: one connection, its replies parsed by httptools and refused where they break HTTP/1.1;
- `connect`: opening connections (happy eyeballs, proxy tunnels, TLS) and what each failure means;
- `proxies`, `tls`: the proxy and CA environment variables, read as curl reads them;
- `mock`: `MockTransport`, which answers from a function, for tests.
"""
