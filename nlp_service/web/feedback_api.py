"""``POST /v1/feedback``: a coordinator's outcome for one match, stored in the feedback database."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request

from nlp_service.services import Services
from nlp_service.store.feedback import entry_from_mapping
from nlp_service.web.parsing import json_object

logger = logging.getLogger(__name__)
bp = Blueprint("feedback", __name__, url_prefix="/v1")


@bp.post("/feedback")
def record_feedback():
    svc: Services = current_app.extensions["nlp_service"]
    body = json_object(request, svc.settings.max_body_bytes)
    entry = entry_from_mapping(body, max_query_chars=svc.settings.max_text_chars)
    record = svc.feedback.record(entry)  # returns after COMMIT: the 201 means the entry is on disk
    return jsonify({"feedback": record.to_dict()}), 201


@bp.after_request
def log_request(response):
    logger.info("%s %s -> %s", request.method, request.path, response.status_code)  # never the body
    return response
