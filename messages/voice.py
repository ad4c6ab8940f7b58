"""How the gateway speaks to one voter: their language, and the encoding the operator allows."""

from __future__ import annotations

from dataclasses import dataclass

from messages import catalogue
from messages.gsm import Encoded, measure, to_gsm7


@dataclass(frozen=True)
class Voice:
    locale: str = catalogue.DEFAULT_LOCALE
    allow_ucs2: bool = False

    def say(self, key: str, **params: object) -> str:
        return catalogue.render(key, self.locale, allow_ucs2=self.allow_ucs2, **params)

    def plain(self, text: str) -> str:
        """Operator-supplied text (a project's title) under the same encoding rule."""
        return text if self.allow_ucs2 else to_gsm7(text)


def cost(text: str) -> Encoded:
    """What the carrier will bill for this text: its encoding and segments."""
    return measure(text)
