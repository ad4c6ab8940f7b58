"""Where a USSD session's menu position lives between hops: Redis, with the session's TTL.

A session is kept under its aggregator's session ID. A copy is also kept under the phone for a
few minutes, so that a voter whose call dropped can dial again and resume where they were.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from redis import Redis

from gateway import privacy
from gateway.ussd.menu import Context, State, Voter


@dataclass(frozen=True)
class Session:
    state: State
    context: Context
    seen: int = 0  # inputs of Africa's Talking's path already walked


def _session_key(provider: str, session_id: str) -> str:
    return f"consulta:ussd:session:{provider}:{session_id}"


def _resume_key(phone: str) -> str:
    return f"consulta:ussd:resume:{privacy.digest(phone)}"  # no number in clear in Redis


def load(redis: Redis, provider: str, session_id: str) -> Session | None:
    return _decode(redis.get(_session_key(provider, session_id)))


def load_resumable(redis: Redis, phone: str) -> Session | None:
    return _decode(redis.get(_resume_key(phone)))


def save(  # noqa: PLR0913 - the two keys and their two lifetimes
    redis: Redis,
    provider: str,
    session_id: str,
    phone: str,
    session: Session,
    ttl: int,
    resume_ttl: int,
) -> None:
    """Keep the session; keep a resumable copy unless it ended (an ended menu is not resumed).

    One round trip, not a transaction: the two keys need no atomicity (a resumable copy a step
    behind resumes a step back), and MULTI/EXEC cost Redis and this process two more replies.
    """
    raw = _encode(session)
    with redis.pipeline(transaction=False) as pipe:
        pipe.set(_session_key(provider, session_id), raw, ex=ttl)
        if session.state.step == "end":
            pipe.delete(_resume_key(phone))
        elif session.state.step != "main":
            pipe.set(_resume_key(phone), raw, ex=resume_ttl)
        pipe.execute()


def forget(redis: Redis, provider: str, session_id: str) -> None:
    redis.delete(_session_key(provider, session_id))


def _encode(session: Session) -> str:
    context = _fields(session.context)
    context["voters"] = [_fields(voter) for voter in session.context.voters]
    # JSON keys are strings: keep the ballots as lists of pairs so the numbers survive.
    context["ballots"] = [[c, list(o.items())] for c, o in session.context.ballots.items()]
    return json.dumps({"state": _fields(session.state), "context": context, "seen": session.seen})


def _fields(instance: Context | State | Voter) -> dict[str, Any]:
    """A dataclass's fields, one level deep: `asdict` copies every ballot title on every hop."""
    return {f.name: getattr(instance, f.name) for f in fields(instance)}


def _decode(raw: bytes | str | None) -> Session | None:
    if raw is None:
        return None
    data = json.loads(raw)
    context = data["context"]
    context["voters"] = tuple(Voter(**v) for v in context["voters"])
    context["ballots"] = {int(c): {int(n): t for n, t in opts} for c, opts in context["ballots"]}
    return Session(State(**data["state"]), Context(**context), int(data["seen"]))
