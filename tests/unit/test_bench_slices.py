"""Each phase of a benchmark run votes with a slice of the registry that no other phase touches."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations
from pathlib import Path

import pytest

from bench import pipeline
from bench.steps import load_spec

ENV = {"TWILIO_AUTH_TOKEN": "token", "AFRICASTALKING_SECRET": "secret", "DATABASE_URL": "x"}


def voters(spec: dict[str, object]) -> list[range]:
    """The registry rows a phase's SMS and USSD sessions may vote with."""
    plan, ussd = spec["plan"], spec["ussd"]
    assert isinstance(plan, dict)
    taken = [range(plan["first_voter"], plan["first_voter"] + plan["voters"])]
    if isinstance(ussd, dict) and ussd["sessions"]:
        taken.append(range(ussd["first_voter"], ussd["first_voter"] + ussd["voters"]))
    return taken


@pytest.mark.parametrize(
    ("phases", "people"),
    [
        pytest.param(
            [(1200.0, 200), (None, 200), (None, 0)],
            1_000_000,
            id="bench.targets' phases, the last without USSD, never share a voter",
        ),
        pytest.param(
            [(None, 0), (None, 200)],
            100_000,
            id="a phase without USSD before one with it never shares a voter",
        ),
        pytest.param(
            [(None, 200), (None, 200), (None, 200)],
            100_000,
            id="a sweep over a small registry never shares a voter",
        ),
    ],
)
def test_every_phase_votes_with_voters_of_its_own(
    phases: list[tuple[float | None, int]], people: int, tmp_path: Path
) -> None:
    options = pipeline.parse(["--people", str(people), "--seconds", "60"])
    options = replace(
        options,
        workers=(2,) * len(phases),
        slice_ussd_sessions=max(sessions for _, sessions in phases),
    )
    taken: list[range] = []
    for index, (rate, sessions) in enumerate(phases):
        phase = replace(options, rate=rate, ussd_sessions=sessions)
        mode = "max" if rate is None else "rate"
        spec = load_spec(phase, 8000, index, 2, ENV, tmp_path, mode, 60.0)
        taken += voters(spec)
    assert all(0 <= r.start <= r.stop <= people for r in taken)
    for one, other in combinations(taken, 2):
        assert one.stop <= other.start or other.stop <= one.start, (one, other)
