"""A ballot listed by SMS: one segment if it fits, else a few numbered parts, else USSD."""

from __future__ import annotations

from messages.catalogue import SMS_BUDGET
from messages.gsm import measure
from messages.voice import Voice

MAX_PARTS = 3  # beyond this a listing costs more than it helps: point to USSD if there is one
MAX_TITLE = 60  # characters of a project's title shown by SMS


def ballot_texts(
    voice: Voice, name: str, options: dict[int, str], ussd_code: str | None
) -> list[str]:
    header = voice.say("options_header", name=name)
    footer = voice.say("options_footer")
    lines = [f"{n} {voice.plain(_short(title))}" for n, title in sorted(options.items())]
    whole = "\n".join([header, *lines, footer])
    if _fits(whole):
        return [whole]
    parts = _pack(voice, [header, *lines, footer])
    if len(parts) > MAX_PARTS and ussd_code:
        return [voice.say("ballot_too_long", ussd=ussd_code)]
    return parts


def _short(title: str) -> str:
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 3].rstrip() + "..."


def _fits(text: str) -> bool:
    cost = measure(text)
    return cost.segments == 1 and cost.units <= SMS_BUDGET


def _pack(voice: Voice, lines: list[str]) -> list[str]:
    """Fill parts line by line; each part starts with its number, e.g. "(2/3)"."""
    widest = voice.say("options_more", part=9, parts=9)
    groups: list[list[str]] = [[]]
    for line in lines:
        if groups[-1] and not _fits("\n".join([widest, *groups[-1], line])):
            groups.append([])
        groups[-1].append(line)
    total = len(groups)
    return [
        "\n".join([voice.say("options_more", part=i, parts=total), *group])
        for i, group in enumerate(groups, start=1)
    ]
