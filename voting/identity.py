"""National ID (cédula) normalisation: one spelling per person, whatever the voter typed."""

from __future__ import annotations

import re

_ID = re.compile(r"^([VE])?(\d{5,10})$")


def normalise_national_id(raw: str) -> str | None:
    """`V-12.345.678`, `v12345678` and `12345678` all become `V12345678`; junk becomes None.

    A bare number is Venezuelan (V), as on the cédula itself; foreigners write the E.
    """
    compact = re.sub(r"[\s.\-]", "", raw.strip().upper())
    match = _ID.match(compact)
    if not match:
        return None
    nationality, digits = match.groups()
    return f"{nationality or 'V'}{int(digits)}"
