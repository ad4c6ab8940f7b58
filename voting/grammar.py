"""What a text message means: a vote, a keyword, or something we must ask about.

The parser never guesses. Two different option numbers in one message are ambiguous on a
single-choice ballot, so they come back as `Ambiguous`, never as a vote.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from voting.identity import normalise_national_id
from voting.receipts import normalise_receipt

MAX_OPTION = 99

# Twilio's opt-out, opt-in and help words, plus their Spanish counterparts. Twilio matches the
# whole body, one word, any case: so do we.
KEYWORDS = {
    "stop": {"STOP", "UNSUBSCRIBE", "END", "QUIT", "STOPALL", "REVOKE", "OPTOUT", "CANCEL", "BAJA"},
    "start": {"START", "YES", "UNSTOP", "ALTA"},
    "help": {"HELP", "INFO", "AYUDA"},
}
VOTE_WORDS = {"VOTO", "VOTE", "VOTAR", "VOTA", "V"}


@dataclass(frozen=True)
class Vote:
    option: int
    national_id: str | None = None


@dataclass(frozen=True)
class Keyword:
    name: str  # "stop", "start" or "help"


@dataclass(frozen=True)
class Ambiguous:
    options: tuple[int, ...]


@dataclass(frozen=True)
class Unrecognised:
    pass


@dataclass(frozen=True)
class Command:
    """A keyword with an optional argument: `OPCIONES`, `ESTADO V12345678`, `IDIOMA EN`.

    `national_id` serves a phone shared by several people; `argument` is the raw word after
    IDIOMA/LANGUAGE, which the caller matches against the languages it has.
    """

    name: str  # "options", "status" or "language"
    national_id: str | None = None
    argument: str | None = None


@dataclass(frozen=True)
class ReceiptCheck:
    """`RECIBO K7Q-2M9-XAB`: was the vote with this receipt counted? (code None: unreadable)."""

    code: str | None


Parsed = Vote | Keyword | Ambiguous | Unrecognised | ReceiptCheck | Command
_RECEIPT = re.compile(r"^(?:RECIBO|RECEIPT)\b[\s:#]*(.*)$")
COMMANDS = {
    "OPCIONES": "options", "OPTIONS": "options", "BOLETA": "options", "BALLOT": "options",
    "ESTADO": "status", "STATUS": "status",
    "IDIOMA": "language", "LANGUAGE": "language", "LENGUAJE": "language", "LANG": "language",
}  # fmt: skip
# Number words in a vote: "voto tres", "VOTE three"; and "4 tres" is two options.
NUMBER_WORDS = {
    word: str(n)
    for words in (
        ("CERO", "UNO", "DOS", "TRES", "CUATRO", "CINCO", "SEIS", "SIETE", "OCHO", "NUEVE"),
        ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"),
    )
    for n, word in enumerate(words)
} | {"UNA": "1"}

_ID_TOKEN = re.compile(r"^[VE]?-?\d{1,3}(?:\.\d{3})+$|^[VE]-?\d{5,10}$|^\d{5,10}$")
_ID_NUMBER = re.compile(r"^-?\d{1,3}(?:\.\d{3})+$|^-?\d{5,10}$")  # an ID without its V or E
_OPTION_TOKEN = re.compile(r"^\d{1,2}$")


def parse(text: str) -> Parsed:
    """Read one SMS body."""
    normal = _normalise(text)
    if not normal:
        return Unrecognised()
    for name, words in KEYWORDS.items():
        if normal in words:
            return Keyword(name)
    if receipt := _RECEIPT.match(normal):
        return ReceiptCheck(normalise_receipt(receipt.group(1)))
    tokens = _tokens(normal)
    if tokens and tokens[0] in COMMANDS:
        return _read_command(COMMANDS[tokens[0]], tokens[1:])
    if tokens and tokens[0] in VOTE_WORDS:
        tokens = tokens[1:]
    elif not tokens or not (_OPTION_TOKEN.match(tokens[0]) or _glued_vote(tokens[0])):
        return Unrecognised()
    # Number words count wherever they stand: "4 tres" names two options and must be asked
    # about, not read as a vote for 4.
    return _read_vote([NUMBER_WORDS.get(token, token) for token in tokens])


def _normalise(text: str) -> str:
    """Fullwidth and other digits become ASCII; accents and case stop mattering."""
    folded = unicodedata.normalize("NFKC", text)
    folded = "".join(str(unicodedata.digit(ch)) if ch.isdigit() else ch for ch in folded)
    stripped = unicodedata.normalize("NFD", folded)
    # Mn is an accent; Me is the keycap of the emoji "3️⃣" (a 3, a variation selector, a keycap).
    plain = "".join(ch for ch in stripped if unicodedata.category(ch) not in {"Mn", "Me"})
    return " ".join(plain.upper().split())


def _tokens(normal: str) -> list[str]:
    # '#' and ':' decorate an option ("Voto #3", "Voto: 3"); '.' and '-' belong to IDs, but a
    # full stop that ends a word ends the sentence ("Voto 3.").
    spaced = re.sub(r"[#:,;!?()]", " ", normal)
    tokens: list[str] = []
    for token in (t.rstrip(".") for t in spaced.split()):
        if tokens and tokens[-1] == "E" and _ID_NUMBER.match(token):
            tokens[-1] = "E" + token  # "E 81234567": the E is the nationality, not a word
        elif token:
            tokens.extend(_glued_vote(token) or [token])
    return tokens


_GLUED = re.compile(rf"({'|'.join(sorted(VOTE_WORDS))})(\d{{1,2}})")


def _glued_vote(token: str) -> list[str] | None:
    """`V3`, `VOTA3` and `VOTO3` are a vote word glued to an option number."""
    match = _GLUED.fullmatch(token)
    return [match.group(1), match.group(2)] if match else None


def _read_vote(tokens: list[str]) -> Parsed:
    options: list[int] = []
    national_id: str | None = None
    for token in tokens:
        if _OPTION_TOKEN.match(token):
            options.append(int(token))
        elif (
            national_id is None
            and _ID_TOKEN.match(token)
            and (read := normalise_national_id(token))
        ):
            national_id = read
        elif any(ch.isdigit() for ch in token):
            # A second ID, an ID too short or too long to be one, or digits we cannot read: a
            # vote that dropped the ID would count for whoever owns the phone. Ask, don't guess.
            return Unrecognised()
    distinct = tuple(dict.fromkeys(options))
    if len(distinct) > 1:
        return Ambiguous(distinct)
    if not distinct or distinct[0] > MAX_OPTION:
        return Unrecognised()
    return Vote(distinct[0], national_id)


def _read_command(name: str, rest: list[str]) -> Parsed:
    if name == "language":
        return Command(name, argument=rest[0] if rest else None)
    ids = [
        read for token in rest if _ID_TOKEN.match(token) and (read := normalise_national_id(token))
    ]
    return Command(name, national_id=ids[0] if len(ids) == 1 else None)
