"""Fixtures: real Redis, real SQLite and PostgreSQL, the app, and an in-process worker."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import text

from gateway import privacy
from gateway.app import create_app
from gateway.migrate import upgrade
from gateway.models import Base
from gateway.settings import Settings
from tests.support import services
from workers import runtime

AUTH_TOKEN = "test-auth-token"
PUBLIC_URL = "https://consulta.example.org"
SECRET = "test-secret-for-hashing-and-sealing-personal-data"


@pytest.fixture(autouse=True, scope="session")
def _privacy_keys() -> None:
    """Every process that touches personal data installs the keys; so does the test process."""
    privacy.install(SECRET)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with services.redis_server() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with services.postgres_server() as server, services.scratch_database(server) as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test: migrating once is much faster."""
    path = tmp_path_factory.mktemp("template") / "consulta.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """Every test that takes this runs twice: on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        target = tmp_path / "consulta.db"
        shutil.copy(sqlite_template, target)
        yield f"sqlite:///{target}"
        return
    url = request.getfixturevalue("postgres_url")
    yield url
    _empty_postgres(url)


def _empty_postgres(url: str) -> None:
    from gateway.db import make_engine

    engine = make_engine(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def settings(database_url: str, redis_url: str, redis: Redis) -> Settings:
    return Settings(
        database_url=database_url,
        secret=SECRET,
        redis_url=redis_url,
        twilio_auth_token=AUTH_TOKEN,
        public_url=PUBLIC_URL,
        sweep_after_seconds=30,
    )


@pytest.fixture
def rt(settings: Settings) -> Iterator[runtime.Runtime]:
    """The worker-side runtime, installed as a worker process would install it."""
    built = runtime.Runtime.build(settings)
    runtime.install(built)
    yield built
    runtime.install(None)
    built.close()


@pytest.fixture
def app(settings: Settings, rt: runtime.Runtime) -> Iterator[Flask]:
    flask_app = create_app(settings)
    flask_app.config["TESTING"] = True
    yield flask_app
    state = flask_app.extensions["consulta"]
    state.engine.dispose()
    state.redis.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
