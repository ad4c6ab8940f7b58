"""Receipt codes: short, unguessable, and easy to read aloud or type on a keypad."""

from __future__ import annotations

import secrets

# Digits and capitals without 0/O, 1/I/L and U (which reads as V): 30 symbols, 4.9 bits each.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 9
# The standing "receipt" of someone who voted on paper: new_receipt() can never produce it (it
# has an L, and no dashes), so a paper vote is never mistaken for a digital one.
PAPER_RECEIPT = "PAPEL"  # 30**9 is about 2**44: more than the 40 bits asked for


UNBIASED = 256 // len(ALPHABET) * len(ALPHABET)  # bytes below this fall evenly on the symbols


def new_receipt() -> str:
    """A fresh receipt such as `K7Q-2M9-XAB`.

    One read of the system's randomness, where `secrets.choice` made one per symbol (a worker
    makes a receipt per vote). Bytes past the last whole round of the alphabet are dropped, so
    every symbol stays equally likely.
    """
    code = ""
    while len(code) < LENGTH:
        code += symbols(secrets.token_bytes(2 * LENGTH))
    return f"{code[:3]}-{code[3:6]}-{code[6:LENGTH]}"


def symbols(random_bytes: bytes) -> str:
    """The symbols these bytes stand for; a byte past the last whole round stands for none."""
    return "".join(ALPHABET[b % len(ALPHABET)] for b in random_bytes if b < UNBIASED)


def normalise_receipt(raw: str) -> str | None:
    """What the voter typed back (any case, with or without dashes), or None if it can't be one."""
    compact = "".join(ch for ch in raw.upper() if ch.isalnum())
    if len(compact) != LENGTH or any(ch not in ALPHABET for ch in compact):
        return None
    return f"{compact[:3]}-{compact[3:6]}-{compact[6:]}"
