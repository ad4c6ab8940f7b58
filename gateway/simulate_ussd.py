"""`consulta simulate ussd`: a handset dialling the gateway through Africa's Talking.

Africa's Talking sends the whole path on every hop: `text` is every input so far joined by `*`,
empty when the number is dialled. The simulator builds it exactly so (`next_text`), posts the
same form the aggregator posts, and shows what the handset would show: the screen without its
`CON `/`END ` prefix.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEMO_FILE = Path("var/demo.json")
CALLBACK_PATH = "/ussd/africastalking/"
NETWORK_CODE = "73401"  # a Venezuelan operator (Movilnet); the gateway does not read it
SESSION_SECONDS = 180  # Africa's Talking closes a session after about three minutes
HOP_TIMEOUT_SECONDS = 15  # what Africa's Talking waits for an answer before it gives up
RULE = "-" * 32

Reader = Callable[[str], str]  # shows the prompt, returns a line; EOFError when there is none
Writer = Callable[[str], None]
Poster = Callable[["Dial", str], "Reply"]


class UssdError(Exception):
    """The gateway could not be reached, or answered what ends a session on a handset."""


@dataclass(frozen=True)
class Dial:
    """One session: where the aggregator posts and what it says about the caller."""

    url: str
    phone: str
    service_code: str = "*123#"
    session_id: str = ""
    network_code: str = NETWORK_CODE


@dataclass(frozen=True)
class Reply:
    status: int
    body: str


@dataclass(frozen=True)
class Shown:
    """What the handset shows after one hop."""

    text: str
    ends: bool


def new_session_id() -> str:
    return "ATUid_" + secrets.token_hex(16)  # the shape of Africa's Talking's own IDs


def read_demo(path: Path = DEMO_FILE) -> dict[str, Any]:
    """What the running demo wrote down; empty when there is none or it cannot be read."""
    try:
        facts = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return facts if isinstance(facts, dict) else {}


def callback_url(url: str | None, secret: str | None, demo: dict[str, Any]) -> str:
    """The URL Africa's Talking would call.

    `url` is the gateway's base URL, or a whole callback URL (one that already holds
    /ussd/africastalking/<secret>), which is then used as it is.
    """
    if url and CALLBACK_PATH in url:
        return url
    base = (url or demo.get("public_url") or "").rstrip("/")
    secret = secret or demo.get("africastalking_secret")
    if not base.startswith("http") or not secret:
        raise LookupError(
            "no USSD callback found: start `consulta demo`, or pass --url and --secret "
            "(or set AFRICASTALKING_SECRET)"
        )
    return base + CALLBACK_PATH + urllib.parse.quote(secret, safe="")


def next_text(previous_text: str, entry: str) -> str:
    """The `text` Africa's Talking sends after `entry`: every input so far, joined by `*`.

    An empty `previous_text` means nothing was typed yet (the dial). What the user typed is
    appended as it is, a `*` in it included, as the aggregator does.
    """
    return entry if previous_text == "" else f"{previous_text}*{entry}"


def at_form(dial: Dial, text: str) -> dict[str, str]:
    return {
        "sessionId": dial.session_id,
        "phoneNumber": dial.phone,
        "networkCode": dial.network_code,
        "serviceCode": dial.service_code,
        "text": text,
    }


def post_hop(dial: Dial, text: str) -> Reply:
    """One callback, as Africa's Talking posts it: a form, answered in plain text."""
    request = urllib.request.Request(  # noqa: S310 - the URL is the operator's own gateway
        dial.url,
        data=urllib.parse.urlencode(at_form(dial, text)).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=HOP_TIMEOUT_SECONDS) as answer:  # noqa: S310
            return Reply(answer.status, answer.read().decode())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read().decode(errors="replace"))
    except (urllib.error.URLError, OSError) as error:
        raise UssdError(f"cannot reach {dial.url}: {error}") from error


def shown(reply: Reply) -> Shown:
    """The screen in a reply; UssdError for what Africa's Talking would turn into an error."""
    if reply.status != 200:
        raise UssdError(f"the gateway answered {reply.status}: {reply.body.strip()}")
    for prefix, ends in (("CON ", False), ("END ", True)):
        if reply.body.startswith(prefix):
            return Shown(reply.body[len(prefix) :], ends)
    raise UssdError(f"the answer starts with neither CON nor END: {reply.body[:60]!r}")


def framed(screen: Shown) -> str:
    """The screen between two rules, line for line as the handset shows it."""
    return "\n".join([RULE, screen.text, RULE])


def scripted(entries: Iterable[str], write: Writer) -> Reader:
    """A reader that types the given entries, echoed after the prompt, then hangs up."""
    pending = iter(entries)

    def read(prompt: str) -> str:
        entry = next(pending, None)
        if entry is None:
            raise EOFError
        write(prompt + entry)
        return entry

    return read


def run_session(  # noqa: PLR0913 - the session, its I/O and its clock, each injectable
    dial: Dial,
    read: Reader,
    write: Writer,
    post: Poster = post_hop,
    clock: Callable[[], float] = time.monotonic,
    verbose: bool = False,
) -> bool:
    """Dial, then show each screen and send each entry until END; True if the gateway ended it.

    Stops without END when the reader has no more (Ctrl-D, or the scripted inputs ran out),
    on Ctrl-C, or when the session outlives what Africa's Talking allows.
    """
    started, text = clock(), ""
    try:
        while True:
            if verbose:
                write(f"  (POST text={text!r})")
            screen = shown(post(dial, text))
            write(framed(screen))
            if screen.ends:
                write("[session ended]")
                return True
            entry = read("> ")
            if clock() - started > SESSION_SECONDS:
                write(f"[session timed out: Africa's Talking allows {SESSION_SECONDS} s]")
                return False
            text = next_text(text, entry)
    except EOFError:
        write("[hung up]")
    except KeyboardInterrupt:
        write("\n[hung up]")
    return False
