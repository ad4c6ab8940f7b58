"""The count view: turnout per circuit against its eligible count, and who leads where."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import case, select

from gateway import results
from gateway.app import WebState
from gateway.models import ConsultationRow

CACHE_KEY = "consulta:ops:count:"
CACHE_SECONDS = 5  # counting 5,400 circuits is a few GROUP BYs: shared, not run per viewer
MAX_ROWS = 500  # a table longer than this is not read; the filter narrows it
TURNOUT_BINS = 10
SORTS = {
    "code": (lambda c: c["code"], False),
    "turnout-low": (lambda c: (c["turnout"], c["code"]), False),
    "turnout-high": (lambda c: (c["turnout"], c["code"]), True),
    "votes": (lambda c: (c["votes"], c["code"]), True),
}


def consultations(state: WebState) -> list[dict[str, str]]:
    """Open ones first, then the most recent."""
    with state.sessions() as session:
        rows = session.execute(
            select(ConsultationRow.slug, ConsultationRow.name, ConsultationRow.status).order_by(
                case((ConsultationRow.status == "open", 0), else_=1),
                ConsultationRow.opens_at.desc(),
            )
        ).all()
    return [{"slug": slug, "name": name, "status": status} for slug, name, status in rows]


def figures(state: WebState, slug: str, query: str = "", sort: str = "code") -> dict[str, Any]:
    """Everything the count page shows for one consultation; LookupError if there is none."""
    document, rules = _counted(state, slug)
    every = [_circuit(c, rules) for c in document["circuits"]]
    chosen = [c for c in every if _matches(c, query.strip().lower())]
    key, reverse = SORTS.get(sort, SORTS["code"])
    chosen.sort(key=key, reverse=reverse)
    return {
        "consultation": {"slug": slug, "name": document["name"]} | rules,
        "generated_at": document["generated_at"],
        "summary": _summary(chosen, rules["quorum"]),
        "distribution": _distribution(chosen),
        "circuits": chosen[:MAX_ROWS],
        "shown": min(len(chosen), MAX_ROWS),
        "matching": len(chosen),
        "total": len(every),
    }


def _counted(state: WebState, slug: str) -> tuple[dict[str, Any], dict[str, Any]]:
    cached = state.redis.get(CACHE_KEY + slug)
    if cached:
        both = json.loads(cached)
        return both["results"], both["rules"]
    try:
        report = results.results(state.sessions, slug)
    except results.UnknownConsultation as error:
        raise LookupError(str(error)) from error
    with state.sessions() as session:
        row = session.scalar(select(ConsultationRow).where(ConsultationRow.slug == slug))
    assert row is not None  # results() just found it
    rules = {"status": row.status, "winners": row.winners, "quorum": row.quorum}
    document = json.loads(results.as_json(report))
    state.redis.set(
        CACHE_KEY + slug, json.dumps({"results": document, "rules": rules}), ex=CACHE_SECONDS
    )
    return document, rules


def _matches(circuit: dict[str, Any], query: str) -> bool:
    # Circuit codes carry the territory (state, municipality, parish) as a prefix, so a code
    # prefix is the state or parish filter until the ballot file names them separately.
    return (
        not query or circuit["code"].lower().startswith(query) or query in circuit["name"].lower()
    )


def _circuit(circuit: dict[str, Any], rules: dict[str, Any]) -> dict[str, Any]:
    leading = leaders(circuit["options"], rules["winners"])
    return {
        "code": circuit["code"],
        "name": circuit["name"],
        "eligible": circuit["eligible"],
        "votes": circuit["votes"],
        "turnout": circuit["turnout"],
        "below_quorum": circuit["turnout"] < rules["quorum"],
        "leaders": leading,
        "tied": len(leading) > rules["winners"],
    }


def leaders(options: list[dict[str, Any]], places: int) -> list[dict[str, Any]]:
    """The options in the winning places now; more than `places` when the last place is tied.

    Only a live picture: the published winners apply the consultation's tie-break rule.
    """
    voted = sorted((o for o in options if o["votes"] > 0), key=lambda o: -o["votes"])
    if not voted:
        return []
    cut = voted[min(places, len(voted)) - 1]["votes"]
    return [
        {"option": o["option"], "title": o["title"], "votes": o["votes"]}
        for o in voted
        if o["votes"] >= cut
    ]


def _summary(circuits: list[dict[str, Any]], quorum: float) -> dict[str, Any]:
    eligible = sum(c["eligible"] for c in circuits)
    votes = sum(c["votes"] for c in circuits)
    return {
        "circuits": len(circuits),
        "eligible": eligible,
        "votes": votes,
        "turnout": round(votes / eligible, 4) if eligible else 0.0,
        "below_quorum": sum(c["below_quorum"] for c in circuits),
        "quorum": quorum,
    }


def _distribution(circuits: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """How many circuits fall in each tenth of turnout: 0–10 %, 10–20 %, … (100 % in the last)."""
    counts = [0] * TURNOUT_BINS
    for circuit in circuits:
        counts[min(int(circuit["turnout"] * TURNOUT_BINS), TURNOUT_BINS - 1)] += 1
    return {
        "from_percent": [i * 100 // TURNOUT_BINS for i in range(TURNOUT_BINS)],
        "circuits": counts,
    }
