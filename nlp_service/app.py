"""Flask app factory. Models load here, once per worker (never at import, never with --preload)."""

from __future__ import annotations

import logging

from flask import Flask

from nlp_service.services import Services
from nlp_service.settings import Settings, load_settings
from nlp_service.web.api import bp as api_bp
from nlp_service.web.errors import register_error_handlers
from nlp_service.web.feedback_api import bp as feedback_bp
from nlp_service.web.openapi import bp as openapi_bp
from nlp_service.web.pages import bp as pages_bp
from nlp_service.web.writes import bp as writes_bp

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> Flask:
    settings = settings or (services.settings if services else load_settings())
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["nlp_service"] = services or Services(settings)
    app.register_blueprint(api_bp)
    app.register_blueprint(writes_bp)
    app.register_blueprint(feedback_bp)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(pages_bp)  # the coordinator pages: /, /documents, /status
    register_error_handlers(app)
    return app
