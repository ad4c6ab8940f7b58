"""Every message the gateway sends, declared once: its parameters, its channel and its budget.

The texts live in one TOML file per locale (`messages/locales/es.toml`, `en.toml`, ...), so
adding a language is adding a file. They are written in natural spelling; `render` makes an SMS
GSM-7 (one accent outside it would turn the whole reply into UCS-2 and more than double its
cost) and a USSD screen plain ASCII. The tests render every entry in every locale with its
longest values and hold it to its budget.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from string import Formatter
from typing import Literal

from messages.gsm import to_ascii, to_gsm7

DEFAULT_LOCALE = "es"
SMS_BUDGET = 160  # GSM-7 septets: one segment
# GSM 04.80 allows 182 characters on a screen, but aggregators advise 160 or fewer in ASCII.
USSD_BUDGET = 160

Channel = Literal["sms", "ussd"]


@dataclass(frozen=True)
class Entry:
    key: str
    params: frozenset[str]
    channel: Channel  # also the locale file's section that holds the text
    budget: int  # SMS: GSM-7 septets; USSD: ASCII characters


def _sms(key: str, *params: str) -> Entry:
    return Entry(key, frozenset(params), "sms", SMS_BUDGET)


def _ussd(key: str, *params: str) -> Entry:
    return Entry(key, frozenset(params), "ussd", USSD_BUDGET)


def _table(*entries: Entry) -> dict[str, Entry]:
    return {entry.key: entry for entry in entries}


ENTRIES: dict[str, Entry] = _table(
    # Votes
    _sms("confirmed", "name", "receipt"),
    _sms("replaced", "name", "receipt"),
    _sms("already_voted", "name", "receipt"),
    _sms("voted_on_paper", "name"),  # the standing vote is a paper ballot: no receipt to give
    _sms("not_registered", "name"),
    _sms("id_needed"),
    _sms("age", "name"),
    _sms("no_such_option", "valid", "example"),
    _sms("closed", "name"),
    _sms("not_open", "name", "opens"),
    _sms("no_consultation"),
    _sms("ambiguous", "options", "example"),
    _sms("unrecognised"),
    # Keywords and commands
    _sms("help"),
    _sms("opted_in"),
    _sms("opted_out"),  # Twilio confirms STOP itself; for providers that do not
    _sms("status_voted", "name", "receipt"),
    _sms("status_not_voted", "name"),
    _sms("language_set"),  # written in the new language
    _sms("language_unknown", "choices"),
    # Receipt checks
    _sms("receipt_counted", "receipt", "name"),
    _sms("receipt_replaced", "receipt", "name"),
    _sms("receipt_unknown", "receipt"),
    _sms("receipt_unreadable"),
    # The ballot listing, composed over several SMS: header, options, (part/parts), footer
    _sms("options_header", "name"),
    _sms("options_more", "part", "parts"),
    _sms("options_footer"),
    _sms("ballot_too_long", "ussd"),
    # USSD screens: every screen of the menu, and the one-line errors shown above a screen
    _ussd("ussd_welcome", "name"),
    _ussd("ussd_ask_id"),
    _ussd("ussd_ballot_header"),
    _ussd("ussd_nav_more"),
    _ussd("ussd_nav_last"),
    _ussd("ussd_confirm", "option", "title"),
    _ussd("ussd_voted", "receipt"),
    _ussd("ussd_already_voted", "receipt"),
    _ussd("ussd_voted_on_paper", "name"),
    _ussd("ussd_status_voted", "receipt"),
    _ussd("ussd_status_not_voted"),
    _ussd("ussd_language"),
    _ussd("ussd_not_registered", "name"),
    _ussd("ussd_age", "name"),
    _ussd("ussd_closed", "name"),
    _ussd("ussd_not_open", "name", "opens"),
    _ussd("ussd_no_consultation"),
    _ussd("ussd_ended"),
    _ussd("ussd_goodbye"),
    _ussd("ussd_resumed"),
    _ussd("ussd_invalid"),
    _ussd("ussd_wrong_id"),
    _ussd("ussd_too_many_tries"),
)


def render(
    key: str, locale: str = DEFAULT_LOCALE, /, *, allow_ucs2: bool = False, **params: object
) -> str:
    """The text for `key`, every placeholder filled; a missing one is a KeyError, not a blank.

    An SMS is transliterated to GSM-7 unless `allow_ucs2` (the caller accepts the cost of
    accents); a USSD screen always to ASCII. An unknown locale falls back to Spanish.
    """
    entry = ENTRIES[key]
    text = template(key, locale).format(**params)
    if entry.channel == "ussd":
        return to_ascii(text)
    return text if allow_ucs2 else to_gsm7(text)


def template(key: str, locale: str = DEFAULT_LOCALE) -> str:
    """The raw text of `key` in `locale` (Spanish when there is no such locale)."""
    known = locale if locale in locales() else DEFAULT_LOCALE
    return load(known)[ENTRIES[key].channel][key]


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(template) if name}


def locales() -> list[str]:
    """The locales with a file in messages/locales, sorted."""
    return list(_locale_names())


@cache
def _locale_names() -> tuple[str, ...]:
    names = (item.name for item in _folder().iterdir() if item.is_file())
    return tuple(sorted(name.removesuffix(".toml") for name in names if name.endswith(".toml")))


@cache
def load(locale: str) -> dict[str, dict[str, str]]:
    """One locale's texts by section ("sms", "ussd"), read once. Callers must not mutate it."""
    if locale not in locales():
        raise KeyError(f"no locale file messages/locales/{locale}.toml")
    document = tomllib.loads(_folder().joinpath(f"{locale}.toml").read_text(encoding="utf-8"))
    return _sections(document, locale)


def _sections(document: dict[str, object], locale: str) -> dict[str, dict[str, str]]:
    # A typo such as a number where text belongs should fail loudly here, not mid-reply.
    sections: dict[str, dict[str, str]] = {}
    for name, section in document.items():
        if not isinstance(section, dict) or not all(isinstance(v, str) for v in section.values()):
            raise ValueError(f"{locale}.toml: [{name}] must be a table of texts")
        sections[name] = {str(k): str(v) for k, v in section.items()}
    return sections


def _folder() -> Traversable:
    # Through importlib.resources, so it works from an installed wheel as well as from source.
    return files("messages").joinpath("locales")


# What voters type after IDIOMA/LANGUAGE, accents and case removed; locale codes map to
# themselves.
_LANGUAGE_NAMES = {
    "espanol": "es",
    "castellano": "es",
    "spanish": "es",
    "ingles": "en",
    "english": "en",
}


def normalise_locale(text: str) -> str | None:
    """The locale a voter asked for ("Inglés", "EN", "es-VE"), if we have it."""
    word = to_ascii(text).strip().lower().replace("_", "-").split("-")[0]
    code = _LANGUAGE_NAMES.get(word, word)
    return code if code in locales() else None
