"""Request bodies: a body must declare its length, so that MAX_CONTENT_LENGTH holds.

Werkzeug refuses a declared Content-Length above MAX_CONTENT_LENGTH with a 413 before reading a
byte. A chunked body (Transfer-Encoding) declares no length: behind gunicorn, which marks its
input as terminated, Werkzeug reads it up to the limit and then stops without an error, so an
oversized body would reach a route cut short instead of refused. Twilio, Africa's Talking,
Hubtel and browsers all send a Content-Length, so a chunked body is refused (411) unread.
"""

from __future__ import annotations

from flask import Flask, abort, request


def install(app: Flask) -> None:
    """Refuse, on every route of `app`, a body whose length is not declared."""

    @app.before_request
    def _require_content_length() -> None:
        if request.headers.get("Transfer-Encoding"):
            abort(411, "send the body with a Content-Length header, not chunked")
