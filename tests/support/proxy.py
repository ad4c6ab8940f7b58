"""A stand-in for an egress HTTP proxy: a real server on 127.0.0.1 that tunnels and forwards.

A deployment that reaches the internet only through a proxy sets HTTPS_PROXY. For HTTPS the
client asks this proxy to CONNECT to the provider and then speaks TLS through the tunnel, so the
proxy sees only where it goes; a plain HTTP request comes whole, naming the full URL, and is
forwarded. The proxy records what it was asked (`seen`), and can refuse every tunnel with a 407
(`refuse_tunnels`), as a proxy whose credentials are wrong does.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Asked:
    method: str  # CONNECT, or the forwarded request's method
    target: str  # host:port for CONNECT, the whole URL otherwise
    authorization: str | None  # the Proxy-Authorization header, if any


class Proxy:
    def __init__(self, refuse_tunnels: bool = False) -> None:
        self.refuse_tunnels = refuse_tunnels
        self._seen: list[Asked] = []
        self._lock = threading.Lock()
        self._server = _Server((HOST, 0), _ProxyHandler, proxy=self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Proxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_port}"

    @property
    def seen(self) -> list[Asked]:
        with self._lock:
            return list(self._seen)

    def _asked(self, asked: Asked) -> None:
        with self._lock:
            self._seen.append(asked)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, proxy: Proxy) -> None:
        super().__init__(address, handler)
        self.proxy = proxy


class _ProxyHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_CONNECT(self) -> None:  # noqa: N802 - the name http.server dispatches to
        self.server.proxy._asked(Asked("CONNECT", self.path, self._authorization()))
        if self.server.proxy.refuse_tunnels:
            self.send_response(407, "Proxy Authentication Required")
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.close_connection = True
            return
        host, _, port = self.path.rpartition(":")
        upstream = socket.create_connection((host, int(port)), timeout=10)
        self.send_response(200, "Connection established")
        self.end_headers()
        _pipe(self.connection, upstream)
        self.close_connection = True

    def do_POST(self) -> None:  # noqa: N802
        self.server.proxy._asked(Asked("POST", self.path, self._authorization()))
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-authorization"}
        upstream = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
        upstream.request("POST", url.path + (f"?{url.query}" if url.query else ""), body, headers)
        answer = upstream.getresponse()
        payload = answer.read()
        upstream.close()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in {"connection", "content-length", "server", "date"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _authorization(self) -> str | None:
        return self.headers.get("Proxy-Authorization")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Quiet: the tests inspect `seen` instead."""


def _pipe(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    with upstream:
        sockets = [client, upstream]
        while True:
            readable, _, _ = select.select(sockets, [], [], 10)
            if not readable:
                return
            for source in readable:
                data = source.recv(65536)
                if not data:
                    return
                (upstream if source is client else client).sendall(data)
