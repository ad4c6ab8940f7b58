"""Signature matrix: which signed requests the Twilio webhooks accept, behind every kind of proxy.

Each case is a request as Twilio would sign it (or as someone altered it) and a way it reaches
the app: straight, or through a proxy that rewrites scheme, host and port. The expected answer
comes from Twilio's documented scheme, written out here rather than taken from the SDK:

- the signature is HMAC-SHA1, with the account's Auth Token, of the URL Twilio requested
  followed by every POST parameter, sorted, name then value (a name repeated with the same
  value counts once, as in Twilio's own validators);
- the URL is the public one (PUBLIC_URL, the route, the query string exactly as sent); how the
  request reached the app behind the proxy does not matter;
- Twilio is inconsistent about the port: a default port (443, 80) written out or left out is
  the same URL, and a signature over a URL with no port is Twilio's for the public URL whatever
  port that names.

A false accept is a request accepted that this scheme rejects; a false reject is the opposite.
Both must be zero. One row shows a limit of the scheme itself, not of the gateway: names and
values are joined without separators, so `NumMedia=0&NumSegments=1` and `NumMedia=0NumSegments1`
sign alike, and so do `Body=VOTO 3 E-81234567` and `Body=VOTO 3 &E-81234567=`. Such a request keeps
Twilio's MessageSid, so it can only race the genuine one: whichever arrives first is recorded,
and the other is a duplicate. Those rows expect acceptance, since no validator can tell them
apart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import pytest
from flask import Flask
from sqlalchemy import select

from gateway.app import create_app
from gateway.models import InboundRow
from gateway.settings import Settings
from tests.conftest import AUTH_TOKEN
from tests.fault.scale import full, report
from tests.support.twilio_requests import inbound_form, message_sid
from workers.runtime import Runtime

pytestmark = [pytest.mark.fault]

Pairs = tuple[tuple[str, str], ...]

INBOUND, STATUS = "/sms/twilio", "/sms/twilio/status"
PUBLIC_URLS = [
    "https://consulta.example.org",
    "https://consulta.example.org/",
    "https://consulta.example.org:443",
    "https://consulta.example.org:8443",
    "https://gw.example.net/consulta",  # a proxy that mounts the gateway under a path
]
QUERIES = ["", "source=main", "a=1&b=2"]
# How a request reaches the app: the URL the app itself sees, and what a proxy adds.
ARRIVALS = [
    ("http://internal:8000", {}),
    ("http://10.0.0.7", {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example.org"}),
    ("https://consulta.example.org", {}),
    ("http://localhost:5000", {"X-Forwarded-Proto": "http", "X-Forwarded-Port": "8443"}),
]
HEADERS = ["valid", "missing", "empty", "wrong token", "truncated", "HMAC-SHA256"]


@dataclass(frozen=True)
class Case:
    label: str
    public_url: str
    route: str = INBOUND
    sent_path: str = INBOUND  # the path the request arrives on (the proxy strips any base path)
    query: str = ""
    signed_url: str = ""  # what the signature covers; the public URL of the route by default
    signed: Pairs = ()
    sent: Pairs = ()
    header: str = "valid"
    spaces_as_plus: bool = True

    @property
    def expected_url(self) -> str:
        return self.public_url.rstrip("/") + self.route + (f"?{self.query}" if self.query else "")


# -- the scheme, as documented ----------------------------------------------------------------


def signed_text(pairs: Pairs) -> str:
    """The parameters as Twilio signs them: no separators, so only this string counts."""
    return "".join(name + value for name, value in sorted(set(pairs)))


def sign(token: str, url: str, pairs: Pairs, digest: str = "sha1") -> str:
    mac = hmac.new(token.encode(), (url + signed_text(pairs)).encode(), getattr(hashlib, digest))
    return base64.b64encode(mac.digest()).decode()


def same_endpoint(signed: str, expected: str) -> bool:
    s, e = urlsplit(signed), urlsplit(expected)
    if (s.scheme, s.hostname, s.path, s.query) != (e.scheme, e.hostname, e.path, e.query):
        return False
    default = {"https": 443, "http": 80}[e.scheme]
    return s.port is None or (s.port or default) == (e.port or default)


def should_accept(case: Case) -> bool:
    return (
        case.header == "valid"
        and case.sent_path == case.route
        and same_endpoint(case.signed_url, case.expected_url)
        and signed_text(case.signed) == signed_text(case.sent)
    )


# -- the cases --------------------------------------------------------------------------------


def url_variants(expected: str, base_path: str) -> Iterator[tuple[str, str]]:
    """(label, URL) for the URL that was signed: the right one and its near misses."""
    u = urlsplit(expected)
    host, port = u.hostname or "", f":{u.port}" if u.port else ""
    yield "the public URL", expected
    yield "http for https", urlunsplit(u._replace(scheme="http"))
    yield "another host", urlunsplit(u._replace(netloc=f"evil.example.org{port}"))
    yield "a subdomain", urlunsplit(u._replace(netloc=f"www.{host}{port}"))
    for p in ("", ":443", ":80", ":8443", ":8080"):
        yield f"port {p or 'left out'}", urlunsplit(u._replace(netloc=host + p))
    yield "a trailing slash", urlunsplit(u._replace(path=u.path + "/"))
    yield "a double slash", urlunsplit(u._replace(path=u.path.replace("/sms", "//sms")))
    yield "the status route", urlunsplit(u._replace(path=u.path + "/status"))
    if base_path:
        yield "without the base path", urlunsplit(u._replace(path=u.path[len(base_path) :]))
    yield "the internal URL", urlunsplit(u._replace(scheme="http", netloc="internal:8000"))
    yield "no query", urlunsplit(u._replace(query=""))
    yield "another query", urlunsplit(u._replace(query="source=other"))
    yield (
        "an extra query parameter",
        urlunsplit(u._replace(query="&".join([u.query, "x=1"]).lstrip("&"))),
    )
    if "&" in u.query:
        yield (
            "the query reordered",
            urlunsplit(u._replace(query="&".join(reversed(u.query.split("&"))))),
        )


def form(sender: str, body: str = "VOTO 3") -> Pairs:
    return tuple(inbound_form(sender, body).items())


def _same(pairs: Pairs) -> Pairs:
    return pairs


def _swap(pairs: Pairs, name: str, value: str) -> Pairs:
    return tuple((k, value if k == name else v) for k, v in pairs)


def _without(pairs: Pairs, name: str) -> Pairs:
    return tuple((k, v) for k, v in pairs if k != name)


def _shuffled(pairs: Pairs) -> Pairs:
    mixed = list(pairs)
    random.Random(7).shuffle(mixed)
    return tuple(mixed)


def _twice(pairs: Pairs) -> Pairs:
    return (*pairs, ("Body", "VOTO 4"))


def _values_swapped(pairs: Pairs) -> Pairs:
    """Body sent twice, its two values in the other order."""
    twice = list(_twice(pairs))
    first, second = [i for i, (k, _) in enumerate(twice) if k == "Body"]
    twice[first], twice[second] = twice[second], twice[first]
    return tuple(twice)


def _boundary_moved(pairs: Pairs) -> Pairs:
    """NumMedia=0, NumSegments=1 sent as NumMedia=0NumSegments1: the same signed string."""
    return tuple(
        (k, "0NumSegments1" if k == "NumMedia" else v) for k, v in pairs if k != "NumSegments"
    )


def _with_id(pairs: Pairs) -> Pairs:
    return _swap(pairs, "Body", "VOTO 3 E-81234567")


def _id_split_off(pairs: Pairs) -> Pairs:
    """The ID's E sorts between Body and From: as a key of its own it signs like the Body."""
    return (*_swap(pairs, "Body", "VOTO 3 "), ("E-81234567", ""))


