"""Every reply the gateway sends, in one place, in plain GSM-7 so each fits one SMS segment.

Accents outside GSM-7 (a with acute, o with acute, ...) would turn a whole reply into UCS-2 and
more than double its cost, so the Spanish is written without them; n-tilde and the inverted
marks are GSM-7 and stay.
"""

from __future__ import annotations

from string import Formatter

SMS_BUDGET = 160

SPANISH: dict[str, str] = {
    # 156 septets with a 30-character name: the old wording ("Guardalo: con RECIBO ...") was 166.
    "confirmed": "Consulta {name}: voto registrado, recibo {receipt}. "
    "Envia RECIBO {receipt} para confirmar que se conto, sin mostrar tu eleccion.",
    "replaced": "Consulta {name}: tu nuevo voto reemplaza al anterior. Recibo {receipt}.",
    "already_voted": "Ya votaste en la consulta {name}. Tu voto sigue valido con el recibo "
    "{receipt}.",
    "not_registered": "No encontramos este telefono (y cedula) en el registro de la consulta "
    "{name}. Consulta a tu comision electoral comunal.",
    "id_needed": "Para votar envia la opcion y tu cedula, por ejemplo: VOTO 3 V12345678",
    "age": "Segun el registro no estas en la edad permitida para la consulta {name}.",
    "no_such_option": "Esa opcion no esta en tu boleta. Opciones validas: {valid}. "
    "Envia por ejemplo: VOTO {example}",
    "closed": "La votacion de la consulta {name} ya cerro. Tu mensaje no se conto.",
    "not_open": "La votacion de la consulta {name} abre el {opens}. Tu mensaje no se conto.",
    "no_consultation": "No hay ninguna consulta abierta en este momento.",
    "ambiguous": "Enviaste varias opciones ({options}). Elige una sola, por ejemplo: VOTO "
    "{example}",
    "unrecognised": "No entendimos tu mensaje. Para votar envia VOTO y el numero de la opcion, "
    "por ejemplo: VOTO 3",
    "help": "Para votar envia VOTO y el numero de tu opcion, por ejemplo: VOTO 3. Si el "
    "telefono es compartido agrega tu cedula: VOTO 3 V12345678",
    "receipt_counted": "Recibo {receipt}: el voto fue contado en la consulta {name}.",
    "receipt_replaced": "Recibo {receipt}: ese voto fue reemplazado por un voto posterior en la "
    "consulta {name}.",
    "receipt_unknown": "No encontramos el recibo {receipt}. Revisa que este bien escrito.",
    "receipt_unreadable": "Envia RECIBO y el codigo que te enviamos, por ejemplo: RECIBO "
    "K7Q-2M9-XAB",
    "opted_in": "Volviste a recibir mensajes de la consulta. Para votar envia VOTO y el numero.",
}

LOCALES = {"es": SPANISH}
DEFAULT_LOCALE = "es"


def render(key: str, locale: str = DEFAULT_LOCALE, **params: object) -> str:
    """The text for `key`, with every placeholder filled; a missing one is a bug, not a blank."""
    template = LOCALES.get(locale, SPANISH)[key]
    return template.format(**params)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(template) if name}
