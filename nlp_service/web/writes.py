"""Document writes and listing over HTTP: thin views over the document store and its writer.

``PUT /v1/documents/<id>``, ``DELETE /v1/documents/<id>`` and ``POST /v1/documents`` (bulk, ≤ 1,000) need
``Authorization: Bearer <token>`` with a token from ``NLP_SERVICE_WRITE_TOKENS`` or the file named by
``NLP_SERVICE_WRITE_TOKENS_FILE``: no header is 401, an unknown token 403. A write answers after its commit;
every worker sees it in matches within ``poll_seconds`` (0.25 s by default; documented bound 1 s).
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from nlp_service.corpus import KINDS, OPTIONAL_FIELDS, document_from_dict
from nlp_service.errors import (AuthenticationError, CorpusError, DocumentNotFoundError, InputTooLargeError,
                                InvalidInputError, PermissionDeniedError)
from nlp_service.services import Services
from nlp_service.web.parsing import json_object, query_int

bp = Blueprint("writes", __name__, url_prefix="/v1")
MAX_BULK = 1_000
MAX_ID_CHARS = 200


def services() -> Services:
    return current_app.extensions["nlp_service"]


def _authorise() -> None:
    header = request.headers.get("Authorization", "")
    if not header:
        raise AuthenticationError("writes need 'Authorization: Bearer <token>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
    tokens = services().settings.tokens()
    if not tokens:
        raise PermissionDeniedError("writes are disabled on this service: set NLP_SERVICE_WRITE_TOKENS")
    if not any(hmac.compare_digest(token.strip().encode("utf-8", "replace"), t.encode("utf-8")) for t in tokens):
        raise PermissionDeniedError("this token may not write documents")


def _document(raw: Any, where: str, doc_id: str | None = None):
    if not isinstance(raw, dict):
        raise InvalidInputError(f"{where} must be a JSON object")
    if doc_id is not None:
        if "id" in raw and raw["id"] != doc_id:
            raise InvalidInputError(f"{where}: 'id' in the body differs from the id in the path")
        raw = {**raw, "id": doc_id}
    unknown = set(raw) - {"id", "kind", "text", *OPTIONAL_FIELDS}
    if unknown:
        names = ", ".join(sorted(repr(k.encode("utf-8", "replace").decode("utf-8")) for k in unknown))
        raise InvalidInputError(f"{where}: unknown field(s) {names}; use kind, text, {', '.join(OPTIONAL_FIELDS)}")
    try:
        document = document_from_dict(raw, where)
    except CorpusError as exc:
        raise InvalidInputError(str(exc)) from exc
    limit = services().settings.max_text_chars
    if len(document.text) > limit:
        raise InputTooLargeError(f"{where}: 'text' has {len(document.text)} characters; the limit is {limit}")
    if len(document.id) > MAX_ID_CHARS or any(ch in document.id for ch in "/\n\r\t"):
        raise InvalidInputError(f"{where}: 'id' must be at most {MAX_ID_CHARS} characters without / or line breaks")
    return document


def _result(result) -> dict[str, Any]:
    return {"id": result.id, "status": result.status, "seq": result.seq}


@bp.put("/documents/<document_id>")
def put_document(document_id: str):
    _authorise()
    body = json_object(request, services().settings.max_body_bytes)
    document = _document(body, "body", document_id)
    result = services().writer().upsert([document])[0]
    return jsonify(_result(result)), 201 if result.status == "created" else 200


@bp.delete("/documents/<document_id>")
def delete_document(document_id: str):
    _authorise()
    if not services().writer().delete([document_id]):
        raise DocumentNotFoundError(f"no document {document_id!r} in the store")
    return jsonify({"id": document_id, "status": "deleted"})


@bp.post("/documents")
def bulk_upsert():
    _authorise()
    settings = services().settings
    body = json_object(request, settings.max_body_bytes * 8)
    rows = body.get("documents")
    if not isinstance(rows, list) or not rows:
        raise InvalidInputError("'documents' must be a non-empty array of documents")
    if len(rows) > MAX_BULK:
        raise InputTooLargeError(f"'documents' has {len(rows)} items; the limit is {MAX_BULK} per request")
    documents = [_document(raw, f"documents[{n}]") for n, raw in enumerate(rows)]
    if len({d.id for d in documents}) != len(documents):
        raise InvalidInputError("'documents' lists an id twice")
    results = services().writer().upsert(documents)
    return jsonify({"results": [_result(r) for r in results]})


@bp.get("/documents")
def list_documents():
    kind = request.args.get("kind")
    if kind is not None and kind not in KINDS:
        raise InvalidInputError("'kind' must be volunteer or request")
    tag = request.args.get("tag")
    if tag is not None and (not tag.strip() or len(tag) > 200):
        raise InvalidInputError("'tag' must be a concept id such as finance.bookkeeping")
    limit = query_int(request.args, "limit", 100, 1, 500)
    cursor = request.args.get("cursor")
    for name, value in (("tag", tag), ("cursor", cursor)):
        if value is not None:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidInputError(f"'{name}' contains an unpaired surrogate") from exc
    page = services().documents_store.list(kind=kind, concept_id=tag, cursor=cursor, limit=limit)
    return jsonify({
        "items": [{**item.document.to_dict(), "seq": item.seq, "updated_at": item.updated_at.isoformat()}
                  for item in page.items],
        "next_cursor": page.next_cursor,
    })
