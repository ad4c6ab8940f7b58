"""Security headers on every response the web app sends.

Every response says: do not sniff types, never frame me, send no referrer, and, when PUBLIC_URL is
https, use https only from now on (HSTS). The Content-Security-Policy depends on what a page loads:

- the console (/ops) sets its own in `gateway/ops/views.py`: its own scripts, styles and fetches;
- rq-dashboard (/ops/rq) renders inline scripts and styles and compiles underscore templates with
  `new Function`, so it needs 'unsafe-inline' and 'unsafe-eval'. It is only reached signed in and
  read-only (gateway/ops/dashboard.py), and it shows only job IDs and queue names we made;
- the public results page has one inline <style> block, allowed by its hash and nothing else;
- everything else (webhooks, USSD, health, metrics, plain-text errors) is text, XML or JSON, and
  may load nothing at all.

A policy a blueprint set itself is kept; the others are set here, after every blueprint's own.
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.wrappers import Response

from gateway.settings import Settings

NOTHING = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The sha256 of the <style> block in templates/public/results.html: a change there must change
# this too (tests/integration/test_hardening.py says which hash to put here).
RESULTS_STYLE = "'sha256-MKlv2rMsb44gt5un5JNM9FTbw56AqTiYm6VrpNL5ja8='"
CSP_BY_BLUEPRINT = {
    "public": f"{NOTHING}; style-src {RESULTS_STYLE}",
    "rq_dashboard": (
        "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}
# A year, the usual minimum for preload lists. No includeSubDomains: sibling hosts under the same
# domain are not ours to force onto https.
HSTS = "max-age=31536000"


def install(app: Flask, settings: Settings) -> None:
    """Add the headers to every response of `app`."""
    common = _common(settings)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        csp = CSP_BY_BLUEPRINT.get(request.blueprint or "", NOTHING)
        response.headers.setdefault("Content-Security-Policy", csp)
        for name, value in common:
            response.headers[name] = value
        return response


def for_webhooks(settings: Settings) -> list[tuple[str, str]]:
    """Every header a webhook's answer carries: `gateway.sms_fast` answers without Flask."""
    return [("Content-Security-Policy", NOTHING), *_common(settings)]


def _common(settings: Settings) -> list[tuple[str, str]]:
    """The headers every response carries, whatever its page loads."""
    headers = [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
    ]
    if (settings.public_url or "").lower().startswith("https://"):
        headers.append(("Strict-Transport-Security", HSTS))
    return headers
