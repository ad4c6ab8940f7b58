"""The Flask app factory: everything the web process needs is built here, on demand."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException

from gateway import body_limits, errors, privacy, security_headers
from gateway.db import make_engine, make_lookups, make_sessionmaker
from gateway.settings import Settings


@dataclass
class WebState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: Redis
    dialect: str  # "postgresql" or "sqlite": the two speak ON CONFLICT a little differently
    lookups: Engine  # reads only, on Core connections (see gateway.db.make_lookups)
    ussd_sessions: Redis | None = None  # USSD_REDIS_URL's; None: the sessions live in `redis`

    @property
    def ussd_redis(self) -> Redis:
        """Where USSD sessions and the hops' flood counters are kept."""
        return self.redis if self.ussd_sessions is None else self.ussd_sessions


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is not set (only `consulta demo` starts its own Redis)")
    if not settings.twilio_auth_token:
        raise RuntimeError("TWILIO_AUTH_TOKEN is not set: inbound signatures cannot be checked")
    privacy.install(settings.secret)  # refuses to start without the secret
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    body_limits.install(app)  # a body without a Content-Length would dodge that limit
    engine = make_engine(settings.database_url, short_queries=True)
    app.extensions["consulta"] = WebState(
        settings,
        engine,
        make_sessionmaker(engine),
        _redis(settings.redis_url),
        engine.dialect.name,
        make_lookups(engine),
        _redis(settings.ussd_redis_url) if settings.ussd_redis_url else None,
    )
    from gateway import africastalking_sms, health, public, sms, sms_fast
    from gateway.ops import metrics as ops_metrics
    from gateway.ops import views as ops_views
    from gateway.ussd import views as ussd

    # One explicit table of the routes each channel adds; nothing registers itself.
    for blueprint in (
        sms.blueprint,
        africastalking_sms.blueprint,
        ussd.blueprint,
        health.blueprint,
        ops_views.blueprint,  # the console at /ops; also mounts rq-dashboard at /ops/rq
        ops_metrics.blueprint,
        public.blueprint,  # certified results, for anyone
    ):
        app.register_blueprint(blueprint)
    app.register_error_handler(HTTPException, errors.plain_text)
    security_headers.install(app, settings)  # runs after each blueprint's own headers
    # Outermost: the one webhook that is nine requests in ten at a peak skips Flask's own work.
    fast = sms_fast.FastTwilioInbound(app.wsgi_app, app.extensions["consulta"], app.config)
    app.wsgi_app = fast  # type: ignore[method-assign]
    logging.getLogger(__name__).info("consulta web ready")
    return app


def _redis(url: str) -> Redis:
    return Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
