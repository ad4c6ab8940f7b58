"""Every reply, in every locale, is pure GSM-7 and fits one SMS segment at its longest."""

from __future__ import annotations

import pytest

from messages.catalogue import LOCALES, SMS_BUDGET, SPANISH, placeholders, render

# GSM 03.38 default alphabet: one septet each (ESC, 0x1B, is left out: it is not a character).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each is sent as ESC plus a septet, so it costs two.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

# The longest values each placeholder takes in practice.
WORST: dict[str, object] = {
    "name": "Presupuesto Comunal Juvenil 26",  # 30 characters
    "receipt": "K7Q-2M9-XAB",
    "valid": "1, 2, 3, 4, 5, 6, 7, 8, 9",  # longer than any ballot's "1-7" or "1-9"
    "example": 3,
    "opens": "01/12/2026 08:00",
    "options": "1, 2, 3, 4, 5, 6, 7, 8, 9",  # a voter who sent every option of a full ballot
}

ENTRIES = [
    pytest.param(locale, key, id=f"{locale} {key}")
    for locale, texts in sorted(LOCALES.items())
    for key in sorted(texts)
]


def non_gsm7(text: str) -> set[str]:
    return {ch for ch in text if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION}


def septets(text: str) -> int:
    return sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)


@pytest.mark.parametrize(
    ("text", "foreign", "cost"),
    [
        pytest.param("Votacion", set(), 8, id="votacion without an accent is gsm7"),
        pytest.param("Votación", {"ó"}, 8, id="an acute accent is not gsm7"),
        pytest.param("¿Año? ¡Sí!", {"í"}, 10, id="only the i with acute is foreign here"),
        pytest.param("ñÑ¿¡éÉüÜ", set(), 8, id="the spanish letters of gsm7 cost one"),
        pytest.param("[1|2]", set(), 8, id="extension characters cost two"),
        pytest.param("10€", set(), 4, id="the euro sign costs two"),
        pytest.param(
            "“3”–…👍", {"“", "”", "–", "…", "👍"}, 6, id="quotes dashes emoji are foreign"
        ),
    ],
)
def test_the_gsm7_check_itself(text: str, foreign: set[str], cost: int) -> None:
    assert non_gsm7(text) == foreign
    assert septets(text) == cost


def test_the_worst_case_name_is_thirty_characters() -> None:
    assert len(str(WORST["name"])) == 30


@pytest.mark.parametrize(("locale", "key"), ENTRIES)
def test_every_placeholder_has_a_worst_case_value(locale: str, key: str) -> None:
    assert placeholders(LOCALES[locale][key]) <= WORST.keys()


@pytest.mark.parametrize(("locale", "key"), ENTRIES)
def test_every_locale_has_the_keys_and_placeholders_of_spanish(locale: str, key: str) -> None:
    assert LOCALES[locale].keys() == SPANISH.keys()
    assert placeholders(LOCALES[locale][key]) == placeholders(SPANISH[key])


@pytest.mark.parametrize(("locale", "key"), ENTRIES)
def test_a_rendered_reply_is_pure_gsm7(locale: str, key: str) -> None:
    assert non_gsm7(render(key, locale, **WORST)) == set()


@pytest.mark.parametrize(("locale", "key"), ENTRIES)
def test_a_rendered_reply_fits_one_sms_segment(locale: str, key: str) -> None:
    text = render(key, locale, **WORST)
    assert septets(text) <= SMS_BUDGET, f"{septets(text)} septets: {text}"


@pytest.mark.parametrize(
    "key", [k for k in sorted(SPANISH) if placeholders(SPANISH[k])], ids=lambda k: f"{k} needs"
)
def test_a_missing_placeholder_is_an_error_not_a_blank(key: str) -> None:
    with pytest.raises(KeyError):
        render(key)
