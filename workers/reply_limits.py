"""Which claimed replies may leave: none abroad, and at most REPLY_CAP_PER_HOUR to one number.

Each reply costs money, and a flood of messages (or of forged senders) must not become a flood
of paid SMS. A reply to a number outside ALLOWED_COUNTRIES is `blocked`; one over the hourly cap
is `capped`. Both are final and never sent.

The cap counts reply IDs, not attempts: each number has a Redis sorted set of the IDs of replies
let through in the last hour, scored by when they were first let through. A reply that is retried
(a 429, a job run twice) finds its own ID there and passes again without counting twice.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import phonenumbers
from redis import Redis

from gateway import privacy, redis_scripts
from gateway.settings import Settings

SEND, CAPPED, BLOCKED = "sending", "capped", "blocked"
HOUR_MS = 3_600_000

# KEYS: each reply's number's sorted set of reply IDs. ARGV: the cap, the window (ms), then each
# reply's ID, in the order of KEYS. Returns a 1 (may be sent) or 0 for each, in that order; the
# replies are judged one after another, so two to one number in a batch count twice. Redis' own
# clock, so every worker agrees on the window. One call for a claim's replies: a call per reply
# (in a pipeline, which redis-py opens with SCRIPT EXISTS) made a reply to the outbox cost the
# worker 0.12 to 0.16 ms of CPU against 0.09 to 0.12 (`bench.send_cpu`, docs/performance.md,
# ninth session).
CAP_SCRIPT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local cap, window_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
local passed = {}
for i, key in ipairs(KEYS) do
  local id = ARGV[i + 2]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms - window_ms)
  if redis.call('ZSCORE', key, id) then
    passed[i] = 1
  elseif redis.call('ZCARD', key) >= cap then
    passed[i] = 0
  else
    redis.call('ZADD', key, now_ms, id)
    redis.call('PEXPIRE', key, window_ms)
    passed[i] = 1
  end
end
return passed
"""


def verdicts(
    redis: Redis, settings: Settings, replies: Sequence[tuple[int, str]]
) -> dict[int, str]:
    """(reply id, recipient) -> sending, capped or blocked; one Redis call for the batch."""
    regions = settings.reply_regions
    found = {i: BLOCKED for i, to in replies if not in_regions(to, regions)}
    allowed = [(i, to) for i, to in replies if i not in found]
    if settings.reply_cap_per_hour <= 0 or not allowed:
        return found | {i: SEND for i, _ in allowed}
    keys = [f"consulta:replies:sent:{privacy.digest(to)}" for _, to in allowed]
    args = [settings.reply_cap_per_hour, HOUR_MS, *(reply_id for reply_id, _ in allowed)]
    passed = redis_scripts.script(redis, CAP_SCRIPT)(keys=keys, args=args)
    return found | {i: SEND if ok else CAPPED for (i, _), ok in zip(allowed, passed, strict=True)}


def in_regions(recipient: str, regions: frozenset[str] | None) -> bool:
    """Whether this is a phone number in E.164 of one of the regions (None: any region)."""
    if regions is not None and _plainly_in(recipient, regions):
        return True
    return _parsed_in(recipient, regions)


def _plainly_in(recipient: str, regions: frozenset[str]) -> bool:
    """True only where the full parse would say so, without it: a region that is alone behind
    its calling code (Venezuela behind +58, not the United States behind +1) and a national
    number of a length it allows (one starting with 0 is left to the parse).

    Parsing every recipient was a sixth of a reply's CPU on the way to the outbox (`py-spy`,
    cProfile of `bench.send_cpu`); every other recipient takes the full parse, so this only ever
    says yes sooner. tests/unit/test_flood.py holds the two to the same answers.
    """
    for prefix, lengths in _lone_codes(regions):
        if recipient.startswith(prefix):
            national = recipient[len(prefix) :]
            return (
                len(national) in lengths
                and national.isascii()
                and national.isdigit()
                and not national.startswith("0")
            )
    return False


@functools.lru_cache(maxsize=16)
def _lone_codes(regions: frozenset[str]) -> tuple[tuple[str, frozenset[int]], ...]:
    """("+58", lengths a Venezuelan national number may have) for each region alone behind its
    calling code."""
    lone = []
    for region in sorted(regions):
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if metadata is None or metadata.general_desc is None:
            continue
        code = metadata.country_code
        if code is None or phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code) != (region,):
            continue
        general = metadata.general_desc
        lengths = {*(general.possible_length or ()), *(general.possible_length_local_only or ())}
        lone.append((f"+{code}", frozenset(n for n in lengths if n > 0)))
    return tuple(lone)


def _parsed_in(recipient: str, regions: frozenset[str] | None) -> bool:
    try:
        number = phonenumbers.parse(recipient, None)
    except phonenumbers.NumberParseException:
        return False  # not a phone number in E.164: nowhere a reply could go
    if not phonenumbers.is_possible_number(number):
        return False
    return regions is None or phonenumbers.region_code_for_number(number) in regions
