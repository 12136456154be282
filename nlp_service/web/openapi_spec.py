"""The OpenAPI description of every route, keyed by Flask endpoint name (data only; see ``openapi.py``).

A view may instead describe itself with YAML after a ``---`` line in its docstring; that wins. A route
described nowhere is left out of /openapi.json, and tests/test_openapi.py fails naming it.
"""

from __future__ import annotations

from typing import Any

from nlp_service.matching import BANDS, MAX_TOP_K
from nlp_service.store.feedback import MAX_ID_CHARS, MAX_REASON_CHARS, OUTCOMES

KIND = {"type": "string", "enum": ["volunteer", "request"]}
ROLE = {"type": "string", "enum": ["offered", "needed", "declined", "context"]}
NULLABLE_STRING = {"type": "string", "nullable": True}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _span_value(**value: Any) -> dict[str, Any]:
    return {"type": "object", "nullable": True, "properties": {**value, "span": ref("Span")}}


SECURITY_SCHEMES = {"bearer": {"type": "http", "scheme": "bearer",
                               "description": "A token from NLP_SERVICE_WRITE_TOKENS(_FILE)"}}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object", "required": ["error"], "additionalProperties": False,
        "description": "The one error shape of every route.",
        "properties": {"error": {"type": "object", "required": ["code", "message"], "additionalProperties": False,
                                 "properties": {"code": {"type": "string", "example": "invalid_request"},
                                                "message": {"type": "string"}}}},
    },
    "Span": {"type": "object", "nullable": True, "required": ["start", "end", "surface"],
             "properties": {"start": {"type": "integer"}, "end": {"type": "integer"}, "surface": {"type": "string"}}},
    "Tag": {
        "type": "object",
        "required": ["concept_id", "label_en", "label_zh", "category", "start", "end", "surface", "method", "score",
                     "role"],
        "properties": {
            "concept_id": {"type": "string"}, "label_en": {"type": "string"}, "label_zh": {"type": "string"},
            "category": {"type": "string"}, "start": {"type": "integer", "minimum": 0},
            "end": {"type": "integer", "minimum": 0}, "surface": {"type": "string"},
            "method": {"type": "string", "enum": ["lexical", "semantic", "learned"]}, "score": {"type": "number"}, "role": ROLE,
        },
    },
    "Needs": {
        "type": "object", "nullable": True,
        "description": "Place and mode of work, hours, duration, dates, languages, causes and deliverable, each "
                       "with the span of text it was read from (null when the metadata said it).",
        "properties": {
            "location": _span_value(id={"type": "string"}, name_en={"type": "string"}, name_zh=NULLABLE_STRING,
                                    country={"type": "string"}),
            "mode": _span_value(value={"type": "string", "enum": ["remote", "on_site", "hybrid"]}),
            "hours_per_week": _span_value(value={"type": "number"}),
            "total_hours": _span_value(value={"type": "number"}),
            "duration": _span_value(value={"type": "number"}, unit={"type": "string"}),
            "deadline": _span_value(date={"type": "string"}),
            "dates": {"type": "array", "items": {"type": "object", "properties": {"date": {"type": "string"},
                                                                                   "span": ref("Span")}}},
            "languages": {"type": "array", "items": {"type": "object", "properties": {"code": {"type": "string"},
                                                                                       "span": ref("Span")}}},
            "causes": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"},
                                                                                    "span": ref("Span")}}},
            "deliverable": _span_value(),
        },
    },
    "TaggedText": {
        "type": "object", "required": ["lang", "kind", "tags"],
        "properties": {"lang": {"type": "string", "enum": ["zh", "en", "mixed"]},
                       "kind": {**KIND, "nullable": True}, "tags": {"type": "array", "items": ref("Tag")},
                       "needs": ref("Needs")},
    },
    "ConceptRef": {"type": "object", "required": ["concept_id", "label_en", "label_zh"],
                   "properties": {"concept_id": {"type": "string"}, "label_en": {"type": "string"},
                                  "label_zh": {"type": "string"}}},
    "SharedTag": {
        "allOf": [ref("ConceptRef"), {
            "type": "object", "required": ["query_evidence", "match_evidence"],
            "properties": {"query_evidence": {"type": "array", "items": {"type": "string"}},
                           "match_evidence": {"type": "array", "items": {"type": "string"}}}}],
    },
    "Match": {
        "type": "object",
        "required": ["id", "kind", "score", "band", "score_parts", "similarity", "skill_overlap", "title", "text",
                     "shared_tags", "missing_tags", "declined_conflicts", "needs_fit"],
        "properties": {
            "id": {"type": "string"}, "kind": KIND, "score": {"type": "number"},
            "band": {"type": "string", "enum": list(BANDS)},
            "score_parts": {"type": "object", "additionalProperties": {"type": "number"}},
            "similarity": {"type": "number"}, "skill_overlap": {"type": "number", "minimum": 0},
            "title": NULLABLE_STRING, "text": {"type": "string"},
            "shared_tags": {"type": "array", "items": ref("SharedTag")},
            "missing_tags": {"type": "array", "items": ref("ConceptRef")},
            "declined_conflicts": {"type": "array", "items": ref("ConceptRef")},
            "needs_fit": {"type": "object", "additionalProperties": {"type": "string"}},
            "needs": ref("Needs"), "meta": {"type": "object"},
        },
    },
    "IndexRef": {"type": "object", "required": ["version"], "properties": {"version": {"type": "string"}}},
    "MatchResult": {
        "type": "object", "required": ["query", "matches", "index"],
        "properties": {"query": ref("TaggedText"), "matches": {"type": "array", "items": ref("Match")},
                       "index": ref("IndexRef")},
    },
    "Document": {
        "type": "object", "required": ["id", "kind", "text", "lang", "tags", "index"],
        "description": "An indexed document with its metadata fields (title, location, remote, ...).",
        "properties": {"id": {"type": "string"}, "kind": KIND, "text": {"type": "string"},
                       "lang": {"type": "string", "enum": ["zh", "en", "mixed"]},
                       "tags": {"type": "array", "items": ref("Tag")}, "needs": ref("Needs"),
                       "index": ref("IndexRef")},
    },
    "Health": {
        "type": "object", "required": ["status", "index"],
        "properties": {"status": {"type": "string", "enum": ["ok"]}, "index": {
            "type": "object", "required": ["version", "documents", "by_kind", "model", "taxonomy_version"],
            "properties": {"version": {"type": "string"}, "documents": {"type": "integer"},
                           "by_kind": {"type": "object", "additionalProperties": {"type": "integer", "nullable": True}},
                           "model": NULLABLE_STRING, "taxonomy_version": NULLABLE_STRING}}},
    },
    "Taxonomy": {
        "type": "object", "required": ["taxonomy", "version", "attribution", "categories", "concepts"],
        "properties": {
            "taxonomy": {"type": "string"}, "version": {"type": "string"}, "attribution": {"type": "string"},
            "categories": {"type": "array", "items": {"type": "object", "required": ["id", "label_en", "label_zh"]}},
            "concepts": {"type": "array", "items": {
                "type": "object", "required": ["id", "category", "label_en", "label_zh", "alt_en", "alt_zh"],
                "properties": {"id": {"type": "string"}, "category": {"type": "string"},
                               "label_en": {"type": "string"}, "label_zh": {"type": "string"},
                               "alt_en": {"type": "array", "items": {"type": "string"}},
                               "alt_zh": {"type": "array", "items": {"type": "string"}},
                               "esco_uri": NULLABLE_STRING, "esco_label": NULLABLE_STRING}}},
        },
    },
    "ExtractRequest": {
        "type": "object", "required": ["text"],
        "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 20000,
                                "description": "A profile or request in Chinese, English or both"},
                       "kind": {**KIND, "nullable": True, "description": "Sets the base role; inferred when null"}},
    },
    "MatchRequest": {
        "type": "object", "required": ["text", "kind"],
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": 20000},
            "kind": {**KIND, "description": "What the text is; matches are documents of the other kind"},
            "top_k": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K, "default": 10},
            "filters": {"type": "object", "nullable": True, "additionalProperties": False, "properties": {
                "remote": {"type": "boolean", "nullable": True},
                "languages": {"type": "array", "items": {"type": "string", "minLength": 1},
                              "description": "ISO 639-1 codes or names: 'zh', 'EN', 'English', '英语'"},
                "location": {"type": "string", "minLength": 1, "maxLength": 100,
                             "description": "A place in either language ('Shanghai' finds 上海)"}}},
        },
    },
    "FeedbackRequest": {
        "type": "object", "required": ["kind", "match_id", "rank", "band", "outcome"], "additionalProperties": False,
        "description": "Give exactly one of query_text (only its SHA-256 is stored) or query_id.",
        "properties": {
            "query_text": {"type": "string", "minLength": 1, "maxLength": 20000},
            "query_id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS},
            "kind": {**KIND, "description": "The kind of the query"},
            "match_id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS},
            "rank": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K},
            "band": {"type": "string", "enum": list(BANDS)},
            "outcome": {"type": "string", "enum": list(OUTCOMES)},
            "reason": {"type": "string", "maxLength": MAX_REASON_CHARS, "nullable": True},
            "index_version": {"type": "string", "maxLength": 100},
        },
    },
    "FeedbackRecord": {
        "type": "object", "required": ["feedback"],
        "properties": {"feedback": {
            "type": "object", "required": ["id", "created_at", "kind", "match_id", "rank", "band", "outcome"],
            "properties": {"id": {"type": "integer"}, "created_at": {"type": "string"},
                           "query_sha256": {"type": "string", "nullable": True, "pattern": "^[0-9a-f]{64}$"},
                           "query_id": NULLABLE_STRING, "kind": KIND, "match_id": {"type": "string"},
                           "rank": {"type": "integer"}, "band": {"type": "string", "enum": list(BANDS)},
                           "outcome": {"type": "string", "enum": list(OUTCOMES)}, "reason": NULLABLE_STRING,
                           "index_version": NULLABLE_STRING}}},
    },
    "DocumentWrite": {
        "type": "object", "required": ["kind", "text"],
        "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 200,
                              "description": "Required in a bulk write; in PUT it must equal the path id if given"},
                       "kind": KIND, "text": {"type": "string", "minLength": 1, "maxLength": 20000},
                       "title": {"type": "string"}, "location": {"type": "string"}, "remote": {"type": "boolean"},
                       "hours_per_week": {"type": "number"}, "languages": {"type": "array", "items": {"type": "string"}},
                       "causes": {"type": "array", "items": {"type": "string"}}},
    },
    "WriteResult": {"type": "object", "required": ["id", "status", "seq"],
                    "properties": {"id": {"type": "string"},
                                   "status": {"type": "string", "enum": ["created", "updated", "unchanged"]},
                                   "seq": {"type": "integer"}}},
    "MatchForm": {
        "type": "object", "required": ["text", "kind"],
        "properties": {"text": {"type": "string"}, "kind": KIND,
                       "top_k": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K}},
    },
    "FeedbackForm": {
        "type": "object", "required": ["record"],
        "description": "The results page's one form: the query (text and kind, or query_id), the pressed "
                       "button record=<rank>, and per rank N match_id_N, band_N, outcome_N, reason_N.",
        "properties": {"text": {"type": "string"}, "kind": KIND, "query_id": {"type": "string"},
                       "top_k": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K},
                       "index_version": {"type": "string"}, "record": {"type": "integer", "minimum": 1},
                       "match_id_1": {"type": "string"}, "band_1": {"type": "string", "enum": list(BANDS)},
                       "outcome_1": {"type": "string", "enum": list(OUTCOMES)},
                       "reason_1": {"type": "string", "maxLength": MAX_REASON_CHARS}},
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(ref("Error"), description)


