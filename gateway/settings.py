"""One typed settings loader, shared by the web app, the workers and the command line."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_SQLITE = "sqlite:///var/consulta.db"
ACK_AFTER = ("database", "redis")


class SettingsError(ValueError):
    """A setting the environment gives that cannot be used; the text names it and says why."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name) or ""
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None


def _within(value: int, name: str, lowest: int, highest: int) -> int:
    if not lowest <= value <= highest:
        raise SettingsError(f"{name} must be from {lowest} to {highest}, not {value}")
    return value


def _choice(value: str, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """Secrets and URLs that may carry passwords are left out of repr: tracebacks print it."""

    database_url: str = field(default=DEFAULT_SQLITE, repr=False)
    # Keys the hashes and the encryption of phone numbers and national IDs. Required: nothing that
    # stores or reads personal data starts without it (`consulta demo` makes one under ./var).
    secret: str | None = field(default=None, repr=False)
    redis_url: str | None = field(
        default=None, repr=False
    )  # None: only `consulta demo` may start an embedded server
    # Where USSD sessions and the hops' flood counters live; None: in REDIS_URL's. A session is a
    # menu position that a lost Redis costs a redial, so it needs no fsync, while with
    # `appendfsync always` a hop on the inbox's Redis waits for the disk on every read and write.
    ussd_redis_url: str | None = field(default=None, repr=False)
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = field(default=None, repr=False)
    twilio_from: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base_url: str | None = None
    # Twilio's edge location and processing region, as its SDK reads them: api.{edge}.{region}...
    twilio_edge: str | None = None
    twilio_region: str | None = None
    public_url: str | None = None
    default_region: str = "VE"
    port: int = 8000
    batch_size: int = 200  # inbound messages per worker job and per commit
    # When the provider gets its 2xx: once the message is committed to the database (one commit
    # per message), or once it is in Redis's inbox (Redis must run with appendfsync always), from
    # which workers write whole batches. See "Running it in production" in the README.
    ack_after: str = "database"
    # ACK_AFTER=redis: how long the pump waits for a batch to fill; a full batch goes at once.
    # Large batches are cheap ones: 150 ms made jobs of 109 instead of 33 at 630 messages/s.
    batch_linger_ms: int = 150
    sweep_after_seconds: int = 30  # an acknowledged message still pending this long is re-queued
    max_body_bytes: int = 16 * 1024  # Twilio's largest inbound form is about 5 KB
    # Replies are transliterated to GSM-7 (one segment, half the price) unless this is set.
    allow_ucs2: bool = False
    ussd_code: str | None = None  # e.g. "*123#": where a ballot too long for SMS can be read
    # USSD and Africa's Talking callbacks are not signed: a secret path segment per channel, and
    # optionally an allow-list of source networks (comma-separated CIDRs).
    africastalking_secret: str | None = field(default=None, repr=False)
    hubtel_secret: str | None = field(default=None, repr=False)
    ussd_allowed_networks: tuple[str, ...] = ()
    africastalking_username: str | None = None
    africastalking_api_key: str | None = field(default=None, repr=False)
    africastalking_from: str | None = None  # the short code or sender ID replies come from
    africastalking_api_base_url: str | None = None  # tests point this at a local server
    ussd_session_seconds: int = 180  # how long a USSD session (and its menu position) lives
    ussd_resume_seconds: int = 300  # a dropped voter who redials within this resumes
    # Flood control at the webhooks (gateway/flood.py); 0 turns a limit off. A voter sends a
    # handful of messages; past these a sender's messages are acknowledged but not stored.
    flood_per_sender_per_minute: int = 10
    flood_per_sender_per_hour: int = 60
    # A USSD hop is one keystroke: a session with a paged ballot takes a dozen or more.
    flood_ussd_hops_per_minute: int = 30
    flood_ussd_hops_per_hour: int = 300
    # All senders together: a breaker that keeps the database writable, far above a real peak.
    flood_overall_per_second: int = 3000
    # Replies sent to one number in any hour; more are recorded as `capped` and not sent (0: no
    # cap). A voter's busiest hour (AYUDA, OPCIONES in 3 parts, VOTO, ESTADO, RECIBO) is 7.
    reply_cap_per_hour: int = 8
    # Replies a replies worker sends at once: each waits on the provider's answer, not the CPU,
    # so a worker sends about this many ÷ the provider's latency a second (docs/capacity.md).
    # At least 8: a job of 100 must end within RQ's 180 s job timeout (workers/replies.py).
    reply_sends_at_once: int = 8
    # ISO regions replies may go to; others are recorded as `blocked`. Empty: DEFAULT_REGION
    # only. "*": anywhere.
    allowed_countries: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        given = {
            "database_url": env.get("DATABASE_URL") or DEFAULT_SQLITE,
            "secret": env.get("CONSULTA_SECRET") or None,
            "redis_url": env.get("REDIS_URL") or None,
            "ussd_redis_url": env.get("USSD_REDIS_URL") or None,
            "twilio_account_sid": env.get("TWILIO_ACCOUNT_SID") or None,
            "twilio_auth_token": env.get("TWILIO_AUTH_TOKEN") or None,
            "twilio_from": env.get("TWILIO_FROM") or None,
            "twilio_messaging_service_sid": env.get("TWILIO_MESSAGING_SERVICE_SID") or None,
            "twilio_api_base_url": env.get("TWILIO_API_BASE_URL") or None,
            "twilio_edge": env.get("TWILIO_EDGE") or None,
            "twilio_region": env.get("TWILIO_REGION") or None,
            "public_url": env.get("PUBLIC_URL") or None,
            "default_region": env.get("DEFAULT_REGION") or "VE",
            "port": _int(env, "PORT", 8000),
            "batch_size": _int(env, "BATCH_SIZE", 200),
            "ack_after": _choice(env.get("ACK_AFTER") or "database", "ACK_AFTER", ACK_AFTER),
            "batch_linger_ms": _int(env, "BATCH_LINGER_MS", 150),
            "sweep_after_seconds": _int(env, "SWEEP_AFTER_SECONDS", 30),
            "allow_ucs2": (env.get("ALLOW_UCS2") or "").lower() in {"1", "true", "yes"},
            "ussd_code": env.get("USSD_CODE") or None,
            "africastalking_secret": env.get("AFRICASTALKING_SECRET") or None,
            "hubtel_secret": env.get("HUBTEL_SECRET") or None,
            "ussd_allowed_networks": tuple(
                part.strip()
                for part in (env.get("USSD_ALLOWED_NETWORKS") or "").split(",")
                if part.strip()
            ),
            "africastalking_username": env.get("AFRICASTALKING_USERNAME") or None,
            "africastalking_api_key": env.get("AFRICASTALKING_API_KEY") or None,
            "africastalking_from": env.get("AFRICASTALKING_FROM") or None,
            "africastalking_api_base_url": env.get("AFRICASTALKING_API_BASE_URL") or None,
            "ussd_session_seconds": _int(env, "USSD_SESSION_SECONDS", 180),
            "ussd_resume_seconds": _int(env, "USSD_RESUME_SECONDS", 300),
            "flood_per_sender_per_minute": _int(env, "FLOOD_PER_SENDER_PER_MINUTE", 10),
            "flood_per_sender_per_hour": _int(env, "FLOOD_PER_SENDER_PER_HOUR", 60),
            "flood_ussd_hops_per_minute": _int(env, "FLOOD_USSD_HOPS_PER_MINUTE", 30),
            "flood_ussd_hops_per_hour": _int(env, "FLOOD_USSD_HOPS_PER_HOUR", 300),
            "flood_overall_per_second": _int(env, "FLOOD_OVERALL_PER_SECOND", 3000),
            "reply_cap_per_hour": _int(env, "REPLY_CAP_PER_HOUR", 8),
            "reply_sends_at_once": _within(
                _int(env, "REPLY_SENDS_AT_ONCE", 8), "REPLY_SENDS_AT_ONCE", 8, 64
            ),
            "allowed_countries": tuple(
                part.strip().upper()
                for part in (env.get("ALLOWED_COUNTRIES") or "").split(",")
                if part.strip()
            ),
        }
        return cls(**given)  # type: ignore[arg-type]

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def sends_through_twilio(self) -> bool:
        """Without an account SID replies go to the local outbox, where the demo shows them."""
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def reply_regions(self) -> frozenset[str] | None:
        """The regions replies may go to; None for anywhere."""
        if "*" in self.allowed_countries:
            return None
        return frozenset(self.allowed_countries or (self.default_region.upper(),))

    def sqlite_path(self) -> Path | None:
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix) and self.database_url != "sqlite:///:memory:":
            return Path(self.database_url[len(prefix) :])
        return None
