"""Hubtel USSD: JSON callbacks that carry only the latest input, and JSON screens back.

Hubtel has no SMS adapter here: replies to its USSD voters leave through the default SMS
provider (see `gateway.providers.registry`). Its callbacks are not signed: the blueprint guards
them with a secret path segment and the source allow-list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from gateway.imports.e164 import reader_for
from gateway.providers.base import BadRequestError, Screen, UssdHop, at_most

NAME = "hubtel"
USSD_TYPE = "application/json"
DEFAULT_REGION = "GH"  # Hubtel serves Ghana; it sends "233244123456", without the plus
MAX_MESSAGE_CHARS = 200  # one input (or the dialled string); a real one is a few keys
MAX_SESSION_ID_CHARS = 128  # it keys the menu position in Redis
STARTS, CONTINUES = "initiation", "response"
ENDS = frozenset({"release", "timeout"})


def parse_ussd(payload: Mapping[str, object], region: str = DEFAULT_REGION) -> UssdHop:
    """One USSD hop, or BadRequestError naming the field that is missing or of the wrong type."""
    # The older USSD API spells types "Initiation"; the Programmable Services API "initiation".
    kind = _text(payload, "Type").lower()
    if kind not in {STARTS, CONTINUES} | ENDS:
        raise BadRequestError("unknown Type")
    session_id, mobile = _text(payload, "SessionId"), _text(payload, "Mobile")
    message = _text(payload, "Message", required=kind == CONTINUES, may_be_empty=True)
    _check_sequence(payload.get("Sequence"))
    at_most(session_id, MAX_SESSION_ID_CHARS, "SessionId")
    at_most(message, MAX_MESSAGE_CHARS, "Message")
    return UssdHop(
        provider=NAME,
        session_id=session_id,
        phone=reader_for(region)(mobile) or mobile[:32],
        service_code=_service_code(payload),
        inputs=(message,) if kind == CONTINUES else (),
        whole_path=False,
        starts=kind == STARTS,
        ends=kind in ENDS,
    )


def render_ussd(screen: Screen) -> tuple[str, str]:
    """The reply body and its content type: `Response` waits for input, `Release` closes."""
    reply = {"Type": "Release" if screen.end else "Response", "Message": screen.text}
    return json.dumps(reply), USSD_TYPE


def _text(
    payload: Mapping[str, object], name: str, *, required: bool = True, may_be_empty: bool = False
) -> str:
    value = payload.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadRequestError(f"missing field: {name}" if value is None else f"{name} not a string")
    if not value and not may_be_empty:
        raise BadRequestError(f"missing field: {name}")
    return value


def _service_code(payload: Mapping[str, object]) -> str:
    # The older USSD API says "ServiceCode"; the Programmable Services API "serviceCode".
    name = "ServiceCode" if "ServiceCode" in payload else "serviceCode"
    return _text(payload, name, required=False, may_be_empty=True)


def _check_sequence(sequence: object) -> None:
    # bool is an int to Python, but `true` is not a hop number.
    if sequence is not None and (isinstance(sequence, bool) or not isinstance(sequence, int)):
        raise BadRequestError("Sequence not an integer")
