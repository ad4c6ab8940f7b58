"""A registry row's personal values as the database stores them: digests and sealed copies.

The bulk writers hand rows to the database driver directly (COPY on PostgreSQL has no bind
parameters for the `Digest` and `Sealed` column types to process), so the stored values are
computed here, from the keys `gateway.privacy` installed. They are the same values the column
types would store: `tests/unit/test_import_protect.py` checks that `Protector.digest` equals
`privacy.digest` and that `privacy.keys().open` reads back what `Protector.seal` sealed.

Only the cost differs, and a million-row registry needs over two million of each:

- the digest is HMAC-SHA256 with the key's inner and outer pads hashed once, so each value
  costs two hash copies (about 0.8 µs) instead of a new HMAC context (about 1.8 µs);
- a seal reuses one AES-GCM context and takes its 12-byte nonce from a block of OS randomness
  drawn 4,096 nonces at a time (about 1.2 µs instead of 3 µs). Each nonce is as random as one
  drawn alone, and each is used once.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.privacy import DIGEST_LENGTH, Keys

_BLOCK = 64  # SHA-256's block size in bytes: the HMAC pads are this long
_NONCE = 12  # bytes, as gateway.privacy seals
_NONCES_PER_DRAW = 4096


class Protector:
    """Digests and seals with one process's keys, for many values in a row."""

    def __init__(self, keys: Keys) -> None:
        key = keys.digest_key
        if len(key) > _BLOCK:  # RFC 2104: a long key is hashed first (ours are 32 bytes)
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        self._aead = AESGCM(keys.seal_key)
        self._nonces, self._next = b"", 0

    def digest(self, value: str) -> str:
        """`privacy.digest(value)`."""
        inner = self._inner.copy()
        inner.update(value.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()[:DIGEST_LENGTH]

    def seal(self, value: str) -> str:
        """What `privacy.keys().seal(value)` would give: a fresh nonce, then the ciphertext."""
        if self._next >= len(self._nonces):
            self._nonces, self._next = os.urandom(_NONCE * _NONCES_PER_DRAW), 0
        nonce = self._nonces[self._next : self._next + _NONCE]
        self._next += _NONCE
        sealed = self._aead.encrypt(nonce, value.encode(), None)
        return base64.urlsafe_b64encode(nonce + sealed).decode()
