"""The USSD menu as a pure state machine: a state, one input, the next state.

Both aggregator styles feed it one input at a time (Africa's Talking's whole path is cut into
the inputs not seen yet), so a crafted path that skips steps walks the same screens as a person
would. The menu never stores a vote: `Ledger.cast` hands it to the same queue and the same
worker checks as an SMS. It imports no framework; the texts come through `Say`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

from messages.gsm import to_ascii
from voting.identity import normalise_national_id
from voting.receipts import PAPER_RECEIPT

MAX_ID_TRIES = 3
MAX_TITLE = 40  # characters of a project's title on a ballot page
MAX_NAME = 30  # the catalogue holds every USSD text to its budget with a 30-character name
SCREEN_BUDGET = 160


class Say(Protocol):
    def __call__(self, key: str, **params: object) -> str: ...


class Ledger(Protocol):
    """What the menu may ask of the outside world."""

    def standing_receipt(self, person_id: int) -> str | None: ...

    def cast(self, voter: Voter, option: int) -> str: ...

    def fingerprint(self, national_id: str) -> str:
        """How the context writes a voter's ID: a keyed hash, so the session store holds none
        in clear (the vote's copy is sealed, as in the registry)."""
        ...


@dataclass(frozen=True)
class Voter:
    person_id: int
    national_id: str  # its fingerprint (see Ledger.fingerprint), never the ID itself
    circuit_id: int
    age_ok: bool = True
    # The registry's encrypted copy of the ID, as stored, for the vote's message; "" in a
    # session saved before it was kept, whose vote reads the ID from the registry instead.
    sealed_id: str = ""


@dataclass(frozen=True)
class Context:
    """What a session knows from the start: read once when it is dialled, never per hop."""

    name: str = ""
    closed: str | None = None  # ussd_closed, ussd_not_open or ussd_no_consultation
    opens: str = ""
    require_id: bool = False
    revote_last: bool = False
    voters: tuple[Voter, ...] = ()
    ballots: dict[int, dict[int, str]] = field(default_factory=dict)  # circuit -> option -> title
    consultation_id: int | None = None


@dataclass(frozen=True)
class State:
    step: str = "main"  # main | id | ballot | confirm | language | end
    locale: str = "es"
    purpose: str = "vote"  # what the ID is asked for: vote | status
    person_id: int | None = None
    page: int = 0
    option: int | None = None
    notice: str | None = None  # a one-line catalogue key shown above the next screen
    tries: int = 0
    end_key: str | None = None
    end_params: dict[str, object] = field(default_factory=dict)


def start(context: Context, locale: str) -> State:
    if context.closed:
        params: dict[str, object] = {"name": _name(context), "opens": context.opens}
        return State(step="end", locale=locale, end_key=context.closed, end_params=params)
    return State(locale=locale)


def step(state: State, context: Context, entry: str, say: Say, ledger: Ledger) -> State:
    """The state after one input."""
    entry = entry.strip()
    state = replace(state, notice=None)
    handler = {
        "main": _main, "id": _id, "ballot": _ballot, "confirm": _confirm, "language": _language,
    }.get(state.step)  # fmt: skip
    if handler is None:  # the session already ended: nothing can continue it
        return _end(state, "ussd_ended")
    return handler(state, context, entry, say, ledger)


def _end(state: State, key: str, **params: object) -> State:
    return replace(state, step="end", end_key=key, end_params=params)


def _invalid(state: State, key: str = "ussd_invalid") -> State:
    return replace(state, notice=key)


def _main(state: State, context: Context, entry: str, say: Say, ledger: Ledger) -> State:
    if entry in {"1", "2"}:
        purpose = "vote" if entry == "1" else "status"
        if not context.voters:
            return _end(state, "ussd_not_registered", name=_name(context))
        if len(context.voters) > 1 or context.require_id:
            return replace(state, step="id", purpose=purpose, tries=0)
        return _chosen(replace(state, purpose=purpose), context, context.voters[0], ledger)
    if entry == "3":
        return replace(state, step="language")
    if entry == "0":
        return _end(state, "ussd_goodbye")
    return _invalid(state)


def _chosen(state: State, context: Context, voter: Voter, ledger: Ledger) -> State:
    receipt = ledger.standing_receipt(voter.person_id)
    if receipt == PAPER_RECEIPT:  # paper votes are final, and have no receipt to show
        return _end(state, "ussd_voted_on_paper", name=_name(context))
    if state.purpose == "status":
        if receipt:
            return _end(state, "ussd_status_voted", receipt=receipt)
        return _end(state, "ussd_status_not_voted")
    if not voter.age_ok:
        return _end(state, "ussd_age", name=_name(context))
    if receipt and not context.revote_last:
        return _end(state, "ussd_already_voted", receipt=receipt)
    return replace(state, step="ballot", person_id=voter.person_id, page=0, option=None)


def _id(state: State, context: Context, entry: str, say: Say, ledger: Ledger) -> State:
    if entry in {"0", "00"}:  # back, or the main menu: a way out, never a wrong ID
        return replace(state, step="main")
    typed = normalise_national_id(entry)
    mark = ledger.fingerprint(typed) if typed else None
    voter = next((v for v in context.voters if v.national_id == mark), None)
    if voter is not None:
        return _chosen(state, context, voter, ledger)
    if state.tries + 1 >= MAX_ID_TRIES:
        return _end(state, "ussd_too_many_tries")
    return replace(state, tries=state.tries + 1, notice="ussd_wrong_id")


def _ballot(state: State, context: Context, entry: str, say: Say, ledger: Ledger) -> State:
    pages = ballot_pages(context, _voter(state, context), say)
    if entry == "9" and state.page + 1 < len(pages):
        return replace(state, page=state.page + 1)
    if entry == "0":
        return replace(state, page=state.page - 1) if state.page else replace(state, step="main")
    if entry == "00":
        return replace(state, step="main")
    # Any option of the ballot may be typed from any page: the confirmation names it. On a
    # ballot of nine, 9 means "more" until the last page, where it is option 9.
    # Compared as text: int() raises on "²" or on thousands of digits, and takes "٣" for 3.
    typed = entry.lstrip("0") if entry.isascii() and entry.isdigit() else None
    chosen = next((n for n in _options(state, context) if str(n) == typed), None)
    if chosen is not None:
        return replace(state, step="confirm", option=chosen)
    return _invalid(state)


def _confirm(state: State, context: Context, entry: str, say: Say, ledger: Ledger) -> State:
    if entry == "1" and state.option is not None:
        receipt = ledger.cast(_voter(state, context), state.option)
        return _end(state, "ussd_voted", receipt=receipt)
    if entry in {"2", "0"}:
        return replace(state, step="ballot", option=None)
    if entry == "00":
        return replace(state, step="main", option=None)
    return _invalid(state)


def _language(state: State, context: Context, entry: str, say: Say, ledger: Ledger) -> State:
    chosen = {"1": "es", "2": "en"}.get(entry)
    if chosen:
        return replace(state, step="main", locale=chosen)
    if entry in {"0", "00"}:
        return replace(state, step="main")
    return _invalid(state)


def _voter(state: State, context: Context) -> Voter:
    return next(v for v in context.voters if v.person_id == state.person_id)


def _options(state: State, context: Context) -> dict[int, str]:
    return context.ballots.get(_voter(state, context).circuit_id, {})


# -- screens --------------------------------------------------------------------------------


def screen(state: State, context: Context, say: Say) -> tuple[str, bool]:
    """The text on the handset, and whether the session ends with it."""
    if state.step == "end":
        return say(state.end_key or "ussd_ended", **state.end_params), True
    body = _body(state, context, say)
    if state.notice:
        body = f"{say(state.notice)}\n{body}"
    return body, False


def _body(state: State, context: Context, say: Say) -> str:
    if state.step == "main":
        return say("ussd_welcome", name=_name(context))
    if state.step == "id":
        return say("ussd_ask_id")
    if state.step == "language":
        return say("ussd_language")
    if state.step == "confirm" and state.option is not None:
        title = _short(_options(state, context).get(state.option, ""), MAX_TITLE)
        return say("ussd_confirm", option=state.option, title=title)
    pages = ballot_pages(context, _voter(state, context), say)
    return pages[min(state.page, len(pages) - 1)]


def ballot_pages(context: Context, voter: Voter, say: Say) -> list[str]:
    """The ballot cut into screens that fit, each with its way forward and back.

    Room is kept for a one-line notice above the page, so an error never pushes it over:
    only the notices that can stand above a ballot, as a wider reserve halves each page.
    """
    options = context.ballots.get(voter.circuit_id, {})
    lines = [f"{n} {_short(title, MAX_TITLE)}" for n, title in sorted(options.items())]
    reserve = max(len(say(key)) for key in ("ussd_invalid", "ussd_resumed")) + 1
    header, more, last = say("ussd_ballot_header"), say("ussd_nav_more"), say("ussd_nav_last")
    groups: list[list[str]] = [[]]
    for line in lines:
        candidate = "\n".join([header, *groups[-1], line, more])
        if groups[-1] and len(candidate) + reserve > SCREEN_BUDGET:
            groups.append([])
        groups[-1].append(line)
    return [
        "\n".join([header, *group, last if i == len(groups) - 1 else more])
        for i, group in enumerate(groups)
    ]


def _name(context: Context) -> str:
    return _short(context.name, MAX_NAME)


def _short(text: str, limit: int) -> str:
    """One line of plain ASCII, at most `limit` long: a title or a name typed by anyone.

    Transliterated first, as "ß" or "…" grow when spelled in ASCII, and a ballot line never
    goes through the catalogue; line breaks would add lines to the screen.
    """
    flat = " ".join(to_ascii(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."
