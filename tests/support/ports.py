"""Local addresses with nothing behind them."""

from __future__ import annotations

import socket


def closed_port_url(scheme: str = "http") -> str:
    """A local URL nothing listens on: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"{scheme}://127.0.0.1:{port}"
