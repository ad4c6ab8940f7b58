"""Connection URLs as they may be printed: the password hidden, everything else as written."""

from __future__ import annotations

import pytest

from gateway.redact import password_hidden


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@10.0.0.5:6379/0", "redis://:***@10.0.0.5:6379/0"),
        ("rediss://default:s3cret@[::1]:6380/2", "rediss://default:***@[::1]:6380/2"),
        (
            "postgresql://consulta:p%40ss@db:5432/consulta",
            "postgresql://consulta:***@db:5432/consulta",
        ),
        (
            "postgresql://consulta:a@b@db/x?sslmode=require",
            "postgresql://consulta:***@db/x?sslmode=require",
        ),
        (
            "postgresql:///consulta?host=/run/pg&password=s3cret",
            "postgresql:///consulta?host=/run/pg&password=***",
        ),
        ("redis://db:6379/0?PASSWORD=s3cret#x", "redis://db:6379/0?PASSWORD=***#x"),
        ("postgresql://consulta@db/x", "postgresql://consulta@db/x"),
        ("sqlite:///var/consulta.db", "sqlite:///var/consulta.db"),
        ("not a url", "not a url"),
        (None, "(not set)"),
    ],
    ids=[
        "a Redis password with no user",
        "a Redis user and password on an IPv6 host",
        "a PostgreSQL password with an escaped @",
        "a password with a bare @ in it is hidden whole",
        "a libpq password parameter",
        "a password parameter in capitals, before a fragment",
        "a user without a password is shown as is",
        "a SQLite path is shown as is",
        "something that is not a URL is shown as is",
        "no URL at all",
    ],
)
def test_a_url_is_shown_without_its_password(url: str | None, shown: str) -> None:
    assert password_hidden(url) == shown
    assert "s3cret" not in password_hidden(url)
