"""The pure part of reconciliation: windows, times, flood limits replayed, the comparison."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.reconcile import (
    MARGIN,
    GatewayMessage,
    ProviderMessage,
    Window,
    compare,
    flooded,
    moment,
    window,
)

T0 = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
CARACAS = ZoneInfo("America/Caracas")


def sent(sid: str, seconds: float, sender: str = "+584141234567") -> ProviderMessage:
    return ProviderMessage(sid, sender, "+582125550000", "VOTO 1", T0 + timedelta(seconds=seconds))


def stored(sid: str, seconds: float) -> GatewayMessage:
    return GatewayMessage(sid, "+584141234567", T0 + timedelta(seconds=seconds))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-08T07:00", datetime(2026, 3, 8, 11, 0, tzinfo=UTC)),
        ("2026-03-08T07:00:00+00:00", datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
        ("2026-03-08T07:00Z", datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
        (" 2026-03-08 ", datetime(2026, 3, 8, 4, 0, tzinfo=UTC)),
    ],
    ids=[
        "a time without an offset is read in the consultation's zone",
        "an explicit offset stands",
        "Z means UTC",
        "a bare date is its midnight, with spaces around it ignored",
    ],
)
def test_a_moment_is_read_as_iso(text: str, expected: datetime) -> None:
    assert moment(text, CARACAS) == expected


@pytest.mark.parametrize("text", ["8/3/2026", "yesterday", "", "2026-13-01"])
def test_anything_else_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="such as 2026-03-08T07:00"):
        moment(text, CARACAS)


@pytest.mark.parametrize(
    ("since", "until", "error"),
    [
        (T0, T0, "earlier than --until"),
        (T0, T0 - timedelta(hours=1), "earlier than --until"),
        (T0 + timedelta(hours=1), None, "in the future"),
    ],
    ids=["an empty window", "a window that ends before it starts", "a start after now"],
)
def test_a_window_that_cannot_hold_a_message_is_refused(
    since: datetime, until: datetime | None, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        window(since, until, now=T0)


def test_a_window_without_an_end_runs_until_now_in_utc() -> None:
    span = window(T0.astimezone(CARACAS) - timedelta(hours=2), None, now=T0)
    assert span == Window(T0 - timedelta(hours=2), T0)
    assert span.since.tzinfo == UTC


def test_the_comparison_counts_the_window_and_matches_by_sid_with_a_margin() -> None:
    span = Window(T0, T0 + timedelta(hours=1))
    provider = [sent("SM-a", 10), sent("SM-b", 20), sent("SM-c", 30), sent("SM-edge", -5)]
    gateway = [stored("SM-a", 11), stored("SM-edge", 2), stored("SM-x", 40)]
    found = compare(provider, gateway, stored={"SM-a", "SM-edge"}, span=span, refused={"SM-c"})
    assert (found.provider_count, found.gateway_count) == (3, 3)
    assert [m.sid for m in found.missing] == ["SM-b"]
    assert [m.sid for m in found.flooded] == ["SM-c"]
    # Sent 5 s before the window, received 2 s into it: clocks apart, not a stranger.
    assert [m.sid for m in found.unknown] == ["SM-x"]


def test_a_message_stored_at_any_time_is_not_missing() -> None:
    span = Window(T0, T0 + timedelta(hours=1))
    found = compare([sent("SM-a", 10)], [], stored={"SM-a"}, span=span, refused=set())
    assert found.missing == []


def test_the_margin_covers_a_webhook_retried_for_minutes() -> None:
    assert timedelta(minutes=5) < MARGIN


@pytest.mark.parametrize(
    ("seconds", "per_minute", "per_hour", "refused"),
    [
        ([0, 1, 2], 3, 0, []),
        ([0, 1, 2, 3], 3, 0, ["3"]),
        ([0, 1, 2, 61], 3, 0, []),
        ([0, 59, 60, 61, 62], 3, 0, []),
        ([0, 10, 20, 30], 3, 0, ["30"]),
        ([0, 100, 200, 300], 0, 3, ["300"]),
        ([0, 1, 2, 3], 0, 0, []),
    ],
    ids=[
        "as many as the limit are admitted",
        "the one over the limit is refused",
        "a new minute starts a new count",
        "the window starts at the first message, not on the clock's minute",
        "a refused message still counts, as the Redis counter does",
        "the hourly limit applies on its own",
        "0 means no limit",
    ],
)
def test_flood_limits_are_replayed_per_sender_on_twilios_times(
    seconds: list[int], per_minute: int, per_hour: int, refused: list[str]
) -> None:
    messages = [sent(str(s), s) for s in seconds]
    others = [sent(f"other-{s}", s, sender="+584241111111") for s in seconds]
    assert flooded(messages + others, per_minute, per_hour) == set(refused) | {
        f"other-{s}" for s in refused
    }
