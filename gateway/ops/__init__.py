"""The operator console (/ops), rq-dashboard behind its login (/ops/rq), and /metrics.

app.py lists `views.blueprint` and `metrics.blueprint` in its table of blueprints; registering
the console also sets up its session cookie and rq-dashboard (see `views._set_up`).
"""

from __future__ import annotations

from flask import Flask


def install(app: Flask) -> Flask:
    """Register the console on an app built without it; a no-op once app.py lists it."""
    from gateway.ops import metrics, views

    for blueprint in (views.blueprint, metrics.blueprint):
        if blueprint.name not in app.blueprints:
            app.register_blueprint(blueprint)
    return app
