"""A registry file's rows: one person each, with a circuit, a birth date, phones and a language."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import NamedTuple

from gateway.imports.reading import RowError, columns
from messages.catalogue import locales, normalise_locale
from voting.identity import normalise_national_id

REGISTRY_HEADER = ("national_id", "circuit_code", "birth_date", "phones")
# The language column is optional: a file has either header, and each row as many cells.
REGISTRY_HEADERS = (REGISTRY_HEADER, (*REGISTRY_HEADER, "language"))
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Person(NamedTuple):
    """One registry row, checked. A tuple: a million of them are made, one at a time."""

    national_id: str
    circuit_id: int
    birth_date: date
    phones: tuple[str, ...]
    language: str | None  # a locale such as "es"; None for no preference


@dataclass(frozen=True)
class Context:
    """What a registry row is checked against."""

    circuits: dict[str, int]  # code -> id
    today: date
    e164: Callable[[str], str | None]  # a phone as written -> E.164, None if it is not one


def _birth_date(value: str, today: date) -> date:
    if not _ISO_DATE.match(value):
        raise RowError("birth_date must be written YYYY-MM-DD")
    try:
        born = date.fromisoformat(value)
    except ValueError:
        raise RowError("birth_date is not a real calendar date") from None
    if born > today:
        raise RowError("birth_date is in the future")
    if born.year < 1900:  # a year such as 0990 is a slip of the keyboard
        raise RowError("birth_date is before 1900")
    return born


def _phones(value: str, e164: Callable[[str], str | None]) -> tuple[str, ...]:
    if not value:
        return ()
    found: dict[str, None] = {}  # a dict keeps the file's order, a set would not
    pieces = [p for p in value.split(";") if p.strip()]
    for position, raw in enumerate(pieces, start=1):
        number = e164(raw)
        if number is None:
            raise RowError(f"phone {position} of {len(pieces)} is not a phone number")
        found[number] = None  # one number spelt two ways is one phone
    return tuple(found)


def _language(value: str) -> str | None:
    if not value:
        return None
    locale = _locale(value)
    if locale is None:
        raise RowError(f"language must be one of: {', '.join(locales())}")
    return locale


@lru_cache(maxsize=64)  # a registry spells its few languages the same way a million times
def _locale(value: str) -> str | None:
    return normalise_locale(value)


def _circuit(code: str, context: Context) -> int:
    circuit_id = context.circuits.get(code)
    if circuit_id is None:
        # Echo the code unless it looks like a phone or an ID (swapped columns): an error
        # message must never repeat personal data.
        shown = "" if sum(ch.isdigit() for ch in code) >= 5 else f" {code!r}"
        raise RowError(f"circuit_code{shown} is not on this consultation's ballots")
    return circuit_id


def parse_person(cells: list[str], context: Context, width: int) -> Person:
    """The person on one row of a file `width` columns wide; RowError says why the row is bad."""
    raw_id, code, born, phones, *language = columns(cells, width)
    national_id = normalise_national_id(raw_id)
    if national_id is None:
        raise RowError("national_id is not a cédula number such as V12345678")
    return Person(
        national_id,
        _circuit(code, context),
        _birth_date(born, context.today),
        _phones(phones, context.e164),
        _language(language[0] if language else ""),  # the 4-column header has no language
    )
