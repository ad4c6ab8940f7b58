"""Every entry, in every locale, exists, takes its declared parameters and fits its budget."""

from __future__ import annotations

import difflib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messages import catalogue
from messages.catalogue import ENTRIES, Entry, locales, placeholders, render, template
from messages.gsm import measure
from tests.golden import CATALOGUE, REGENERATE, SAMPLE, catalogue_rendering

EVERY_ENTRY_IN_EVERY_LOCALE = [
    pytest.param(locale, key, id=f"{locale} {key}")
    for locale in locales()
    for key in sorted(ENTRIES)
]
SMS = sorted(key for key, entry in ENTRIES.items() if entry.channel == "sms")


def test_spanish_and_english_are_the_locales() -> None:
    assert locales() == ["en", "es"]


@pytest.mark.parametrize("locale", locales())
def test_a_locale_has_every_entry_and_nothing_else(locale: str) -> None:
    texts = catalogue.load(locale)
    for channel in ("sms", "ussd"):
        declared = {key for key, entry in ENTRIES.items() if entry.channel == channel}
        assert set(texts.get(channel, {})) == declared, f"[{channel}] of {locale}.toml"
    assert set(texts) <= {"sms", "ussd"}


@pytest.mark.parametrize(("locale", "key"), EVERY_ENTRY_IN_EVERY_LOCALE)
def test_a_text_uses_exactly_the_declared_parameters(locale: str, key: str) -> None:
    assert placeholders(template(key, locale)) == ENTRIES[key].params


def test_the_sample_has_a_value_for_every_parameter() -> None:
    assert set().union(*(entry.params for entry in ENTRIES.values())) <= SAMPLE.keys()
    assert len(str(SAMPLE["name"])) == 30


def test_no_parameter_is_named_like_an_argument_of_render() -> None:
    for entry in ENTRIES.values():
        assert not entry.params & {"allow_ucs2"}, entry.key


@pytest.mark.parametrize(("locale", "key"), EVERY_ENTRY_IN_EVERY_LOCALE)
def test_the_longest_rendering_fits_the_budget(locale: str, key: str) -> None:
    entry = ENTRIES[key]
    text = render(key, locale, **SAMPLE)
    if entry.channel == "sms":
        cost = measure(text)
        assert (cost.encoding, cost.segments) == ("GSM-7", 1), text
        assert cost.units <= entry.budget, f"{cost.units} septets: {text}"
    else:
        assert text.isascii(), text
        assert len(text) <= entry.budget, f"{len(text)} characters: {text}"


@pytest.mark.parametrize("locale", locales())
def test_help_names_every_command_within_one_segment(locale: str) -> None:
    words = {
        "es": ["VOTO 3", "V12345678", "OPCIONES", "ESTADO", "RECIBO"],
        "en": ["VOTE 3", "V12345678", "OPTIONS", "STATUS", "RECEIPT"],
    }[locale]
    text = render("help", locale)
    assert all(word in text for word in words), text
    assert measure(text).segments == 1


@given(name=st.text(max_size=30))
def test_any_consultation_name_still_leaves_as_gsm7(name: str) -> None:
    for locale in locales():
        for key in SMS:
            text = render(key, locale, **{**SAMPLE, "name": name})
            assert measure(text).encoding == "GSM-7", (locale, key, text)


@pytest.mark.parametrize("key", sorted(k for k, e in ENTRIES.items() if e.params))
def test_a_missing_placeholder_is_an_error_not_a_blank(key: str) -> None:
    with pytest.raises(KeyError):
        render(key)


CLOSED_ES = "La votacion de la consulta Votacion ya cerro. Tu mensaje no se conto."


@pytest.mark.parametrize(
    ("locale", "allow_ucs2", "expected"),
    [
        pytest.param("es", False, CLOSED_ES, id="spanish leaves as gsm7, parameters included"),
        pytest.param(
            "es",
            True,
            "La votación de la consulta Votación ya cerró. Tu mensaje no se contó.",
            id="spanish keeps its accents when ucs2 is allowed",
        ),
        pytest.param(
            "en",
            False,
            "Voting in consultation Votacion has closed. Your message was not counted.",
            id="english leaves as gsm7",
        ),
        pytest.param("fr", False, CLOSED_ES, id="an unknown locale falls back to spanish"),
    ],
)
def test_render_fills_the_text_and_makes_it_gsm7(
    locale: str, allow_ucs2: bool, expected: str
) -> None:
    assert render("closed", locale, allow_ucs2=allow_ucs2, name="Votación") == expected


def test_a_ussd_screen_leaves_as_plain_ascii(monkeypatch: pytest.MonkeyPatch) -> None:
    # No USSD entry exists yet: a stand-in entry and locale file exercise the channel.
    monkeypatch.setitem(ENTRIES, "probe", Entry("probe", frozenset({"name"}), "ussd", 160))
    monkeypatch.setattr(catalogue, "load", lambda locale: {"ussd": {"probe": "¿{name}? 1. Sí"}})
    assert render("probe", "es", name="Año") == "Ano? 1. Si"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("ES", "es", id="the code in capitals"),
        pytest.param(" es ", "es", id="the code with spaces"),
        pytest.param("español", "es", id="the spanish name in spanish"),
        pytest.param("Espanol", "es", id="the spanish name without the tilde"),
        pytest.param("spanish", "es", id="the spanish name in english"),
        pytest.param("es-VE", "es", id="a regional tag"),
        pytest.param("EN", "en", id="the english code"),
        pytest.param("inglés", "en", id="the english name in spanish"),
        pytest.param("INGLES", "en", id="the english name without the accent"),
        pytest.param("English", "en", id="the english name in english"),
        pytest.param("FR", None, id="a locale we have no file for"),
        pytest.param("klingon", None, id="a word that is no language"),
        pytest.param("", None, id="nothing"),
    ],
)
def test_normalise_locale_understands_what_voters_type(text: str, expected: str | None) -> None:
    assert catalogue.normalise_locale(text) == expected


def test_the_rendering_matches_the_golden_file() -> None:
    rendering = catalogue_rendering()
    if os.environ.get("UPDATE_GOLDEN") == "1":
        CATALOGUE.write_text(rendering, encoding="utf-8")
    golden = CATALOGUE.read_text(encoding="utf-8")
    diff = "".join(
        difflib.unified_diff(
            golden.splitlines(keepends=True),
            rendering.splitlines(keepends=True),
            "tests/golden/catalogue.txt",
            "rendering",
        )
    )
    assert rendering == golden, f"Regenerate with {REGENERATE} and review the diff:\n{diff}"
