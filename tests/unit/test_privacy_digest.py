"""A keyed hash never changes for the same secret and value: every stored registry depends on it.

The people and phones already in a database were hashed by an earlier release; a look-up by a
hash computed another way would find nobody, and every voter would be "not registered". The
expected values are pinned, computed once by the documented formula: HMAC-SHA256 of the value
under HMAC-SHA256(secret, "consulta digest v1"), its first 32 hex characters.
"""

from __future__ import annotations

import pytest

from gateway.privacy import Keys

SECRET = "a secret of forty characters or so, for tests"
CASES = [
    ("a national ID", "V12345678", "d4550c2605dfedf610424313528cfdc8"),
    ("a phone number in E.164", "+584141234567", "022311097e2e32d3d117a1a928595190"),
    ("text beyond ASCII, hashed as UTF-8", "ñandú", "5552ded824d7ec2743f0d2284899ecad"),
    ("the empty string", "", "9f9a3080a07aeb5278071f6c2001e9f2"),
]


@pytest.mark.parametrize(("value", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_value_hashes_to_the_same_digest_as_every_release_before(
    value: str, expected: str
) -> None:
    assert Keys.from_secret(SECRET).digest(value) == expected
