"""How the web app words a refusal: short plain text, never an HTML page.

Providers and scripts read errors. One function, so that the Flask app and the webhook fast path
(`gateway.sms_fast`) answer a refusal in the same words.
"""

from __future__ import annotations

from werkzeug.exceptions import HTTPException


def plain_text(error: HTTPException) -> tuple[str, int, dict[str, str]]:
    """(body, status code, headers) of the answer to this refusal."""
    text = f"{error.code} {error.name}: {error.description}\n"
    return text, error.code or 500, {"Content-Type": "text/plain; charset=utf-8"}
