"""Phone numbers in one spelling: E.164, as providers send them and as the registry keeps them."""

from __future__ import annotations

import phonenumbers


def to_e164(raw: str, region: str) -> str | None:
    """`0414-123.45.67`, `+58 414 1234567` and `584141234567` all become `+584141234567`."""
    text = raw.strip()
    if not text:
        return None
    if text[0].isdigit() and len(text) > 10 and not text.startswith("0"):
        text = "+" + text  # a full international number typed without its plus
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
