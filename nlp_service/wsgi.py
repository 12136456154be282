"""The gunicorn entry point: configures logging for a worker, then builds the app in that worker."""

from __future__ import annotations

import logging
import os

from flask import Flask

from nlp_service.app import create_app
from nlp_service.errors import NlpServiceError


class BodyTimeout:
    """WSGI middleware: a read timeout on the client socket, so a body announced and never sent (or sent a
    byte at a time) frees its worker thread after ``seconds`` with a 408 instead of holding it for minutes."""

    def __init__(self, app, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    def __call__(self, environ, start_response):
        sock = environ.get("gunicorn.socket")
        if sock is not None:
            try:
                sock.settimeout(self.seconds)
            except OSError:
                pass
        return self.app(environ, start_response)


def served_app() -> Flask:
    """Called by gunicorn in each worker (never with --preload), so models load per worker."""
    logging.basicConfig(
        level=os.environ.get("NLP_SERVICE_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("jieba").setLevel(logging.WARNING)
    app = create_app()
    app.wsgi_app = BodyTimeout(app.wsgi_app, float(os.environ.get("NLP_SERVICE_BODY_TIMEOUT", "5")))  # type: ignore[method-assign]
    # Load the published index before this worker takes traffic (gunicorn calls this before accepting).
    services = app.extensions["nlp_service"]
    try:
        services.current_index()
    except NlpServiceError as exc:
        logging.getLogger(__name__).error("no index loaded at start: %s", exc)
    # Warm the models and open the store now, so the first request does not pay for it (~1.4 s).
    services.tagger.tag("warm-up 预热：会计 accountant", "volunteer")
    services.embedder.embed(["warm-up 预热"])
    _ = services.analyzer
    return app
