"""The commands that run processes: web, worker, demo, and the SMS simulator."""

from __future__ import annotations

import click

from gateway.queues import INTAKE_QUEUE, REPLIES_QUEUE
from gateway.settings import Settings


@click.command()
def web() -> None:
    """Serve the webhooks with gunicorn on $PORT (8000 by default)."""
    from gateway.webserver import serve

    serve(Settings.from_env())


@click.command()
@click.option(
    "--queue",
    "queues",
    multiple=True,
    type=click.Choice([INTAKE_QUEUE, REPLIES_QUEUE]),
    help="Queues to serve (default: both). In production run one intake worker per process.",
)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
def worker(queues: tuple[str, ...], burst: bool) -> None:
    """Count votes and send replies (an RQ worker, with the pump and the sweep)."""
    import logging

    from workers.main import run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run(Settings.from_env(), list(queues or (INTAKE_QUEUE, REPLIES_QUEUE)), burst=burst)


@click.command()
@click.option("--port", type=int, help="Port for the webhooks (default $PORT or 8000).")
def demo(port: int | None) -> None:
    """Run the whole gateway here with embedded Redis and SQLite, and a demo consultation."""
    from gateway.demo import run_demo

    settings = Settings.from_env()
    run_demo(settings.with_(port=port) if port else settings)


@click.group()
def simulate() -> None:
    """Send messages to a running gateway as a provider would."""


@simulate.command("sms")
@click.option("--from", "sender", required=True, help="The voter's number, e.g. +584141234567.")
@click.option("--to", default="+582125550000", show_default=True, help="The gateway's number.")
@click.option("--url", help="Webhook URL (default: the running demo's).")
@click.option("--token", envvar="TWILIO_AUTH_TOKEN", help="Auth Token used to sign.")
@click.option("--wait", default=15.0, show_default=True, help="Seconds to wait for the reply.")
@click.argument("text")
def simulate_sms(  # noqa: PLR0913 - one option per flag
    sender: str, to: str, url: str | None, token: str | None, wait: float, text: str
) -> None:
    """Send TEXT as a signed Twilio webhook, then print the reply the voter would get."""
    import os
    import secrets

    from gateway import simulate as sim

    try:
        target = sim.find_target(url, token, os.environ.get("DATABASE_URL"))
    except LookupError as error:
        raise click.ClickException(str(error)) from error
    sid = "SM" + secrets.token_hex(16)
    status, body = sim.post_signed(target, sim.twilio_form(sender, text, sid, to))
    click.echo(f"-> {target.webhook_url}  {status}  (MessageSid {sid})")
    if status != 200:
        raise click.ClickException(f"the gateway refused the message: {body.strip()}")
    outcome, reply = sim.wait_for_reply(target, sid, wait)
    _show_reply(outcome, reply, wait)


@simulate.command("ussd")
@click.option("--from", "phone", required=True, help="The caller's number, e.g. +584141234567.")
@click.option(
    "--url", help="The gateway's base URL, or the whole callback URL (default: the demo's)."
)
@click.option(
    "--secret", envvar="AFRICASTALKING_SECRET", help="The callback's secret path segment."
)
@click.option("--service-code", default="*123#", show_default=True, help="The code dialled.")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    help="Type this instead of reading the keyboard (repeat it); hangs up after the last one.",
)
@click.option("--verbose", "-v", is_flag=True, help="Also show the `text` sent on each hop.")
def simulate_ussd(  # noqa: PLR0913 - one option per flag
    phone: str,
    url: str | None,
    secret: str | None,
    service_code: str,
    inputs: tuple[str, ...],
    verbose: bool,
) -> None:
    """Dial the gateway's USSD menu as Africa's Talking would, and show the handset's screens."""
    from gateway import simulate_ussd as sim

    try:
        target = sim.callback_url(url, secret, sim.read_demo())
    except LookupError as error:
        raise click.ClickException(str(error)) from error
    dial = sim.Dial(target, phone, service_code, sim.new_session_id())
    click.echo(f"Dialling {service_code} from {phone} (session {dial.session_id})")
    read = sim.scripted(inputs, click.echo) if inputs else _keyboard
    try:
        sim.run_session(dial, read, click.echo, verbose=verbose)
    except sim.UssdError as error:
        click.echo("[session ended]")
        raise click.ClickException(str(error)) from error


def _keyboard(prompt: str) -> str:
    import sys

    try:
        entry = input(prompt)
    except EOFError:
        click.echo()  # Ctrl-D leaves the cursor after the prompt
        raise
    if not sys.stdin.isatty():
        click.echo(entry)  # piped input is not echoed by a terminal: show what was "typed"
    return entry


def _show_reply(outcome: str, reply: object, wait: float) -> None:
    if outcome == "pending":
        raise click.ClickException(f"no reply within {wait:.0f} s: is `consulta worker` running?")
    if reply is None:
        click.echo(f"<- outcome: {outcome}; no reply is sent for this message")
        return
    where = {
        "outbox": "OUTBOX, not sent: no Twilio credentials",
        "sent": "sent through Twilio",
        "delivered": "delivered",
    }.get(reply.status, reply.status)  # type: ignore[attr-defined]
    click.echo(f"<- outcome: {outcome}; reply to {reply.recipient} [{where}]:")  # type: ignore[attr-defined]
    click.echo(f"   {reply.body}")  # type: ignore[attr-defined]


COMMANDS = [web, worker, demo, simulate]
