"""The gunicorn entry point: configures logging for a worker, then builds the app in that worker."""

from __future__ import annotations

import logging
import os

from flask import Flask

from nlp_service.app import create_app


def served_app() -> Flask:
    """Called by gunicorn in each worker (never with --preload), so models load per worker."""
    logging.basicConfig(
        level=os.environ.get("NLP_SERVICE_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("jieba").setLevel(logging.WARNING)
    return create_app()
