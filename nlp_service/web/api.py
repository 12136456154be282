"""The /v1 blueprint: thin views that parse input, call the library and format output."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, current_app, g, jsonify, request

from nlp_service.corpus import KINDS
from nlp_service.errors import DocumentNotFoundError
from nlp_service.matching import MAX_TOP_K, match_result_to_dict
from nlp_service.services import Services
from nlp_service.web.parsing import (choice_field, filters_field, int_field, json_object, optional_choice_field,
                                     query_filters, query_int, text_field)

logger = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/v1")


def services() -> Services:
    return current_app.extensions["nlp_service"]


@bp.before_request
def start_timer() -> None:
    g.started = time.perf_counter()


@bp.after_request
def log_request(response):
    elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
    # Never log request text: profiles can hold personal data.
    logger.info("%s %s -> %s in %.1f ms", request.method, request.path, response.status_code, elapsed)
    return response


def _body_and_text() -> tuple[dict, str]:
    settings = services().settings
    body = json_object(request, settings.max_body_bytes)
    return body, text_field(body, settings.max_text_chars)


@bp.post("/extract")
def extract():
    body, text = _body_and_text()
    kind = optional_choice_field(body, "kind", KINDS)
    return jsonify(services().tagger.tag(text, kind).to_dict())


@bp.post("/match")
def match():
    body, text = _body_and_text()
    kind = choice_field(body, "kind", KINDS)
    top_k = int_field(body, "top_k", 10, 1, MAX_TOP_K)
    svc = services()
    filters = filters_field(body, svc.needs.gazetteer)
    result = svc.matcher.match(svc.current_index(), text, kind, top_k, filters)
    return jsonify(match_result_to_dict(result, svc.taxonomy))


@bp.get("/documents/<document_id>")
def document(document_id: str):
    svc = services()
    index = svc.current_index()
    entry = index.documents.get(document_id)
    if entry is None:
        raise DocumentNotFoundError(f"no document {document_id!r} in index {index.version}")
    return jsonify({**entry.document.to_dict(), "lang": entry.lang, "tags": list(entry.tags), "needs": entry.needs,
                    "index": {"version": index.version}})


@bp.get("/documents/<document_id>/matches")
def document_matches(document_id: str):
    top_k = query_int(request.args, "top_k", 10, 1, MAX_TOP_K)
    svc = services()
    filters = query_filters(request.args, svc.needs.gazetteer)
    result = svc.matcher.match_document(svc.current_index(), document_id, top_k, filters)
    return jsonify(match_result_to_dict(result, svc.taxonomy))


@bp.get("/health")
def health():
    index = services().current_index()
    manifest = index.manifest
    by_kind = {k: len(index.vectors[k]) for k in KINDS}  # live: includes writes since the snapshot
    return jsonify(
        {
            "status": "ok",
            "index": {
                "version": index.version,
                "documents": sum(by_kind.values()),
                "by_kind": by_kind,
                "store_seq": getattr(index, "seq", None),
                "model": manifest.get("model", {}).get("name"),
                "taxonomy_version": manifest.get("taxonomy", {}).get("version"),
            },
        }
    )


@bp.get("/taxonomy")
def taxonomy():
    return jsonify(services().taxonomy.to_dict())
