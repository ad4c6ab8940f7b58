"""How a reply's send reaches the provider: kept-alive connections, TLS, and an egress proxy.

Sends go through `gateway.providers.keepalive` to local stand-ins over real sockets: Twilio's API
(`tests/support/fake_twilio.py`, over HTTPS with a certificate of the tests' own CA where TLS
matters) and an HTTP proxy (`tests/support/proxy.py`). What the outcome table of each adapter
does not show is here: a connection is used again while it is good, never once the provider
closed it, never by another process; certificates are checked; and the proxy settings are
honoured as `requests` honoured them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.providers import keepalive, twilio
from gateway.providers.base import SendOutcome, SendResult
from gateway.settings import Settings
from tests.support.fake_twilio import FakeTwilio, settings_with_twilio
from tests.support.ports import closed_port_url
from tests.support.proxy import Proxy
from tests.support.tls import Certificates, make_certificates

ANA = "+584141234567"
PROXY_USER, PROXY_PASSWORD = "gateway", "p@ss"
PROXY_CREDENTIALS = "Basic Z2F0ZXdheTpwQHNz"  # base64 of gateway:p@ss


@pytest.fixture(autouse=True)
def fresh_connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No proxy, no CA override, and no connection left open, before and after each test."""
    names = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
    for name in (*names, "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    keepalive.close_connections()
    yield
    keepalive.close_connections()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


def send(fake: FakeTwilio) -> SendResult:
    return twilio.send(settings_with_twilio(Settings(), fake), ANA, "Hola")


def sent(result: SendResult, fake: FakeTwilio) -> bool:
    return result.outcome is SendOutcome.SENT and result.provider_sid in fake.created


# -- kept alive, and only while good ----------------------------------------------------------


def test_a_thread_sends_on_one_connection_while_the_provider_keeps_it_open() -> None:
    with FakeTwilio(keep_alive=True) as fake:
        results = [send(fake) for _ in range(3)]
    assert all(sent(result, fake) for result in results)
    assert len({seen.peer for seen in fake.requests}) == 1


def test_a_connection_the_provider_closed_while_idle_is_replaced_and_the_send_goes_once() -> None:
    with FakeTwilio(keep_alive=True, idle_timeout=0.2) as fake:
        first = send(fake)
        time.sleep(0.6)  # the provider closes the idle connection meanwhile
        second = send(fake)
    assert sent(first, fake)
    assert sent(second, fake)
    assert len(fake.requests) == 2
    assert fake.requests[0].peer != fake.requests[1].peer


def test_a_connection_idle_past_the_limit_is_not_used_again_though_still_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The provider would close it soon; a close that crosses a request makes a reply unknown."""
    monkeypatch.setattr(keepalive, "IDLE_LIMIT", 0.2)
    with FakeTwilio(keep_alive=True) as fake:  # keeps connections open for ever
        first = send(fake)
        soon = send(fake)
        time.sleep(0.4)
        later = send(fake)
    assert all(sent(result, fake) for result in (first, soon, later))
    peers = [seen.peer for seen in fake.requests]
    assert peers[0] == peers[1] != peers[2]


def test_a_forked_child_opens_its_own_connection_and_leaves_the_parents_alone() -> None:
    with FakeTwilio(keep_alive=True) as fake:
        assert sent(send(fake), fake)
        child = os.fork()
        if child == 0:  # the child: send, and say by the exit code whether it went
            os._exit(0 if send(fake).outcome is SendOutcome.SENT else 1)
        _, status = os.waitpid(child, 0)
        assert sent(send(fake), fake)
    assert os.waitstatus_to_exitcode(status) == 0
    parent, by_child, parent_again = (seen.peer for seen in fake.requests)
    assert parent == parent_again != by_child


# -- TLS --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trust:
    variable: str | None  # the environment variable naming a CA bundle, if any
    bundle: str = "the test CA"  # or "a file that is not there"
    error_code: str | None = None  # None: sent


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(Trust("REQUESTS_CA_BUNDLE"), id="a CA named by REQUESTS_CA_BUNDLE is trusted"),
        pytest.param(Trust("CURL_CA_BUNDLE"), id="a CA named by CURL_CA_BUNDLE is trusted"),
        pytest.param(Trust(None, error_code="SSLError"),
                     id="a CA certifi does not know is refused before anything goes"),
        pytest.param(Trust("SSL_CERT_FILE", error_code="SSLError"),
                     id="SSL_CERT_FILE is not read, as requests did not read it"),
        pytest.param(Trust("REQUESTS_CA_BUNDLE", "a file that is not there", "FileNotFoundError"),
                     id="a bundle that cannot be read sends nothing"),
    ],
)  # fmt: skip
def test_the_providers_certificate_is_checked_against_the_trusted_authorities(
    certificates: Certificates, monkeypatch: pytest.MonkeyPatch, case: Trust
) -> None:
    missing = certificates.ca_file.with_name("missing.pem")
    bundle = certificates.ca_file if case.bundle == "the test CA" else missing
    if case.variable:
        monkeypatch.setenv(case.variable, str(bundle))
    with FakeTwilio(keep_alive=True, tls=certificates.server_context()) as fake:
        result = send(fake)
    if case.error_code is None:
        assert sent(result, fake)
    else:
        assert (result.outcome, result.error_code) == (SendOutcome.RETRY, case.error_code[:16])
        assert fake.requests == []


# -- an egress proxy --------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    tls: bool  # the provider's API over HTTPS (a CONNECT tunnel) or plain HTTP
    proxy: str  # "proxy", "refusing proxy" or "no proxy listening"
    bypass: str = ""  # NO_PROXY
    variable: str = ""  # where the proxy is named: HTTPS_PROXY or HTTP_PROXY by default
    scheme: str = "http"  # of the proxy's URL


@pytest.mark.parametrize(
    ("case", "outcome", "asked"),
    [
        pytest.param(Route(tls=True, proxy="proxy"), SendOutcome.SENT, "CONNECT",
                     id="HTTPS goes through the proxy's tunnel, with the proxy's credentials"),
        pytest.param(Route(tls=False, proxy="proxy"), SendOutcome.SENT, "POST",
                     id="plain HTTP goes to the proxy naming the whole URL"),
        pytest.param(Route(tls=True, proxy="proxy", bypass="localhost,127.0.0.1"),
                     SendOutcome.SENT, None, id="a host NO_PROXY names is reached directly"),
        pytest.param(Route(tls=True, proxy="proxy", bypass="10.0.0.0/8, 127.0.0.0/8"),
                     SendOutcome.SENT, None, id="an address range in NO_PROXY is reached directly"),
        pytest.param(Route(tls=True, proxy="proxy", bypass="127.0.0.1:1"), SendOutcome.SENT,
                     "CONNECT", id="NO_PROXY naming another port of the host does not bypass"),
        pytest.param(Route(tls=True, proxy="proxy", variable="ALL_PROXY"), SendOutcome.SENT,
                     "CONNECT", id="ALL_PROXY serves when no proxy is named for the scheme"),
        pytest.param(Route(tls=True, proxy="proxy", scheme="https"), SendOutcome.RETRY, None,
                     id="a proxy spoken to over TLS is not ours to speak: nothing is sent"),
        pytest.param(Route(tls=True, proxy="refusing proxy"), SendOutcome.RETRY, "CONNECT",
                     id="a tunnel the proxy refused sent nothing"),
        pytest.param(Route(tls=True, proxy="no proxy listening"), SendOutcome.RETRY, None,
                     id="a proxy that is down sent nothing"),
    ],
)  # fmt: skip
def test_the_proxy_settings_are_honoured_as_requests_honoured_them(
    certificates: Certificates,
    monkeypatch: pytest.MonkeyPatch,
    case: Route,
    outcome: SendOutcome,
    asked: str | None,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificates.ca_file))
    tls = certificates.server_context() if case.tls else None
    with FakeTwilio(keep_alive=True, tls=tls) as fake, Proxy(case.proxy != "proxy") as proxy:
        address = proxy.url if case.proxy != "no proxy listening" else closed_port_url()
        address = address.replace("http://", f"{case.scheme}://{PROXY_USER}:p%40ss@")
        named_in = case.variable or ("HTTPS_PROXY" if case.tls else "HTTP_PROXY")
        monkeypatch.setenv(named_in, address)
        if case.bypass:
            monkeypatch.setenv("NO_PROXY", case.bypass)
        result = send(fake)
    assert result.outcome is outcome
    assert len(fake.requests) == (1 if outcome is SendOutcome.SENT else 0)
    if asked is None:
        assert proxy.seen == []
        return
    [seen] = proxy.seen
    origin = fake.url.split("://")[1]
    target = origin if asked == "CONNECT" else fake.url + Path(fake.requests[0].path).as_posix()
    assert (seen.method, seen.target, seen.authorization) == (asked, target, PROXY_CREDENTIALS)
