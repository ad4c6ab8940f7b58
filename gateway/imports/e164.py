"""Phone numbers of a registry file in E.164, the common spellings read without the full parser.

`phonenumbers.parse` costs about 15 to 20 µs a number; a million-row registry has over a million
numbers. Most are written in one of two plain ways: international (`+584141234567`, or the
same without its plus) or national with its trunk prefix (`0414-123.45.67`). For those, and
only when the default region's metadata makes the answer certain, the number is read here from
its digits; everything else goes to `gateway.phones.to_e164`, the one definition of a phone.

A fast answer is exactly the slow one or there is none: each shortcut below retraces what
`phonenumbers.parse`, `is_possible_number` and `format_number(..., E164)` would do to such a
string with the region's own metadata, and steps aside (returns None) at every point where
they could do something else: a national prefix to strip, a leading zero, a length that is
possible only locally, an international dialling prefix, the region's country code written
without a plus. `tests/unit/test_import_phones.py` holds both paths to the same answers.
"""

from __future__ import annotations

import functools
import re

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

from gateway.phones import to_e164

_SEPARATORS = str.maketrans("", "", " -.")  # the punctuation both paths drop without a trace
_LONGEST = 40  # characters: anything longer is left to the parser, whatever it holds


@functools.cache
def reader_for(region: str) -> PhoneReader:
    """The reader of a region, made once per process: webhooks read two numbers a message."""
    return PhoneReader(region)


class PhoneReader:
    """`reader(raw)` is `to_e164(raw, region)`, faster for the common spellings."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.country = phonenumbers.country_code_for_region(region.upper())
        self.prefix = str(self.country)
        metadata = PhoneMetadata.metadata_for_region(region.upper())
        general = metadata.general_desc if metadata is not None else None
        certain = metadata is not None and general is not None and self._certain(metadata)
        # Without certainty no length is "full", and every number goes to the parser.
        self.lengths: frozenset[int] = frozenset()
        self.trunk, self.idd, self.pattern = "", re.compile("(?!)"), re.compile("(?!)")
        if certain and metadata is not None and general is not None:
            local = set(general.possible_length_local_only or ())
            self.lengths = frozenset(general.possible_length or ()) - local
            self.trunk = metadata.national_prefix_for_parsing or ""
            self.idd = re.compile(metadata.international_prefix or "(?!)")
            self.pattern = re.compile(general.national_number_pattern or "(?!)")

    @property
    def enabled(self) -> bool:
        """Whether any number at all can take a shortcut in this region."""
        return bool(self.lengths)

    def _certain(self, metadata: PhoneMetadata) -> bool:
        """Whether the shortcuts hold for this region at all."""
        parsing = metadata.national_prefix_for_parsing
        return (
            # The region is the main one of its code, so both paths read the same metadata.
            phonenumbers.region_code_for_country_code(self.country) == self.region.upper()
            # No shorter code is a prefix of ours: a plus and our code mean our country.
            and not any(
                int(self.prefix[:n]) in COUNTRY_CODE_TO_REGION_CODE
                for n in range(1, len(self.prefix))
            )
            # The trunk prefix is plain digits (such as "0"), rewritten by no rule.
            and (parsing is None or parsing.isdigit())
            and not metadata.national_prefix_transform_rule
        )

    def __call__(self, raw: str) -> str | None:
        text = raw.strip()
        if self.enabled and 0 < len(text) <= _LONGEST:
            found = self._fast(text)
            if found is not None:
                return found
        return to_e164(raw, self.region)

    def _fast(self, text: str) -> str | None:
        plus = text[0] == "+"
        body = text[1:] if plus else text
        digits = body.translate(_SEPARATORS)
        # Digits first and last, ASCII digits and separators between: nothing for the parser
        # to skip, split off as an extension, or read as letters.
        if not (
            digits.isascii() and digits.isdigit() and body[:1].isdigit() and body[-1].isdigit()
        ):
            return None
        # to_e164 reads a long number that does not start with 0 as international.
        if plus or (len(text) > 10 and text[0] != "0"):
            return self._international(digits)
        return self._national(digits)

    def _international(self, digits: str) -> str | None:
        """`+58 414 1234567`: our code, then a number the parser keeps as it is."""
        national = digits[len(self.prefix) :]
        if not digits.startswith(self.prefix) or not self._kept(national):
            return None
        # The parser would strip a trunk prefix even after the code ("+58 0414…"): not here.
        if self.trunk and national.startswith(self.trunk):
            return None
        return "+" + digits

    def _national(self, digits: str) -> str | None:
        """`0414-123.45.67`: the trunk prefix, then a number the parser keeps as it is."""
        if not self.trunk or not digits.startswith(self.trunk):
            return None
        if self.idd.match(digits) or digits.startswith(self.prefix):
            return None  # read as dialled abroad, or as our code without its plus
        national = digits[len(self.trunk) :]
        if not self._kept(national):
            return None
        # The parser keeps the prefix when the whole fits the plan and the rest does not.
        if self.pattern.fullmatch(digits) and not self.pattern.fullmatch(national):
            return None
        return "+" + self.prefix + national

    def _kept(self, national: str) -> bool:
        """A full-length national number with no leading zero: parsed, it is these digits."""
        return len(national) in self.lengths and national[:1] not in ("", "0")
