"""Keyed hashes and sealed values: a database dump reveals no phone number and no national ID.

Two kinds of column hold personal data:

- `Digest`: an HMAC-SHA256 of the value under a key derived from CONSULTA_SECRET. Equal values
  give equal digests, so look-ups (`PhoneRow.phone.in_(senders)`) and unique constraints keep
  working and stay fast, but the value cannot be read back. Bound parameters are hashed on the way
  in, so a query written against clear values compares digests without saying so.
- `Sealed`: AES-256-GCM with a fresh nonce. Used only where the gateway must read the value back
  (the number a reply goes to, the ID printed in a pollbook, a voter's own receipt). The same value
  sealed twice gives two different strings, so sealed columns cannot be joined with each other.

The keys live in this process only. They are installed once at start-up by the web app, the
worker runtime and every command that opens the database, from the settings' secret.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import String, Text, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement, operators

MIN_SECRET_LENGTH = 32
DIGEST_LENGTH = 32  # hex characters: 128 bits of an HMAC-SHA256 is plenty against collisions
_NONCE_BYTES = 12


class MissingSecretError(RuntimeError):
    """Raised when personal data would be stored without a key to protect it."""


@dataclass(frozen=True)
class Keys:
    digest_key: bytes
    seal_key: bytes

    @classmethod
    def from_secret(cls, secret: str | None) -> Keys:
        if not secret or len(secret) < MIN_SECRET_LENGTH:
            raise MissingSecretError(
                f"CONSULTA_SECRET must be set to at least {MIN_SECRET_LENGTH} characters: it keys "
                "the hashes and the encryption of phone numbers and national IDs "
                "(generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        root = secret.encode()
        # Two independent keys from one secret, so neither use can weaken the other.
        return cls(
            digest_key=hmac.new(root, b"consulta digest v1", hashlib.sha256).digest(),
            seal_key=hmac.new(root, b"consulta seal v1", hashlib.sha256).digest(),
        )

    def digest(self, value: str) -> str:
        # The one-shot form: the same HMAC-SHA256 without building an HMAC object, 1.8 against
        # 2.4 µs a call. A message is hashed several times on its way (flood counters, the
        # registry look-up, opt-outs, reply caps); the importer has its own (imports/protect.py).
        return hmac.digest(self.digest_key, value.encode(), "sha256").hex()[:DIGEST_LENGTH]

    @property
    def _cipher(self) -> AESGCM:
        return _cipher_for(self.seal_key)

    def seal(self, value: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._cipher.encrypt(nonce, value.encode(), None)
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str) -> str:
        raw = base64.urlsafe_b64decode(sealed.encode())
        nonce, body = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        return self._cipher.decrypt(nonce, body, None).decode()


@functools.lru_cache(maxsize=4)
def _cipher_for(seal_key: bytes) -> AESGCM:
    """Made once per key: a batch seals about six values a message, and a cipher made for each
    seal doubled its cost (2.6 against 1.4 µs). Kept out of Keys, which the importer pickles
    to its processes and a cipher cannot be pickled."""
    return AESGCM(seal_key)


_installed: Keys | None = None


def install(secret: str | None) -> Keys:
    """Derive the keys from the secret and make them this process's; refuses a missing secret."""
    global _installed
    keys = Keys.from_secret(secret)
    if _installed is not None and _installed != keys:
        raise MissingSecretError("a different CONSULTA_SECRET is already installed in this process")
    _installed = keys
    return keys


def uninstall() -> None:
    """For tests that start over with another secret."""
    global _installed
    _installed = None


def keys() -> Keys:
    if _installed is None:
        raise MissingSecretError(
            "no CONSULTA_SECRET installed: personal data cannot be read or stored"
        )
    return _installed


def digest(value: str) -> str:
    return keys().digest(value)


def mask(phone: str | None) -> str:
    """For logs and screens: enough to tell two numbers apart by eye, not enough to dial."""
    if not phone:
        return "?"
    return f"{phone[:4]}…{phone[-2:]}" if len(phone) > 7 else "…"


class Digest(TypeDecorator[str]):
    """A keyed hash of the value. Reads give back the digest, never the value."""

    impl = String(DIGEST_LENGTH)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keys().digest(str(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return value  # type: ignore[no-any-return]


class _RefuseComparison(TypeDecorator.Comparator[Any]):
    """A sealed value never equals its own seal: comparing one in SQL would silently match nothing.

    So such a comparison is a programming error, raised as soon as the query is written.
    """

    def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
        # Against a plain value only: SQLAlchemy itself compares column objects internally.
        if op in _COMPARISONS and not any(isinstance(o, ClauseElement) for o in other):
            raise TypeError(
                "a sealed column cannot be compared in SQL: select the rows and compare the clear "
                "values in Python, or compare a keyed-hash (Digest) column instead"
            )
        return super().operate(op, *other, **kwargs)


_COMPARISONS = {
    operators.eq, operators.ne, operators.in_op, operators.not_in_op, operators.like_op,
    operators.ilike_op, operators.lt, operators.le, operators.gt, operators.ge,
}  # fmt: skip


class Sealed(TypeDecorator[str]):
    """Encrypted at rest, clear in memory."""

    impl = Text
    cache_ok = True
    comparator_factory = _RefuseComparison

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keys().seal(str(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keys().open(value)


class SealedDateTime(TypeDecorator[datetime]):
    """An aware time, encrypted at rest: so that it cannot be matched with a vote's time."""

    impl = Text
    cache_ok = True
    comparator_factory = _RefuseComparison

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused: say which zone they are in")
        return keys().seal(value.astimezone(UTC).isoformat())

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return datetime.fromisoformat(keys().open(value))
