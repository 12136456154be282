"""The gunicorn entry point: configures logging for a worker, then builds the app in that worker."""

from __future__ import annotations

import logging
import os

from flask import Flask

from nlp_service.app import create_app
from nlp_service.errors import NlpServiceError


def served_app() -> Flask:
    """Called by gunicorn in each worker (never with --preload), so models load per worker."""
    logging.basicConfig(
        level=os.environ.get("NLP_SERVICE_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("jieba").setLevel(logging.WARNING)
    app = create_app()
    # Load the published index before this worker takes traffic (gunicorn calls this before accepting).
    try:
        app.extensions["nlp_service"].current_index()
    except NlpServiceError as exc:
        logging.getLogger(__name__).error("no index loaded at start: %s", exc)
    return app