def _accented(pairs: Pairs) -> Pairs:
    return _swap(pairs, "Body", "Votación 3 ¡sí!")


# (label, what was signed, what was sent, spaces sent as +), each from a fresh form.
BODY_VARIANTS: list[tuple[str, Callable[[Pairs], Pairs], Callable[[Pairs], Pairs], bool]] = [
    ("the form as signed", _same, _same, True),
    ("keys reversed", _same, lambda p: tuple(reversed(p)), True),
    ("keys shuffled", _same, _shuffled, True),
    ("spaces as %20", _same, _same, False),
    ("Body changed", _same, lambda p: _swap(p, "Body", "VOTO 4"), True),
    ("From changed", _same, lambda p: _swap(p, "From", "+584169990000"), True),
    ("a parameter added", _same, lambda p: (*p, ("FromCountry", "VE")), True),
    ("a signed parameter dropped", _same, lambda p: _without(p, "NumSegments"), True),
    ("a key repeated with its own value", _same, lambda p: (*p, ("Body", "VOTO 3")), True),
    ("a key repeated with another value", _same, _twice, True),
    ("a repeated key signed as sent", _twice, _twice, True),
    ("a repeated key's values swapped", _twice, _values_swapped, True),
    ("a name and value boundary moved", _same, _boundary_moved, True),
    ("a Body's tail split off as a key", _with_id, _id_split_off, True),
    ("an accented Body", _accented, _accented, True),
    ("an empty Body", lambda p: _swap(p, "Body", ""), lambda p: _swap(p, "Body", ""), True),
]


def status_form() -> Pairs:
    return (
        ("MessageSid", message_sid()),
        ("MessageStatus", "delivered"),
        ("AccountSid", "AC" + "0" * 32),
    )


