"""``GET /openapi.json``: an OpenAPI 3.0 document generated with apispec from the app's URL map.

Each route's operations come from YAML after a ``---`` line in its view's docstring or, failing that, from
``openapi_spec.OPERATIONS`` (keyed by endpoint). Path parameters come from the rule itself.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from apispec import APISpec
from apispec.yaml_utils import load_operations_from_docstring
from flask import Blueprint, Flask, current_app, jsonify
from werkzeug.routing import Rule

from nlp_service.web.openapi_spec import OPERATIONS, SCHEMAS, SECURITY_SCHEMES

logger = logging.getLogger(__name__)
bp = Blueprint("openapi", __name__)

SPEC_VERSION = "1.0.0"
_IGNORED_METHODS = {"HEAD", "OPTIONS"}
_CONVERTER = re.compile(r"<(?:(?P<converter>[a-zA-Z_][a-zA-Z0-9_]*)(?:\([^>]*\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")
_TYPES = {"int": {"type": "integer"}, "float": {"type": "number"}, "uuid": {"type": "string", "format": "uuid"}}


def documented_rules(app: Flask) -> list[Rule]:
    """Every rule the spec must describe: all but static files."""
    return [r for r in app.url_map.iter_rules() if r.endpoint != "static" and not r.endpoint.endswith(".static")]


def openapi_path(rule: Rule) -> tuple[str, list[dict[str, Any]]]:
    """``/v1/documents/<document_id>`` -> ``/v1/documents/{document_id}`` and its path parameters."""
    parameters = []
    for match in _CONVERTER.finditer(rule.rule):
        schema = dict(_TYPES.get(match.group("converter") or "", {"type": "string", "minLength": 1}))
        parameters.append({"name": match.group("name"), "in": "path", "required": True, "schema": schema})
    return _CONVERTER.sub(lambda m: "{" + m.group("name") + "}", rule.rule), parameters


def build_spec(app: Flask) -> dict[str, Any]:
    spec = APISpec(
        title="nlp-service", version=SPEC_VERSION, openapi_version="3.0.3",
        info={"description": "Bilingual (Chinese/English) skill tagging and explained matching of pro bono "
                             "volunteers and nonprofit requests. Every error has the shape "
                             '{"error": {"code", "message"}}.',
              "license": {"name": "Apache-2.0"}},
    )
    for name, schema in SCHEMAS.items():
        spec.components.schema(name, schema)
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for rule in sorted(documented_rules(app), key=lambda r: (r.rule, r.endpoint)):
        view = app.view_functions[rule.endpoint]
        described = load_operations_from_docstring(view.__doc__ or "") or OPERATIONS.get(rule.endpoint, {})
        operations = {m.lower(): described[m.lower()] for m in sorted(rule.methods - _IGNORED_METHODS)
                      if m.lower() in described}
        if not operations:
            logger.warning("route %s (%s) is not described in the OpenAPI spec", rule.rule, rule.endpoint)
            continue
        path, parameters = openapi_path(rule)
        spec.path(path=path, operations=operations, parameters=parameters or None)
    return spec.to_dict()


@bp.get("/openapi.json")
def openapi_json():
    spec = current_app.extensions.get("nlp_service.openapi")
    if spec is None:
        spec = current_app.extensions["nlp_service.openapi"] = build_spec(current_app)
    return jsonify(spec)
