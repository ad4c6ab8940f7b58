"""What a worker process holds: settings, an engine and a Redis connection, built once.

The worker entry point installs a Runtime before it takes jobs. A job run elsewhere (a test's
SimpleWorker, a one-off script) builds one from the environment the first time it asks.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway import privacy
from gateway.db import make_engine, make_sessionmaker
from gateway.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: Redis

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        if not settings.redis_url:
            raise RuntimeError("REDIS_URL is not set (only `consulta demo` starts its own Redis)")
        privacy.install(settings.secret)  # refuses to start without the secret
        engine = make_engine(settings.database_url, short_queries=True)
        return cls(settings, engine, make_sessionmaker(engine), Redis.from_url(settings.redis_url))

    def queue(self, name: str) -> Queue:
        return Queue(name, connection=self.redis, serializer=JSONSerializer)

    def close(self) -> None:
        self.engine.dispose()
        self.redis.close()


_current: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    global _current  # noqa: PLW0603 - one runtime per process, set by its entry point
    _current = runtime


def current() -> Runtime:
    global _current  # noqa: PLW0603
    if _current is None:
        _current = Runtime.build(Settings.from_env())
    return _current
