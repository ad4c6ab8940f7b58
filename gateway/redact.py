"""Connection URLs as they may be printed or logged: with any password replaced by ***.

REDIS_URL and DATABASE_URL may carry `user:password@`, and libpq and redis-py also read a
`password=` query parameter. Both are hidden; everything else (host, port, database) is kept
exactly as written, since that is what an operator needs to see.
"""

from __future__ import annotations

HIDDEN = "***"
PASSWORD_PARAMETERS = frozenset({"password", "passwd", "pass"})


def password_hidden(url: str | None) -> str:
    """`url` without its password; "(not set)" for none."""
    if not url:
        return "(not set)"
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    # The authority ends at the first of / ? #; a password may hold none of them unescaped.
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, host = authority.rpartition("@")
    if at and ":" in userinfo:
        authority = f"{userinfo.split(':', 1)[0]}:{HIDDEN}@{host}"
    return f"{scheme}://{authority}{_query_hidden(tail)}"


def _query_hidden(tail: str) -> str:
    path, question, rest = tail.partition("?")
    if not question:
        return tail
    query, hash_, fragment = rest.partition("#")
    pairs = [_pair_hidden(pair) for pair in query.split("&")]
    return f"{path}?{'&'.join(pairs)}{hash_}{fragment}"


def _pair_hidden(pair: str) -> str:
    name, equals, _ = pair.partition("=")
    return f"{name}={HIDDEN}" if equals and name.lower() in PASSWORD_PARAMETERS else pair
