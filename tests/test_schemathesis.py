"""Property-based run of schemathesis over every route of /openapi.json, against the real WSGI app.

Checks: no 5xx, documented status codes and content types, and responses that conform to their schemas
(every error to the one error shape). Bounded: a few generated examples per operation plus schemathesis'
coverage cases, so the whole file runs in well under 90 s on 2 cores.

The document-write routes run a second time with a write token, against an app with its own store and
index (a slice of the corpus, the session's model), so random writes never reach the shared index.

The schema is read from ``/openapi.json`` of a routing-only app (``create_app`` with a stand-in services
object: building the description needs the URL map, not the models), because schemathesis' lazy
``from_fixture`` loader does not run under pytest 9.2. Every request goes to the real app, with the real
model and index, from the session ``app`` fixture.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from nlp_service.app import create_app
from nlp_service.corpus import load_corpus
from nlp_service.services import Services
from nlp_service.settings import Settings

MAX_EXAMPLES = 12
WRITE_TOKEN = "schemathesis-write-token"
CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance,
          schemathesis.checks.content_type_conformance, schemathesis.checks.response_schema_conformance]

schema = schemathesis.openapi.from_wsgi("/openapi.json", create_app(services=SimpleNamespace(settings=Settings())))


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_every_route_conforms_and_never_fails(case, app):
    case.call_and_validate(app=app, checks=CHECKS)


@pytest.fixture(scope="module")
def writable_app(services, tmp_path_factory):
    work = tmp_path_factory.mktemp("writable")
    own = services.settings.with_overrides(index_dir=work / "index", feedback_db=work / "feedback.sqlite",
                                           write_tokens=WRITE_TOKEN)
    svc = Services(own, embedder=services.embedder, taxonomy=services.taxonomy)
    documents = load_corpus(own.corpus_dir)
    svc.builder().build([d for d in documents if d.kind == "volunteer"][:12]
                        + [d for d in documents if d.kind == "request"][:12])
    return create_app(services=svc)


@schema.include(path_regex=r"^/v1/documents").parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_document_routes_with_a_write_token(case, writable_app):
    case.call_and_validate(app=writable_app, headers={"Authorization": f"Bearer {WRITE_TOKEN}"}, checks=CHECKS)
