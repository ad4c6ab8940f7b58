"""The Redis inbox: acknowledged messages waiting to be written, batch by batch, by a worker.

With ACK_AFTER=redis the webhook answers once the message is in this list (Redis with
`appendfsync always` has it on disk by then), and a worker writes a whole batch of them to the
database in one transaction. Each entry is the message sealed with the installed key, so the
list, the AOF file and any Redis dump hold no number in clear.

A batch moves from the inbox to a key of its own in one atomic step and is registered in a
sorted set by time; it is deleted only after its transaction commits. A pump or worker killed in
between leaves the batch registered, and the sweep enqueues it again. Writing a batch twice is
harmless: the inbound table's unique key (provider, external ID) turns the second into a no-op.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime

from redis import Redis

from gateway import privacy
from gateway.providers.base import InboundMessage

INBOX = "consulta:inbox"
BATCHES = "consulta:inbox:batches"  # sorted set: batch key -> when it was taken (or re-taken)
BATCH_PREFIX = "consulta:inbox:batch:"
FILL_POLL_SECONDS = 0.01  # how often a lingering pump looks whether its batch is full

# Move up to ARGV[1] more entries from the inbox onto the batch; register it with time ARGV[2].
_TAKE_MORE = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items > 0 then
  redis.call('LTRIM', KEYS[1], #items, -1)
  redis.call('RPUSH', KEYS[2], unpack(items))
end
redis.call('ZADD', KEYS[3], ARGV[2], KEYS[2])
return redis.call('LLEN', KEYS[2])
"""


# A USSD vote, into the inbox once per session. KEYS: the session's cast key, the inbox. ARGV:
# the sealed receipt, the sealed entry, the key's lifetime in seconds. Returns the sealed receipt
# the session's vote carries: this one, or the one a repeated hop already put in.
_PUT_ONCE = """
local given = redis.call('GET', KEYS[1])
if given then return given end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[3]))
redis.call('RPUSH', KEYS[2], ARGV[2])
return ARGV[1]
"""
CAST_PREFIX = "consulta:inbox:cast:"
CAST_SECONDS = 86400  # far longer than a session and its retries; the database dedupes after


def encode(message: InboundMessage) -> str:
    fields = {
        "provider": message.provider,
        "external_id": message.external_id,
        "sender": message.sender,
        "recipient": message.recipient,
        "body": message.body,
        "received_at": message.received_at.isoformat(),
        "channel": message.channel,
        "receipt": message.receipt,
    }
    return privacy.keys().seal(json.dumps(fields, separators=(",", ":")))


def decode(raw: bytes | str) -> InboundMessage:
    text = raw.decode() if isinstance(raw, bytes) else raw
    fields = json.loads(privacy.keys().open(text))
    fields["received_at"] = datetime.fromisoformat(fields["received_at"])
    return InboundMessage(**fields)


def put(redis: Redis, message: InboundMessage) -> None:
    redis.rpush(INBOX, encode(message))


def put_once(redis: Redis, message: InboundMessage) -> str:
    """Put a message that carries a receipt (a USSD vote) in, unless its ID already went in.

    The receipt its first copy carries: a hop repeated by the aggregator shows the voter the
    receipt they were first given, as the database's unique key would. The receipt is kept
    sealed: Redis alone does not tie a session to a receipt.
    """
    keys = privacy.keys()
    cast_key = f"{CAST_PREFIX}{message.provider}:{message.external_id}"
    sealed = keys.seal(message.receipt or "")
    given = redis.eval(_PUT_ONCE, 2, cast_key, INBOX, sealed, encode(message), CAST_SECONDS)
    return keys.open(given.decode() if isinstance(given, bytes) else str(given))


def take_batch(redis: Redis, size: int, wait_seconds: float, linger_seconds: float) -> str | None:
    """Move up to `size` entries into a new batch key; None if nothing came within the wait.

    The first entry is awaited with a blocking move; then the batch lingers until `size` are
    waiting or `linger_seconds` have passed, so that a busy second costs a few large jobs rather
    than many small ones: a job's fixed cost (RQ's own Redis writes, the batch's look-ups, a
    commit) is paid per job, not per message.
    """
    batch = BATCH_PREFIX + uuid.uuid4().hex
    # Registered before anything moves into it: a pump killed at any point after this leaves a
    # batch the sweep finds (an empty one costs the sweep one no-op job).
    redis.zadd(BATCHES, {batch: _now(redis)})
    if wait_seconds > 0:
        first = redis.blmove(INBOX, batch, wait_seconds, "LEFT", "RIGHT")  # type: ignore[arg-type]
    else:  # a blocking move with no timeout would wait for ever
        first = redis.lmove(INBOX, batch, "LEFT", "RIGHT")
    if first is None:
        redis.zrem(BATCHES, batch)
        return None
    if size > 1 and linger_seconds > 0:
        _wait_to_fill(redis, size - 1, linger_seconds)
    if size > 1:  # LRANGE 0 -1 would be the whole inbox
        redis.eval(_TAKE_MORE, 3, INBOX, batch, BATCHES, size - 1, _now(redis))
    return batch


def _wait_to_fill(redis: Redis, wanted: int, linger_seconds: float) -> None:
    """Until `wanted` more entries wait in the inbox, or for the linger at most."""
    deadline = time.monotonic() + linger_seconds
    while redis.llen(INBOX) < wanted:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, FILL_POLL_SECONDS))


def read_batch(redis: Redis, batch: str) -> list[InboundMessage]:
    return [decode(raw) for raw in redis.lrange(batch, 0, -1)]


def finish_batch(redis: Redis, batch: str) -> None:
    """After the commit: the batch is in the database now."""
    pipe = redis.pipeline(transaction=True)
    pipe.delete(batch)
    pipe.zrem(BATCHES, batch)
    pipe.execute()


def stale_batches(redis: Redis, older_than_seconds: float, limit: int = 1000) -> list[str]:
    """Batches taken this long ago and still not finished: their job was lost or is very late."""
    cutoff = _now(redis) - older_than_seconds
    found = redis.zrangebyscore(BATCHES, "-inf", cutoff, start=0, num=limit)
    batches = [b.decode() if isinstance(b, bytes) else str(b) for b in found]
    if batches:  # re-stamped, so a batch is re-queued at most once per period
        redis.zadd(BATCHES, dict.fromkeys(batches, _now(redis)))
    return batches


def waiting(redis: Redis) -> int:
    """Messages acknowledged and not yet written: in the inbox or in an unfinished batch."""
    batches: list[bytes] = redis.zrange(BATCHES, 0, -1)  # type: ignore[assignment]
    in_batches = sum(int(redis.llen(batch)) for batch in batches)
    return int(redis.llen(INBOX)) + in_batches


def _now(redis: Redis) -> float:
    """Redis's clock, so that every worker measures batch age the same way."""
    seconds, micros = redis.time()
    return seconds + micros / 1e6
