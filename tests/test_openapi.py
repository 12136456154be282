"""/openapi.json is generated from the code and describes every route of the app."""

from __future__ import annotations

import pytest

from nlp_service.matching import BANDS, MAX_TOP_K
from nlp_service.store import feedback as feedback_store
from nlp_service.web.openapi import documented_rules, openapi_path
from nlp_service.web.openapi_spec import OPERATIONS, SCHEMAS

IGNORED = {"HEAD", "OPTIONS"}


@pytest.fixture(scope="module")
def spec(app):
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def test_every_rule_of_the_url_map_is_in_the_spec(app, spec):
    missing = []
    for rule in documented_rules(app):
        path, parameters = openapi_path(rule)
        for method in sorted(rule.methods - IGNORED):
            if method.lower() not in spec["paths"].get(path, {}):
                missing.append(f"{method} {rule.rule} ({rule.endpoint})")
        declared = {p["name"] for p in spec["paths"].get(path, {}).get("parameters", []) if p["in"] == "path"}
        assert declared == {p["name"] for p in parameters}, path
    assert not missing, "describe these routes in nlp_service/web/openapi_spec.py: " + "; ".join(missing)
    assert {"/", "/documents", "/status", "/v1/feedback", "/openapi.json"} <= set(spec["paths"])


def test_the_spec_lists_no_route_the_app_does_not_have(app, spec):
    known = {openapi_path(rule)[0] for rule in documented_rules(app)}
    assert set(spec["paths"]) <= known
    endpoints = {rule.endpoint for rule in documented_rules(app)}
    assert set(OPERATIONS) <= endpoints, set(OPERATIONS) - endpoints


def test_every_operation_documents_success_and_json_errors_use_the_one_shape(spec):
    assert spec["openapi"].startswith("3.0")
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            statuses = set(operation["responses"])
            assert any(s.startswith("2") for s in statuses), (method, path)
            for status, response in operation["responses"].items():
                schema = response["content"].get("application/json", {}).get("schema")
                if status.startswith(("4", "5")) and schema is not None:
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)
            if "requestBody" in operation and path.startswith("/v1/"):
                assert "400" in statuses, (method, path)


def test_path_templates_and_parameters_come_from_the_rules(app):
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == "api.document_matches")
    path, parameters = openapi_path(rule)
    assert path == "/v1/documents/{document_id}/matches"
    assert parameters == [{"name": "document_id", "in": "path", "required": True,
                           "schema": {"type": "string", "minLength": 1}}]


def test_spec_constants_agree_with_the_code():
    assert set(SCHEMAS["FeedbackRequest"]["properties"]) == set(feedback_store.FIELDS)
    assert feedback_store.BANDS == BANDS and feedback_store.MAX_RANK == MAX_TOP_K


def test_errors_have_the_one_shape_on_html_and_json_routes(client):
    for response in (client.get("/no/such/route"), client.post("/v1/feedback", data=b"[]"),
                     client.get("/v1/documents/nope")):
        body = response.get_json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
