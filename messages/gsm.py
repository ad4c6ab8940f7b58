"""GSM 03.38 (3GPP TS 23.038): what an SMS costs, and how to make text fit the cheap alphabet.

A message that is all GSM-7 fits 160 septets in one segment; a single character outside it
turns the whole message into UCS-2, which fits only 70. So every reply is measured the way
carriers measure it, and transliterated to GSM-7 before it leaves. Standard library only.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

# The default alphabet, one septet each, in table order (0x00-0x7F). ESC (0x1B) is left out:
# it is the escape to the extension table, not a character.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# The default extension table: each is sent as ESC plus one septet, so it costs two.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
GSM7 = GSM7_BASIC | GSM7_EXTENSION

SINGLE = {"GSM-7": 160, "UCS-2": 70}
# A concatenated message spends part of each segment on its user data header.
CONCATENATED = {"GSM-7": 153, "UCS-2": 67}

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True)
class Encoded:
    encoding: Encoding
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


def measure(text: str) -> Encoded:
    """The encoding, size and segment count a carrier would use for `text`."""
    # Set operations run in C: every reply is measured, so this is on the worker's hot path.
    characters = set(text)
    encoding: Encoding = "GSM-7" if characters <= GSM7 else "UCS-2"
    wide = GSM7_EXTENSION if encoding == "GSM-7" else {ch for ch in characters if ord(ch) > 0xFFFF}
    units = len(text) + sum(text.count(ch) for ch in characters & wide)
    if units <= SINGLE[encoding]:
        return Encoded(encoding, units, 1)
    cost = _septets if encoding == "GSM-7" else _code_units
    return Encoded(encoding, units, _pack(map(cost, text), CONCATENATED[encoding]))


def _septets(ch: str) -> int:
    return 2 if ch in GSM7_EXTENSION else 1


def _code_units(ch: str) -> int:
    # Outside the Basic Multilingual Plane a character is a surrogate pair: two code units.
    return 2 if ord(ch) > 0xFFFF else 1


def _pack(costs: Iterable[int], size: int) -> int:
    """Segments needed when no character may straddle two of them.

    An escape pair (ESC plus its septet) or a surrogate pair split across segments would
    decode as garbage, so carriers move the whole character on: plain ceil(units / size) can
    count one segment too few.
    """
    segments, used = 1, 0
    for cost in costs:
        if used + cost > size:
            segments, used = segments + 1, 0
        used += cost
    return segments


# --- transliteration -------------------------------------------------------------------------

# Punctuation that word processors and phones substitute for the plain kind.
_PUNCTUATION = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u2039": "'", "\u203a": "'", "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-", "\u2022": "-",
    "\u2026": "...",
    "\t": " ",
}  # fmt: skip
# Spanish letters and signs outside GSM-7, named so the table documents itself; other accented
# letters go through Unicode decomposition.
_SPANISH = {
    "á": "a", "í": "i", "ó": "o", "ú": "u", "Á": "A", "Í": "I", "Ó": "O", "Ú": "U",
    "ç": "c", "º": "o", "ª": "a",
}  # fmt: skip
# Greek capitals that look Latin are absent from GSM-7: the phone shows the Latin letter.
_GREEK_AS_LATIN = dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX", strict=True))
# USSD screens take plain ASCII: the GSM-7 letters outside it need their own spelling.
_ASCII_SPELLING = {
    "ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "€": "EUR",
    "¿": "", "¡": "", "\r": "",
}  # fmt: skip
# Combining marks and invisible format characters (zero-width joiner, soft hyphen, byte order
# mark) carry nothing a reader would miss once the base letter is kept.
_INVISIBLE = {"Mn", "Me", "Cf"}
_ASCII = frozenset(chr(c) for c in range(0x20, 0x7F)) | {"\n"}
_TO_GSM7 = {**_PUNCTUATION, **_SPANISH, **_GREEK_AS_LATIN}
_TO_ASCII = {**_TO_GSM7, **_ASCII_SPELLING}


# The tables as str.translate takes them, made once, not on every call: every reply goes
# through one.
_TO_GSM7_TRANSLATION = str.maketrans(_TO_GSM7)
_TO_ASCII_TRANSLATION = str.maketrans(_TO_ASCII)


def to_gsm7(text: str) -> str:
    """`text` in GSM-7 only: characters already in GSM-7 stay, the rest become their closest."""
    return _transliterate(text, GSM7, _TO_GSM7, _TO_GSM7_TRANSLATION)


def to_ascii(text: str) -> str:
    """`text` in printable ASCII (and newlines), for USSD screens: ñ becomes n, ¿ and ¡ go."""
    return _transliterate(text, _ASCII, _TO_ASCII, _TO_ASCII_TRANSLATION)


def _transliterate(
    text: str, alphabet: frozenset[str], table: Mapping[str, str], translation: dict[int, str]
) -> str:
    # NFC first, so an "n" followed by a combining tilde is the GSM-7 "ñ" it looks like.
    composed = unicodedata.normalize("NFC", text)  # returns `text` itself when already NFC
    characters = set(composed)
    if characters <= alphabet and not table.keys() & characters:
        return composed  # most texts, our own catalogue's: nothing to do
    if characters <= alphabet | table.keys():
        # Every character either stays or has its entry: one pass in C, as _replace would do it.
        return composed.translate(translation)
    return "".join(_replace(ch, alphabet, table) for ch in composed)


def _replace(ch: str, alphabet: frozenset[str], table: Mapping[str, str]) -> str:
    if ch in table:
        return table[ch]
    if ch in alphabet:
        return ch
    if unicodedata.category(ch) in _INVISIBLE:
        return ""
    # Compatibility decomposition turns "ê" into "e" plus a mark, "ﬁ" into "fi", "Ａ" into "A".
    base = "".join(
        table.get(c, c)
        for c in unicodedata.normalize("NFKD", ch)
        if unicodedata.category(c) not in _INVISIBLE
    )
    return base if base and all(c in alphabet for c in base) else "?"
