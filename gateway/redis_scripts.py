"""Lua scripts sent by their SHA: one redis-py Script per client and script, made on first use."""

from __future__ import annotations

import functools

from redis import Redis
from redis.commands.core import Script


@functools.cache
def script(redis: Redis, source: str) -> Script:
    """This script on this client. Called, it is sent by its SHA; redis-py sends its text again
    only when Redis answers that it does not know it (after a restart)."""
    return redis.register_script(source)
