"""The console's own settings, read from the environment like `gateway.settings`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from flask import Flask


@dataclass(frozen=True)
class OpsConfig:
    # Signs the session cookie. Every web worker must share it, so there is no random default:
    # without it the console is off rather than logging people out at random.
    secret_key: str | None = None
    # Off only for plain HTTP to another machine; browsers treat http://localhost as secure.
    cookie_secure: bool = True
    session_hours: int = 12  # one voting day; then sign in again
    metrics_token: str | None = None
    metrics_networks: tuple[str, ...] = ()
    login_failures: int = 5  # per address and username, within the window
    login_window_seconds: int = 900
    latency_minutes: int = 5  # the window for the live p50/p95

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OpsConfig:
        env = os.environ if env is None else env
        return cls(
            secret_key=env.get("OPS_SECRET_KEY") or None,
            cookie_secure=(env.get("OPS_COOKIE_SECURE") or "1").lower() not in {"0", "false", "no"},
            session_hours=int(env.get("OPS_SESSION_HOURS") or 12),
            metrics_token=env.get("METRICS_TOKEN") or None,
            metrics_networks=_csv(env.get("METRICS_ALLOWED_NETWORKS") or ""),
            login_failures=int(env.get("OPS_LOGIN_FAILURES") or 5),
            login_window_seconds=int(env.get("OPS_LOGIN_WINDOW_SECONDS") or 900),
            latency_minutes=int(env.get("OPS_LATENCY_MINUTES") or 5),
        )


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


EXTENSION = "consulta_ops"


def ops_config(app: Flask) -> OpsConfig:
    """The app's console settings, read from the environment once, when first asked."""
    config: OpsConfig | None = app.extensions.get(EXTENSION)
    if config is None:
        config = app.extensions[EXTENSION] = OpsConfig.from_env()
    return config
