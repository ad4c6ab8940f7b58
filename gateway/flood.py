"""Flood control at the door: per-sender and overall rate limits, one Redis round trip a message.

A real voter sends a handful of messages; a script or a stuck handset sends hundreds. Every
inbound webhook asks `admit` before it writes anything, so a flood costs one small Lua script
per message, never a database commit. The windows are fixed: a counter that starts at the
sender's first message and expires with its window (INCR, then PEXPIRE when it has no TTL).

A refused message still gets the provider's 2xx (a 4xx or 5xx makes Twilio and Africa's Talking
retry, doubling the flood), but it is neither stored nor processed. It is counted in a Redis hash
that `/metrics` reads (`consulta_flood_refused_total`), and logged with the number masked. If
Redis is down the message is admitted: the database is the record, and losing a vote is worse
than storing a flood.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from redis import Redis
from redis.exceptions import RedisError

from gateway import privacy, redis_scripts
from gateway.settings import Settings

log = logging.getLogger(__name__)

REFUSED_KEY = "consulta:flood:refused"  # hash "channel:reason" -> messages refused, for /metrics
OVERALL_KEY = "consulta:flood:all"  # every sender together, per second

# KEYS: the sender's minute counter, its hour counter, the overall counter, the refusals hash,
# and optionally a list. ARGV: per-minute, per-hour and overall-per-second limits (0 is no
# limit), the channel, and optionally an entry: pushed onto that list if the message is admitted,
# so that admitting a message and taking it into the Redis inbox cost one round trip together.
# Returns {reason, how far over the limit}; reason is "" when the message is admitted. A sender
# already refused does not spend the overall budget, so one flooder cannot crowd others out.
ADMIT_SCRIPT = """
local function bump(key, window_ms)
  local count = redis.call('INCR', key)
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, window_ms) end
  return count
end
local function over(count, limit)
  return limit > 0 and count > limit
end
local function refuse(reason, count, limit)
  redis.call('HINCRBY', KEYS[4], ARGV[4] .. ':' .. reason, 1)
  return {reason, count - limit}
end
local per_minute, per_hour, per_second = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local minute = bump(KEYS[1], 60000)
local hour = bump(KEYS[2], 3600000)
if over(minute, per_minute) then return refuse('sender_minute', minute, per_minute) end
if over(hour, per_hour) then return refuse('sender_hour', hour, per_hour) end
if per_second > 0 then
  local overall = bump(KEYS[3], 1000)
  if over(overall, per_second) then return refuse('overall', overall, per_second) end
end
if ARGV[5] then redis.call('RPUSH', KEYS[5], ARGV[5]) end
return {'', 0}
"""


# Only counters still alive: a DECR on an expired one would leave a key at -1 with no expiry.
REFUND_SCRIPT = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then redis.call('DECR', key) end
end
return 0
"""


class Channel(StrEnum):
    SMS = "sms"  # Twilio and Africa's Talking share one budget per number
    USSD = "ussd"  # a hop is a keystroke, not a message: its own, larger budget


@dataclass(frozen=True)
class Limits:
    per_minute: int
    per_hour: int
    overall_per_second: int

    @classmethod
    def for_channel(cls, settings: Settings, channel: Channel) -> Limits:
        if channel is Channel.USSD:
            return cls(
                settings.flood_ussd_hops_per_minute,
                settings.flood_ussd_hops_per_hour,
                settings.flood_overall_per_second,
            )
        return cls(
            settings.flood_per_sender_per_minute,
            settings.flood_per_sender_per_hour,
            settings.flood_overall_per_second,
        )


@dataclass(frozen=True)
class Verdict:
    reason: str  # "" when admitted; else sender_minute, sender_hour or overall
    over_by: int  # 1 for the first refusal of a window: the one worth a warning

    @property
    def admitted(self) -> bool:
        return not self.reason


def check(
    redis: Redis,
    limits: Limits,
    channel: Channel,
    sender: str,
    push: tuple[str, str] | None = None,
) -> Verdict:
    """Count this message against its sender and everyone; raises RedisError if Redis is down.

    With `push` (a list key and an entry), an admitted message's entry is pushed onto the list
    in the same script: both happen, or neither.
    """
    sender_key = f"consulta:flood:{channel.value}:{privacy.digest(sender)}"
    keys = [f"{sender_key}:minute", f"{sender_key}:hour", OVERALL_KEY, REFUSED_KEY]
    args = [limits.per_minute, limits.per_hour, limits.overall_per_second, channel.value]
    if push is not None:
        keys.append(push[0])
        args.append(push[1])
    reason, over_by = redis_scripts.script(redis, ADMIT_SCRIPT)(keys=keys, args=args)
    return Verdict(_text(reason), int(over_by))


def admit(
    redis: Redis,
    settings: Settings,
    channel: Channel,
    sender: str,
    push: tuple[str, str] | None = None,
) -> bool:
    """True if this message may be stored; a refusal is counted and logged, never silent.

    With `push`, True also means the entry is on the list. If Redis is down the message is
    admitted (and nothing is pushed): RedisError is then raised when `push` was asked for, so
    that the caller stores the message another way.
    """
    try:
        verdict = check(redis, Limits.for_channel(settings, channel), channel, sender, push)
    except RedisError:
        if push is not None:
            raise
        masked = privacy.mask(sender)
        log.warning("flood control off, redis down: %s from %s admitted", channel.value, masked)
        return True
    if not verdict.admitted:
        _log_refusal(verdict, channel, sender)
    return verdict.admitted


def refund(redis: Redis, channel: Channel, sender: str) -> None:
    """Give back what `admit` counted for a message we then failed to store (a 503).

    The provider sends it again; without the refund, its retries would use up the sender's
    window and the message would at last be "acknowledged" as a flood, and never stored.
    """
    sender_key = f"consulta:flood:{channel.value}:{privacy.digest(sender)}"
    keys = [f"{sender_key}:minute", f"{sender_key}:hour", OVERALL_KEY]
    try:
        redis.eval(REFUND_SCRIPT, len(keys), *keys)
    except RedisError:
        log.warning("flood refund skipped, redis down: %s", privacy.mask(sender))


def _log_refusal(verdict: Verdict, channel: Channel, sender: str) -> None:
    # The first refusal of a window is a warning; the rest of a flood would drown the log.
    level = logging.WARNING if verdict.over_by == 1 else logging.DEBUG
    masked = privacy.mask(sender)
    log.log(level, "flood: %s from %s refused (%s)", channel.value, masked, verdict.reason)


def refused_counts(redis: Redis) -> dict[tuple[str, str], int]:
    """(channel, reason) -> messages refused so far, as /metrics reports them."""
    counts: dict[tuple[str, str], int] = {}
    for field, value in redis.hgetall(REFUSED_KEY).items():
        channel, _, reason = _text(field).partition(":")
        counts[(channel, reason)] = int(value)
    return counts


def _text(value: bytes | str) -> str:
    """Redis answers bytes unless the client decodes; accept both."""
    return value.decode() if isinstance(value, bytes) else value
