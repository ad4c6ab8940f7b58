"""Who is at the console: passwords, roles, the session cookie, CSRF and the login limit."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache, wraps
from typing import ParamSpec, TypeVar

from flask import Flask, abort, g, request, session
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.security import check_password_hash, generate_password_hash

from gateway.models import OperatorRow
from gateway.ops.config import OpsConfig

ROLES = ("viewer", "operator", "admin")  # each may do everything the ones before it may
MIN_PASSWORD_LENGTH = 10
LIMIT_KEY = "consulta:ops:login:"
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Operator:
    id: int
    username: str
    role: str

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def hash_password(password: str) -> str:
    """werkzeug's default: scrypt with a random salt, its parameters kept in the hash."""
    return generate_password_hash(password)


@cache
def _decoy_hash() -> str:
    return hash_password(secrets.token_hex(16))


def authenticate(
    sessions: sessionmaker[Session], username: str, password: str
) -> OperatorRow | None:
    """The operator if the password is right, else None."""
    with sessions() as db:
        row = db.scalar(select(OperatorRow).where(OperatorRow.username == username))
    # An unknown name costs the same scrypt as a known one, so timing does not reveal names.
    known_hash = row.password_hash if row else _decoy_hash()
    if not check_password_hash(known_hash, password):
        return None
    return row


# --- the session ----------------------------------------------------------------------------


def configure_session_cookie(app: Flask, config: OpsConfig) -> None:
    app.secret_key = config.secret_key
    app.config.update(
        SESSION_COOKIE_NAME="consulta_ops",
        SESSION_COOKIE_PATH="/ops",  # never sent to the provider webhooks
        # OPS_COOKIE_SECURE=0 is for plain HTTP to another host; an https PUBLIC_URL overrules it.
        SESSION_COOKIE_SECURE=config.cookie_secure or _served_over_https(app),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=config.session_hours),
    )


def _served_over_https(app: Flask) -> bool:
    state = app.extensions.get("consulta")
    return bool(state and (state.settings.public_url or "").lower().startswith("https://"))


def _stamp(password_hash: str) -> str:
    # Kept in the cookie: a new password (or a removed operator) ends every old session.
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def sign_in(row: OperatorRow) -> None:
    session.clear()  # a fresh session at login: nothing from before survives, not even CSRF
    session.permanent = True
    session["operator_id"] = row.id
    session["stamp"] = _stamp(row.password_hash)
    session["csrf"] = secrets.token_urlsafe(32)


def sign_out() -> None:
    session.clear()


def signed_in_operator(sessions: sessionmaker[Session]) -> Operator | None:
    """The operator behind this session, read again from the database on every request."""
    operator_id = session.get("operator_id")
    if operator_id is None:
        return None
    with sessions() as db:
        row = db.get(OperatorRow, operator_id)
    if row is None or not hmac.compare_digest(session.get("stamp", ""), _stamp(row.password_hash)):
        session.clear()
        return None
    return Operator(row.id, row.username, row.role)


# --- CSRF ------------------------------------------------------------------------------------


def csrf_token() -> str:
    """The session's token, made on first use (so the login form has one too)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return str(session["csrf"])


def csrf_ok() -> bool:
    """A form field for plain forms, a header for the page's own fetch() calls."""
    given = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    expected = session.get("csrf") or ""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


# --- roles -----------------------------------------------------------------------------------


def requires(role: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """403 unless the signed-in operator's role reaches `role`."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            operator: Operator = g.operator
            if not operator.may(role):
                abort(403, f"This needs the {role} role; you are signed in as a {operator.role}.")
            return view(*args, **kwargs)

        return guarded

    return decorate


# --- the login limit -------------------------------------------------------------------------


class LoginLimit:
    """Failed logins counted in Redis, so every web worker sees the same count.

    Per address and username, so one person mistyping does not lock out a colleague behind the
    same NAT; and per address alone, ten times looser, against guessing across many names.
    """

    def __init__(self, redis: Redis, config: OpsConfig) -> None:
        self.redis = redis
        self.failures = config.login_failures
        self.window = config.login_window_seconds

    def _keys(self, address: str, username: str) -> list[tuple[str, int]]:
        name = hashlib.sha256(username.lower().encode()).hexdigest()[:16]
        return [
            (f"{LIMIT_KEY}{address}:{name}", self.failures),
            (f"{LIMIT_KEY}{address}", self.failures * 10),
        ]

    def wait_seconds(self, address: str, username: str) -> int:
        """0 if this login may be tried now; otherwise how long until it may."""
        for key, limit in self._keys(address, username):
            if int(self.redis.get(key) or 0) >= limit:
                return max(1, int(self.redis.ttl(key)))
        return 0

    def failed(self, address: str, username: str) -> None:
        with self.redis.pipeline() as pipe:
            for key, _ in self._keys(address, username):
                pipe.set(key, 0, ex=self.window, nx=True)  # the window starts at the first miss
                pipe.incr(key)
            pipe.execute()

    def succeeded(self, address: str, username: str) -> None:
        self.redis.delete(self._keys(address, username)[0][0])
