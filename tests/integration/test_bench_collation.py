"""`python -m bench.collation` times a COPY under each collation asked for, on a real PostgreSQL."""

from __future__ import annotations

import re

import pytest

from bench import collation


def test_each_collation_is_timed_in_every_round_and_summed_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert collation.main(["--rows", "2000", "--pairs", "2", "--against", "default"]) == 0
    out = capsys.readouterr().out
    rounds = re.findall(r"^round (\d)\s+(\S+)\s+[\d.]+ s$", out, re.MULTILINE)
    assert sorted(rounds) == [("1", "C"), ("1", "default"), ("2", "C"), ("2", "default")]
    assert re.search(r"^C\s+COPY of 2,000 rows: [\d.]+, [\d.]+ s$", out, re.MULTILINE)
    assert "database    default collation " in out


def test_a_collation_the_server_lacks_is_named_and_the_run_stops_with_status_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert collation.main(["--rows", "10", "--pairs", "1", "--against", "xx-no-such"]) == 2
    out = capsys.readouterr().out
    assert "collation 'xx-no-such': this PostgreSQL has no such collation" in out
