"""A provider's API over one kept-alive HTTP connection per sending thread.

Why not `requests`: a reply's POST through `requests` and urllib3 cost the replies worker 0.7 to
0.8 ms of CPU, the largest single cost a vote had, while the same POST through the standard
library's `http.client` on a kept-alive connection costs 0.1 to 0.2 ms (`python -m
bench.send_cpu`). What this module keeps from urllib3 is what decides whether a reply can be
sent twice:

- A connection is checked before it is used again. A connection the provider closed while idle
  reads as ready (end of file); it is closed and a new one opened, so a send is not lost to it.
  One idle for longer than IDLE_LIMIT is not used again either: servers close idle connections
  after a minute or so, and a close that crosses our request on the wire would make a reply
  `unknown`, never resent. A new connection costs a handshake; that is cheaper.
- Every failure is one of two kinds. `NotSent`: nothing reached the provider (no route, refused,
  a name that did not resolve, a timeout while connecting, TLS or the proxy's tunnel refused),
  so the caller may send again. `MaybeSent`: the request went out, or may have, and no whole
  answer came back; the provider may have acted on it, so the caller must never resend blindly.
- `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` are honoured as `requests` honoured
  them, through an `http://` proxy (a CONNECT tunnel for HTTPS); another proxy scheme is refused.
  The proxy is chosen when a thread first connects to an origin (`close_connections` chooses
  again).
- Certificates are checked against `REQUESTS_CA_BUNDLE`, else `CURL_CA_BUNDLE`, else certifi's
  bundle, as `requests` checked them.

Connections belong to a thread (the replies worker's sending threads each keep theirs) and to a
process: a forked child opens its own.
"""

from __future__ import annotations

import base64
import functools
import http.client
import ipaddress
import os
import select
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import SplitResult, unquote, urlencode, urlsplit

import certifi

from gateway.providers.base import ERROR_CODE_CHARS, SendOutcome, SendResult


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


class NoAnswer(Exception):  # noqa: N818 - what happened, not an error's category
    """No whole answer came back; `code` says why, briefly, and `result` is the reply's fate."""

    outcome: ClassVar[SendOutcome]

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code

    def result(self) -> SendResult:
        return SendResult(self.outcome, error_code=self.code[:ERROR_CODE_CHARS])


class NotSent(NoAnswer):
    """Nothing reached the provider: sending again is safe."""

    outcome = SendOutcome.RETRY


class MaybeSent(NoAnswer):
    """The request left, or may have, and no whole answer came back: never resend blindly."""

    outcome = SendOutcome.UNKNOWN


Connection = http.client.HTTPConnection  # or its HTTPS subclass
IDLE_LIMIT = 15.0  # seconds: well inside the usual server idle timeouts (nginx 75, AWS ALB 60)
_LOCAL = threading.local()  # an empty holder; each thread's connections appear on first use


def post_form(
    url: str,
    form: Mapping[str, str],
    headers: Mapping[str, str],
    timeout: tuple[float, float],
) -> Answer:
    """POST `form` to `url`; `timeout` is (to connect, to wait for each read of the answer)."""
    connect_timeout, read_timeout = timeout
    target = urlsplit(url)
    kept = _kept(target)
    connection = kept.connection
    if connection.sock is None:
        _connect(connection, connect_timeout)
    try:
        connection.sock.settimeout(read_timeout)
    except OSError as error:  # closed under us: nothing was written
        connection.close()
        raise NotSent("conn") from error
    path, sent_headers = _path(target), dict(headers)
    if isinstance(connection, _ViaProxy):  # plain HTTP through a proxy: the whole URL
        path = f"{target.scheme}://{target.netloc}{path}"
        sent_headers |= connection.credentials
    try:
        connection.request("POST", path, urlencode(form).encode(), sent_headers)
        response = connection.getresponse()
        body = response.read()
    except TimeoutError as error:
        connection.close()
        raise MaybeSent("ReadTimeout") from error
    except (OSError, http.client.HTTPException) as error:
        connection.close()  # reset, closed mid-answer, or an answer that is not HTTP
        raise MaybeSent("conn") from error
    except Exception as error:  # a header we could not encode, say; bytes may have gone
        connection.close()
        raise MaybeSent(type(error).__name__) from error
    except BaseException:  # the job's timeout: a connection in a state nobody knows
        connection.close()
        raise
    if response.will_close:
        connection.close()
    kept.used_at = time.monotonic()
    return Answer(response.status, body)


def close_connections() -> None:
    """Close this thread's connections; the next send opens new ones (and looks at the proxy
    settings again)."""
    for kept in _this_threads_connections().values():
        kept.connection.close()
    _this_threads_connections().clear()