def cases() -> Iterator[Case]:
    senders = (f"+58414{i:07d}" for i in itertools.count(1_000_000))  # one each: no flood limit
    targets = [(query, INBOUND) for query in QUERIES] + [("", INBOUND + "/")]
    for public_url in PUBLIC_URLS:
        base_path = urlsplit(public_url).path.rstrip("/")
        for query, sent_path in targets:
            plain = Case("", public_url, sent_path=sent_path, query=query)
            signed_urls: dict[str, str] = {}  # URL -> its first label: near misses may coincide
            for label, url in url_variants(plain.expected_url, base_path):
                signed_urls.setdefault(url, label)
            for url, label in signed_urls.items():
                pairs = form(next(senders))
                yield replace(
                    plain, label=f"URL {label} ({url}), sent to {sent_path}",
                    signed_url=url, signed=pairs, sent=pairs,
                )  # fmt: skip
        right = Case("", public_url, query="source=main")
        for label, signed, sent, plus in BODY_VARIANTS:
            pairs = form(next(senders))
            yield replace(
                right, label=f"form: {label}", signed_url=right.expected_url,
                signed=signed(pairs), sent=sent(pairs), spaces_as_plus=plus,
            )  # fmt: skip
        for header in HEADERS:
            pairs = form(next(senders))
            yield replace(
                right, label=f"header: {header}", signed_url=right.expected_url, signed=pairs,
                sent=pairs, header=header,
            )  # fmt: skip
        status = Case("", public_url, route=STATUS, sent_path=STATUS)
        for label, url in (("its own", status.expected_url), ("the inbound", right.expected_url)):
            pairs = status_form()
            yield replace(
                status, label=f"status callback signed for {label} URL", signed_url=url,
                signed=pairs, sent=pairs,
            )  # fmt: skip


# -- running them -----------------------------------------------------------------------------


def post(app: Flask, case: Case, arrival: tuple[str, dict[str, str]]) -> int:
    base_url, proxy_headers = arrival
    headers = dict(proxy_headers)
    if case.header == "HMAC-SHA256":
        headers["X-Twilio-Webhooks-Signature-Settings"] = (
            "key=webhooks_sharedkey_x,algorithm=HMAC_SHA256"
        )
    if case.header != "missing":
        headers["X-Twilio-Signature"] = {
            "valid": lambda: sign(AUTH_TOKEN, case.signed_url, case.signed),
            "empty": lambda: "",
            "wrong token": lambda: sign("not-the-token", case.signed_url, case.signed),
            "truncated": lambda: sign(AUTH_TOKEN, case.signed_url, case.signed)[:-2],
            "HMAC-SHA256": lambda: sign(AUTH_TOKEN, case.signed_url, case.signed, "sha256"),
        }[case.header]()
    body = urlencode(case.sent) if case.spaces_as_plus else urlencode(case.sent, quote_via=quote)
    path = case.sent_path + (f"?{case.query}" if case.query else "")
    answer = app.test_client().post(
        path, data=body.encode(), headers=headers, base_url=base_url,
        content_type="application/x-www-form-urlencoded",
    )  # fmt: skip
    return answer.status_code


def accepted(case: Case, status: int) -> bool:
    return status == (204 if case.route == STATUS else 200)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the database is not the point
def test_the_signature_matrix_has_no_false_accepts_and_no_false_rejects(
    settings: Settings, rt: Runtime
) -> None:
    apps = {url: create_app(settings.with_(public_url=url)) for url in PUBLIC_URLS}
    false_accepts: list[str] = []
    false_rejects: list[str] = []
    expected_sids: set[str] = set()
    runs = 0
    try:
        for i, case in enumerate(cases()):
            arrivals = ARRIVALS if full() else [ARRIVALS[i % len(ARRIVALS)]]
            for arrival in arrivals:
                runs += 1
                status = post(apps[case.public_url], case, arrival)
                expected, got = should_accept(case), accepted(case, status)
                where = f"{case.public_url} | {case.label} | via {arrival[0]}: HTTP {status}"
                if got and not expected:
                    false_accepts.append(where)
                if expected and not got:
                    false_rejects.append(where)
                if expected and case.route == INBOUND:
                    expected_sids.add(dict(case.sent)["MessageSid"])
    finally:
        for app in apps.values():
            app.extensions["consulta"].engine.dispose()
            app.extensions["consulta"].redis.close()
    with rt.sessions() as session:
        recorded = set(session.scalars(select(InboundRow.external_id)))
    report(
        "signature matrix",
        n=runs,
        failures=len(false_accepts) + len(false_rejects),
        false_accepts=len(false_accepts),
        false_rejects=len(false_rejects),
        public_urls=len(PUBLIC_URLS),
        arrivals=len(ARRIVALS),
        accepted=len(expected_sids),
    )
    assert not false_accepts, "\n".join(false_accepts[:20])
    assert not false_rejects, "\n".join(false_rejects[:20])
    assert recorded == expected_sids, "a refused request was recorded, or an accepted one was not"
