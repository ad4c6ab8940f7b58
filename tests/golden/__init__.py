"""Golden files: the full rendering of something reviewable, compared byte for byte.

`catalogue.txt` holds every catalogue entry in every locale, rendered with `SAMPLE`, so a change
of wording, transliteration or length shows up as a diff in review. Regenerate it with
`.venv/bin/python -m tests.golden.regenerate` (or run the tests with UPDATE_GOLDEN=1).
"""

from __future__ import annotations

from pathlib import Path

from messages import catalogue
from messages.gsm import measure

CATALOGUE = Path(__file__).with_name("catalogue.txt")
REGENERATE = "UPDATE_GOLDEN=1 or .venv/bin/python -m tests.golden.regenerate"

# The longest value each placeholder takes in practice, so a rendering that fits here fits
# every real reply.
SAMPLE: dict[str, object] = {
    "name": "Presupuesto Comunal Juvenil 26",  # 30 characters, the longest name allowed
    "receipt": "K7Q-2M9-XAB",
    "valid": "1, 2, 3, 4, 5, 6, 7, 8, 9",  # longer than any ballot's "1-7" or "1-9"
    "options": "1, 2, 3, 4, 5, 6, 7, 8, 9",  # a voter who sent every option of a full ballot
    "example": 3,
    "opens": "01/12/2026 08:00",
    "ussd": "*123#",
    "part": 2,
    "parts": 3,
    "choices": "ES, EN",
    "option": 9,
    "title": "Rehabilitacion de la cancha deportiva...",  # a title cut to the menu's 40
}

_HEADER = f"""\
# Every catalogue entry in every locale, rendered with tests.golden.SAMPLE.
# Generated: do not edit. Regenerate with {REGENERATE}.
"""


def catalogue_rendering() -> str:
    """Every key (sorted) in every locale (sorted): a header line with its cost, then the text."""
    blocks = [
        _block(key, locale) for key in sorted(catalogue.ENTRIES) for locale in catalogue.locales()
    ]
    return _HEADER + "".join(blocks)


def _block(key: str, locale: str) -> str:
    entry = catalogue.ENTRIES[key]
    text = catalogue.render(key, locale, **SAMPLE)
    if entry.channel == "sms":
        cost = measure(text)
        segments = f"{cost.segments} segment" + ("" if cost.segments == 1 else "s")
        size = f"{cost.units}/{entry.budget} septets, {cost.encoding}, {segments}"
    else:
        size = f"{len(text)}/{entry.budget} characters"
    return f"\n== {key} [{locale}] {entry.channel}: {size}\n{text}\n"