def basic_auth(username: str, password: str) -> str:
    """An Authorization header's value for HTTP Basic authentication."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


# -- connections --------------------------------------------------------------------------------


@dataclass
class _Kept:
    connection: Connection
    used_at: float = 0.0  # when it last finished a request (time.monotonic)

    def stale(self) -> bool:
        """Closed by the provider while idle, or idle long enough that it soon may be."""
        sock = self.connection.sock
        if sock is None:
            return False
        return time.monotonic() - self.used_at > IDLE_LIMIT or _closed_by_peer(sock)


def _kept(target: SplitResult) -> _Kept:
    """This thread's connection to the target's origin: the open one if it is still good."""
    connections = _this_threads_connections()
    origin = (target.scheme, target.netloc)
    kept = connections.get(origin)
    if kept is None:
        try:
            connection = _new_connection(target)
        except NotSent:
            raise
        except Exception as error:  # a CA bundle that cannot be read, a host that is not one
            raise NotSent(type(error).__name__) from error
        kept = connections[origin] = _Kept(connection)
    elif kept.stale():
        kept.connection.close()  # connect again before sending
    return kept


def _this_threads_connections() -> dict[tuple[str, str], _Kept]:
    local = _LOCAL
    if getattr(local, "pid", None) != os.getpid():
        # A forked child shares its parent's sockets: it must not write on them.
        local.pid, local.connections = os.getpid(), {}
    connections: dict[tuple[str, str], _Kept] = local.connections
    return connections


def _closed_by_peer(sock: socket.socket) -> bool:
    """An idle connection that reads as ready has either been closed by the peer or holds bytes
    nobody asked for; neither can carry a request. This is urllib3's `is_connection_dropped`."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _new_connection(target: SplitResult) -> Connection:
    try:
        port = target.port
    except ValueError as error:
        raise NotSent("InvalidURL") from error
    host = target.hostname or ""
    proxy = _proxy_for(target.scheme, host, port)
    https = target.scheme == "https"
    if proxy is None:
        if https:
            return http.client.HTTPSConnection(host, port, context=_tls())
        return http.client.HTTPConnection(host, port)
    proxy_host, proxy_port = proxy.hostname or "", proxy.port or 80
    proxy_headers = _proxy_authorization(proxy)
    if not https:
        return _ViaProxy(proxy_host, proxy_port, proxy_headers)
    connection = http.client.HTTPSConnection(proxy_host, proxy_port, context=_tls())
    connection.set_tunnel(host, port or 443, headers=proxy_headers)
    return connection


def _proxy_for(scheme: str, host: str, port: int | None) -> SplitResult | None:
    """The proxy `requests` would have used: {scheme}_proxy, else all_proxy, unless no_proxy
    names the host (a domain and its subdomains, host:port, an address range, or `*`)."""
    proxies = urllib.request.getproxies_environment()
    if _bypassed(host, port, proxies.get("no", "")):
        return None
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy:
        return None
    parsed = urlsplit(proxy if "://" in proxy else "http://" + proxy)
    if parsed.scheme != "http":  # TLS to the proxy, or SOCKS: not spoken here
        raise NotSent("proxy-scheme")
    return parsed


def _bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    entries = [entry.strip() for entry in no_proxy.split(",") if entry.strip()]
    if "*" in entries:
        return True
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in entries:
        if address is not None and _in_range(address, entry):
            return True
        name, _, entry_port = entry.partition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name.lstrip(".").lower()
        if host.lower() == name or host.lower().endswith("." + name):
            return True
    return False


def _in_range(address: ipaddress.IPv4Address | ipaddress.IPv6Address, entry: str) -> bool:
    try:
        return address in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False


def _proxy_authorization(proxy: SplitResult) -> dict[str, str]:
    if proxy.username is None:
        return {}
    credentials = basic_auth(unquote(proxy.username), unquote(proxy.password or ""))
    return {"Proxy-Authorization": credentials}


class _ViaProxy(http.client.HTTPConnection):
    """Plain HTTP through a proxy: each request names the whole URL and carries the proxy's
    credentials. (HTTPS goes through a CONNECT tunnel instead, and the proxy sees nothing.)"""

    def __init__(self, host: str, port: int, credentials: dict[str, str]) -> None:
        super().__init__(host, port)
        self.credentials = credentials


def _path(target: SplitResult) -> str:
    return (target.path or "/") + (f"?{target.query}" if target.query else "")


def _connect(connection: Connection, timeout: float) -> None:
    """Open the connection (and its tunnel, and TLS); any failure here sent the provider nothing.
    (`connect` sets TCP_NODELAY: http.client writes the headers and the body apart.)"""
    connection.timeout = timeout
    try:
        connection.connect()
    except TimeoutError as error:
        connection.close()
        raise NotSent("ConnectTimeout") from error
    except ssl.SSLError as error:
        connection.close()
        raise NotSent("SSLError") from error
    except OSError as error:  # refused, unreachable, unresolved, the tunnel refused
        connection.close()
        raise NotSent("conn") from error
    except Exception as error:  # a proxy that answered CONNECT with something not HTTP, say
        connection.close()
        raise NotSent(type(error).__name__) from error
    except BaseException:  # half open (a socket set, no TLS yet) must never be written on
        connection.close()
        raise


def _tls() -> ssl.SSLContext:
    """Certificates checked as `requests` checked them: against REQUESTS_CA_BUNDLE, else
    CURL_CA_BUNDLE, else certifi's bundle."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return _tls_checking(bundle or certifi.where())


@functools.lru_cache(maxsize=4)
def _tls_checking(bundle: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=bundle)  # reads the bundle: milliseconds
