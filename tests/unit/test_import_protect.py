"""The bulk import stores exactly what the `Digest` and `Sealed` column types would store."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidTag

from gateway.imports.protect import Protector
from gateway.privacy import Keys

KEYS = Keys.from_secret("a-secret-for-the-import-tests-only-0123456789")
VALUES = ["V12345678", "E81234567", "+584141234567", "", "ñandú", "x" * 200]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_a_digest_is_the_column_types_digest(value: str) -> None:
    assert Protector(KEYS).digest(value) == KEYS.digest(value)


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_a_seal_opens_with_the_column_types_key(value: str) -> None:
    assert KEYS.open(Protector(KEYS).seal(value)) == value


def test_a_seal_does_not_open_with_another_key() -> None:
    other = Keys.from_secret("another-secret-for-the-import-tests-only-0123")
    sealed = Protector(KEYS).seal("V12345678")
    with pytest.raises(InvalidTag):
        other.open(sealed)


def test_no_two_seals_share_a_nonce_across_draws_of_randomness() -> None:
    protect = Protector(KEYS)
    sealed = [protect.seal("V12345678") for _ in range(10_000)]  # more than two draws
    nonces = {base64.urlsafe_b64decode(s)[:12] for s in sealed}
    assert len(nonces) == len(sealed)
    assert {KEYS.open(s) for s in sealed} == {"V12345678"}