HTML_PAGE = {"type": "string", "description": "An HTML page"}


def _html(description: str, *, json_error: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {"text/html": {"schema": HTML_PAGE}}
    if json_error:  # a URL the router does not know gets the app's JSON error, whatever the page
        content["application/json"] = {"schema": ref("Error")}
    return {"description": description, "content": content}


BAD_INPUT = _error("Wrong input: the message names the field and what to send")
TOO_LARGE = _error("The body or the text is larger than the limit")
NO_INDEX = _error("No index is published, it is corrupted, or the model is unavailable")
NOT_FOUND = _error("No such document in the published index (or no such route)")
PAGE_STATUSES = {"400": _html("The same page with a message naming the problem"),
                 "413": _html("The same page: the form was too large"),
                 "503": _html("The same page: no index is published, or it cannot be read")}
LANG = {"name": "lang", "in": "query", "required": False, "schema": {"type": "string", "enum": ["zh", "en"]},
        "description": "UI language; remembered in a cookie"}
WRITE_ERRORS = {"400": BAD_INPUT, "401": _error("No or a malformed 'Authorization: Bearer <token>' header"),
                "403": _error("The token may not write, or writes are disabled"), "413": TOO_LARGE,
                "503": _error("The document store is unavailable")}
JSON_BODY_NOTE = ("The body is parsed by hand: anything but a JSON object, wrong types, unknown values and "
                  "invalid Unicode get 400 with the error shape, never 500.")

OPERATIONS: dict[str, dict[str, Any]] = {
    "api.extract": {"post": {
        "tags": ["tagging"], "summary": "Tag a text with taxonomy concepts, their roles, and its needs",
        "description": JSON_BODY_NOTE,
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref("ExtractRequest")}}},
        "responses": {"200": _json(ref("TaggedText"), "Tags with offsets into the text, and the needs found"),
                      "400": BAD_INPUT, "413": TOO_LARGE, "503": NO_INDEX},
    }},
    "api.match": {"post": {
        "tags": ["matching"], "summary": "Rank documents of the other kind for a text, with explanations",
        "description": JSON_BODY_NOTE,
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref("MatchRequest")}}},
        "responses": {"200": _json(ref("MatchResult"), "Ranked, explained matches"), "400": BAD_INPUT,
                      "413": TOO_LARGE, "503": NO_INDEX},
    }},
    "api.document": {"get": {
        "tags": ["documents"], "summary": "One indexed document with its tags and needs",
        "responses": {"200": _json(ref("Document"), "The document"), "404": NOT_FOUND, "503": NO_INDEX},
    }},
    "api.document_matches": {"get": {
        "tags": ["matching"], "summary": "Explained matches for a document already in the index",
        "parameters": [
            {"name": "top_k", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K}},
            {"name": "remote", "in": "query", "schema": {"type": "string", "enum": ["true", "false", "1", "0",
                                                                                    "yes", "no"]}},
            {"name": "languages", "in": "query", "schema": {"type": "string"},
             "description": "Comma-separated codes or names"},
            {"name": "language", "in": "query", "schema": {"type": "string"}},
            {"name": "location", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 100}},
        ],
        "responses": {"200": _json(ref("MatchResult"), "Ranked, explained matches"), "400": BAD_INPUT,
                      "404": NOT_FOUND, "503": NO_INDEX},
    }},
    "api.health": {"get": {
        "tags": ["service"], "summary": "Service and published-index status",
        "responses": {"200": _json(ref("Health"), "The service is up and an index is published"),
                      "503": NO_INDEX},
    }},
    "api.taxonomy": {"get": {
        "tags": ["tagging"], "summary": "The bilingual skill taxonomy (ESCO attribution included)",
        "responses": {"200": _json(ref("Taxonomy"), "Categories and concepts")},
    }},
    "writes.put_document": {"put": {
        "tags": ["documents"], "summary": "Create or replace one document in the store (needs a write token)",
        "security": [{"bearer": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref("DocumentWrite")}}},
        "responses": {"200": _json(ref("WriteResult"), "Replaced (or unchanged)"),
                      "201": _json(ref("WriteResult"), "Created"), **WRITE_ERRORS},
    }},
    "writes.delete_document": {"delete": {
        "tags": ["documents"], "summary": "Delete one document from the store (needs a write token)",
        "security": [{"bearer": []}],
        "responses": {"200": _json({"type": "object", "required": ["id", "status"],
                                    "properties": {"id": {"type": "string"},
                                                   "status": {"type": "string", "enum": ["deleted"]}}}, "Deleted"),
                      "404": NOT_FOUND, **WRITE_ERRORS},
    }},
    "writes.bulk_upsert": {"post": {
        "tags": ["documents"], "summary": "Create or replace up to 1,000 documents (needs a write token)",
        "security": [{"bearer": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["documents"],
            "properties": {"documents": {"type": "array", "minItems": 1, "maxItems": 1000,
                                         "items": ref("DocumentWrite")}}}}}},
        "responses": {"200": _json({"type": "object", "required": ["results"],
                                    "properties": {"results": {"type": "array", "items": ref("WriteResult")}}},
                                   "One result per document, in order"), **WRITE_ERRORS},
    }},
    "writes.list_documents": {"get": {
        "tags": ["documents"], "summary": "Page through the document store",
        "parameters": [
            {"name": "kind", "in": "query", "schema": KIND},
            {"name": "tag", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 200},
             "description": "A concept id: documents whose current content offers or needs it"},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
            {"name": "cursor", "in": "query", "schema": {"type": "string"},
             "description": "next_cursor of the previous page"}],
        "responses": {"200": _json({"type": "object", "required": ["items", "next_cursor"], "properties": {
            "items": {"type": "array", "items": {"type": "object", "required": ["id", "kind", "text", "seq"]}},
            "next_cursor": NULLABLE_STRING}}, "One page of documents"), "400": BAD_INPUT,
            "503": _error("The document store is unavailable")},
    }},
    "feedback.record_feedback": {"post": {
        "tags": ["feedback"], "summary": "Record a coordinator's outcome for one match",
        "description": "Stored durably before the 201 is sent; the query text is kept only as a SHA-256. "
                       + JSON_BODY_NOTE,
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref("FeedbackRequest")}}},
        "responses": {"201": _json(ref("FeedbackRecord"), "Stored"), "400": BAD_INPUT, "413": TOO_LARGE,
                      "503": _error("The feedback database cannot be opened or written")},
    }},
    "openapi.openapi_json": {"get": {
        "tags": ["service"], "summary": "This description, generated from the code",
        "responses": {"200": _json({"type": "object", "required": ["openapi", "paths"]}, "OpenAPI 3.0 document")},
    }},
    "pages.index": {"get": {
        "tags": ["pages"], "summary": "Coordinator page: paste a text to tag and match", "parameters": [LANG],
        "responses": {"200": _html("The form")},
    }},
    "pages.analyse": {"post": {
        "tags": ["pages"], "summary": "Coordinator page: the text highlighted by role, its needs and matches",
        "parameters": [LANG],
        "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {
            "schema": ref("MatchForm")}}},
        "responses": {"200": _html("Tags, needs and explained matches with feedback forms"), **PAGE_STATUSES},
    }},
    "pages.feedback": {"post": {
        "tags": ["pages", "feedback"], "summary": "Coordinator page: record feedback from a results page",
        "parameters": [LANG],
        "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {
            "schema": ref("FeedbackForm")}}},
        "responses": {"200": _html("The results again, the feedback recorded"),
                      "404": _html("The query document is not in the index"), **PAGE_STATUSES},
    }},
    "pages.documents": {"get": {
        "tags": ["pages"], "summary": "Coordinator page: browse and search indexed documents",
        "parameters": [
            {"name": "kind", "in": "query", "schema": {"type": "string", "enum": ["", "volunteer", "request"]}},
            {"name": "concept", "in": "query", "schema": {"type": "string", "maxLength": 200},
             "description": "A concept id or one of its labels; documents that offer or need it"},
            {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200},
             "description": "Case-insensitive search in id, title and text"},
            {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}}, LANG],
        "responses": {"200": _html("One page of documents"), **PAGE_STATUSES},
    }},
    "pages.document": {"get": {
        "tags": ["pages"], "summary": "Coordinator page: one document, its tags and needs", "parameters": [LANG],
        "responses": {"200": _html("The document"), "404": _html("No such document", json_error=True),
                      "503": PAGE_STATUSES["503"]},
    }},
    "pages.document_matches": {"get": {
        "tags": ["pages"], "summary": "Coordinator page: a document's explained matches",
        "parameters": [{"name": "top_k", "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K}}, LANG],
        "responses": {"200": _html("Explained matches with feedback forms"),
                      "404": _html("No such document", json_error=True), **PAGE_STATUSES},
    }},
    "pages.status": {"get": {
        "tags": ["pages"], "summary": "Coordinator page: the published index and the versions kept",
        "parameters": [LANG], "responses": {"200": _html("Index status"), "503": PAGE_STATUSES["503"]},
    }},
}
