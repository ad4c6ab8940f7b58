"""What the load process will send: Twilio webhooks, each one signed before the clock starts.

A plan is a list of requests in the order they go out. Most are first votes from distinct
registered voters; mixed in are re-sent MessageSids (as Twilio redelivers), a second, different
vote from someone who already voted, and invalid messages: unknown senders, garbage bodies,
options not on the ballot, and a few with a wrong signature (refused with 403, never stored).
Each request keeps what it should lead to, so the orchestrator can check the database after.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from bench import synthetic

# Kinds of request. DUPLICATE re-sends the exact bytes (same MessageSid) of an earlier request.
VOTE, REVOTE, UNKNOWN, GARBAGE, BAD_OPTION, BAD_SIGNATURE, DUPLICATE = range(7)
KIND_NAMES = ("vote", "revote", "unknown_sender", "garbage", "bad_option", "bad_signature", "dup")
# What the worker should record for each kind (a vote: confirmed or already_voted, see checks).
EXPECTED_OUTCOME = {
    UNKNOWN: "not_registered",
    GARBAGE: "unrecognised",
    BAD_OPTION: "no_such_option",
}
DEFAULT_MIX = {
    REVOTE: 0.02,
    UNKNOWN: 0.02,
    GARBAGE: 0.015,
    BAD_OPTION: 0.005,
    BAD_SIGNATURE: 0.01,
    DUPLICATE: 0.05,
}  # the rest are first votes: about 88%
VOTE_SPELLINGS = ("VOTO {n}", "voto {n}", "Voto #{n}", "{n}", "VOTE {n}", "V{n}", "Voto: {n}")
GARBAGE_BODIES = ("hola buenas", "gracias por todo", "que es esto", "buenas tardes amigos", "ok")
DUPLICATE_BACK = (20, 2_000)  # a duplicate repeats a request sent this many requests earlier
REVOTE_AFTER = 300  # a second vote comes at least this many requests after the first
WEBHOOK_PATH = "/sms/twilio"
GATEWAY_NUMBER = "+582125550000"


@dataclass(frozen=True)
class Request:
    kind: int  # for a duplicate: the kind of the request it repeats
    sid: str
    person: int  # -1 when the sender is not registered
    option: int  # 0 when the body is not a vote
    payload: bytes  # the whole HTTP/1.1 request, ready to write
    duplicate: bool = False


@dataclass(frozen=True)
class PlanSpec:
    count: int  # requests in the plan
    first_voter: int  # SMS voters are taken in order from here...
    voters: int  # ...this many of them; past that, voters repeat (and get already_voted)
    people: int  # the whole registry, for garbage and bad-option senders
    token: str  # TWILIO_AUTH_TOKEN
    public_url: str  # PUBLIC_URL: what Twilio signs
    seed: int = 1


def build(spec: PlanSpec) -> tuple[list[Request], int]:
    """The requests, signed; and how many first votes had to reuse a voter (0 if none)."""
    rng = random.Random(spec.seed)  # noqa: S311 - a reproducible load, not a secret
    signer = RequestValidator(spec.token)
    url = spec.public_url.rstrip("/") + WEBHOOK_PATH
    kinds, weights = _kinds_and_weights()
    plan: list[Request] = []
    voted: list[tuple[int, int, int]] = []  # (position, person, option) of first votes
    positions: list[int] = []  # the positions of `voted`, for bisecting
    next_voter, reused = 0, 0
    for position in range(spec.count):
        kind = rng.choices(kinds, weights)[0]
        if kind == DUPLICATE and position >= DUPLICATE_BACK[0]:
            plan.append(_duplicate(plan, position, rng))
            continue
        eligible = bisect.bisect_left(positions, position - REVOTE_AFTER)
        if kind == REVOTE and eligible:
            earlier = voted[rng.randrange(max(0, eligible - 5_000), eligible)]
            plan.append(_signed(signer, url, REVOTE, earlier[1], _other_option(earlier, rng), rng))
            continue
        if kind in (DUPLICATE, REVOTE):
            kind = VOTE  # nothing to repeat yet
        if kind == VOTE:
            person = spec.first_voter + next_voter % max(1, spec.voters)
            reused += next_voter >= spec.voters
            next_voter += 1
            option = rng.randint(1, synthetic.options_of(synthetic.circuit_of(person)))
            voted.append((position, person, option))
            positions.append(position)
            plan.append(_signed(signer, url, VOTE, person, option, rng))
        else:
            plan.append(_invalid(signer, url, kind, spec.people, rng))
    return plan, reused


def _kinds_and_weights() -> tuple[list[int], list[float]]:
    kinds = [VOTE, *DEFAULT_MIX]
    return kinds, [1.0 - sum(DEFAULT_MIX.values()), *DEFAULT_MIX.values()]


def _duplicate(plan: list[Request], position: int, rng: random.Random) -> Request:
    low = max(0, position - DUPLICATE_BACK[1])
    original = plan[rng.randrange(low, position - DUPLICATE_BACK[0] + 1)]
    return Request(
        original.kind, original.sid, original.person, original.option, original.payload, True
    )


def _other_option(earlier: tuple[int, int, int], rng: random.Random) -> int:
    _, person, option = earlier
    count = synthetic.options_of(synthetic.circuit_of(person))
    return rng.choice([n for n in range(1, count + 1) if n != option])


def _invalid(
    signer: RequestValidator, url: str, kind: int, people: int, rng: random.Random
) -> Request:
    if kind == UNKNOWN:
        return _signed(signer, url, UNKNOWN, -1, rng.randint(1, 5), rng)
    if kind == BAD_SIGNATURE:
        return _signed(signer, url, BAD_SIGNATURE, -1, rng.randint(1, 5), rng)
    person = rng.randrange(people)
    if kind == GARBAGE:
        return _signed(signer, url, GARBAGE, person, 0, rng)
    return _signed(signer, url, BAD_OPTION, person, 9, rng)  # every ballot has at most 7


def _signed(
    signer: RequestValidator, url: str, kind: int, person: int, option: int, rng: random.Random
) -> Request:
    sid = f"SM{rng.getrandbits(128):032x}"
    sender = (
        synthetic.phone(person) if person >= 0 else synthetic.unknown_phone(rng.getrandbits(32))
    )
    if kind == GARBAGE:
        body = rng.choice(GARBAGE_BODIES)
    else:
        body = rng.choice(VOTE_SPELLINGS).format(n=option)
    form = twilio_form(sid, sender, body)
    signature = signer.compute_signature(url, form)
    if kind == BAD_SIGNATURE:
        signature = signature[:-4] + ("AAA=" if not signature.endswith("AAA=") else "BBB=")
    return Request(kind, sid, person, option, http_request(form, signature))


def twilio_form(sid: str, sender: str, body: str) -> dict[str, str]:
    """The parameters of a real Twilio inbound webhook (twilio.com/docs/messaging/guides/...)."""
    return {
        "ToCountry": "VE",
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": "VE",
        "To": GATEWAY_NUMBER,
        "ToZip": "",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }


def http_request(form: dict[str, str], signature: str, path: str = WEBHOOK_PATH) -> bytes:
    body = urlencode(form).encode()
    head = (
        f"POST {path} HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        "User-Agent: TwilioProxy/1.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"X-Twilio-Signature: {signature}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body
