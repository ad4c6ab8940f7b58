"""Published results: once a consultation is certified, anyone may read them, as a page or JSON.

Nothing is shown before certification: a count in progress is for the operators' console.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, render_template
from sqlalchemy import select

from gateway.models import ConsultationRow
from gateway.results import ResultsReport, as_json, results

blueprint = Blueprint("public", __name__, template_folder="templates")


@blueprint.get("/results/<slug>.json")
def results_json(slug: str) -> Response:
    report = _certified(slug)
    response = Response(as_json(report), mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@blueprint.get("/results/<slug>")
def results_page(slug: str) -> str:
    report = _certified(slug)
    return render_template("public/results.html", report=report)


def _certified(slug: str) -> ResultsReport:
    """The results of a certified consultation; 404 for anything else, certified or not."""
    sessions = current_app.extensions["consulta"].sessions
    with sessions() as session:
        status = session.scalar(select(ConsultationRow.status).where(ConsultationRow.slug == slug))
    if status != "certified":
        abort(404, "no certified results under that name")
    return results(sessions, slug)
