"""Every endpoint end to end through Flask's client, including bad input and a missing index."""

from __future__ import annotations

import json

import pytest

from nlp_service.app import create_app
from nlp_service.services import Services

POST_ENDPOINTS = ["/v1/extract", "/v1/match"]


def test_health_reports_the_published_index(client, services):
    response = client.get("/v1/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["index"]["documents"] >= 300
    assert body["index"]["model"] == "use-multilingual-v3"
    assert body["index"]["taxonomy_version"] == services.taxonomy.full_version
    assert body["index"]["version"] == services.store.current_version()


def test_taxonomy_lists_concepts(client, taxonomy):
    body = client.get("/v1/taxonomy").get_json()
    assert len(body["concepts"]) == len(taxonomy)
    assert {c["category"] for c in body["concepts"]} == set(taxonomy.categories)
    assert "ESCO classification of the European Commission" in body["attribution"]


def test_extract_returns_tags_with_exact_offsets(client):
    text = "本人是执业律师，擅长劳动法，也能帮忙审合同。I also do bookkeeping in QuickBooks."
    response = client.post("/v1/extract", json={"text": text})
    assert response.status_code == 200
    body = response.get_json()
    assert body["lang"] == "mixed"
    ids = {t["concept_id"] for t in body["tags"]}
    assert {"legal.labor_law", "legal.contract_review", "finance.bookkeeping"} <= ids
    for tag in body["tags"]:
        assert text[tag["start"] : tag["end"]] == tag["surface"]
        assert tag["method"] in {"lexical", "semantic"}


def test_match_returns_other_kind_with_shared_tags(client):
    text = "我们是一家社区食物银行，需要志愿者帮忙做账、整理财务报表，准备年度审计。"
    response = client.post("/v1/match", json={"text": text, "kind": "request", "top_k": 5})
    assert response.status_code == 200
    body = response.get_json()
    assert body["query"]["lang"] == "zh"
    assert len(body["matches"]) == 5
    assert all(m["kind"] == "volunteer" for m in body["matches"])
    scores = [m["score"] for m in body["matches"]]
    assert scores == sorted(scores, reverse=True)
    assert any(m["shared_tags"] for m in body["matches"])
    for match in body["matches"]:
        for shared in match["shared_tags"]:
            assert set(shared) == {"concept_id", "label_en", "label_zh", "query_evidence", "match_evidence"}
            assert shared["query_evidence"] and shared["match_evidence"]
    assert body["index"]["version"]


def test_match_from_volunteer_returns_requests(client):
    body = client.post(
        "/v1/match", json={"text": "UX designer, Figma, accessibility audits", "kind": "volunteer"}
    ).get_json()
    assert len(body["matches"]) == 10
    assert all(m["kind"] == "request" for m in body["matches"])


DEEP = "[" * 5000 + "]" * 5000
BAD_BODIES = [
    ("not json", b"this is not json", "application/json"),
    ("array", b'["text"]', "application/json"),
    ("null", b"null", "application/json"),
    ("number", b"42", "application/json"),
    ("empty body", b"", "application/json"),
    ("invalid utf-8", b'{"text": "\xff\xfe"}', "application/json"),
    ("text is a number", b'{"text": 5, "kind": "request"}', "application/json"),
    ("text is a list", b'{"text": ["a"], "kind": "request"}', "application/json"),
    ("text is null", b'{"text": null, "kind": "request"}', "application/json"),
    ("text missing", b'{"kind": "request"}', "application/json"),
    ("empty text", b'{"text": "", "kind": "request"}', "application/json"),
    ("whitespace text", b'{"text": " \\n\\t\\u3000 ", "kind": "request"}', "application/json"),
    ("lone surrogate", b'{"text": "abc \\ud800 def", "kind": "request"}', "application/json"),
    ("deeply nested", ('{"text": ' + DEEP + "}").encode(), "application/json"),
    ("deeply nested object", ('{"a":' * 3000 + "1" + "}" * 3000).encode(), "application/json"),
    ("form encoded", b"text=hello", "application/x-www-form-urlencoded"),
]


@pytest.mark.parametrize("endpoint", POST_ENDPOINTS)
@pytest.mark.parametrize("name,body,content_type", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies_get_a_4xx_json_error(client, endpoint, name, body, content_type):
    response = client.post(endpoint, data=body, content_type=content_type)
    assert 400 <= response.status_code < 500, response.data[:200]
    error = response.get_json()["error"]
    assert error["code"] and error["message"]


@pytest.mark.parametrize(
    "payload,fragment",
    [
        ({"text": "法律援助", "kind": "donor"}, "kind"),
        ({"text": "法律援助", "kind": None}, "kind"),
        ({"text": "法律援助"}, "kind"),
        ({"text": "法律援助", "kind": "request", "top_k": 0}, "top_k"),
        ({"text": "法律援助", "kind": "request", "top_k": 51}, "top_k"),
        ({"text": "法律援助", "kind": "request", "top_k": "5"}, "top_k"),
        ({"text": "法律援助", "kind": "request", "top_k": True}, "top_k"),
        ({"text": "法律援助", "kind": "request", "top_k": 2.5}, "top_k"),
    ],
)
def test_match_rejects_wrong_fields(client, payload, fragment):
    response = client.post("/v1/match", json=payload)
    assert response.status_code == 400
    assert fragment in response.get_json()["error"]["message"]


@pytest.mark.parametrize("endpoint", POST_ENDPOINTS)
def test_oversized_body_is_413(client, endpoint, services):
    big = json.dumps({"text": "志愿者" * (services.settings.max_body_bytes // 3 + 10), "kind": "request"})
    response = client.post(endpoint, data=big, content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("endpoint", POST_ENDPOINTS)
def test_text_over_the_character_limit_is_413(client, endpoint, services):
    text = "a " * (services.settings.max_text_chars // 2 + 1)
    response = client.post(endpoint, json={"text": text, "kind": "request"})
    assert response.status_code == 413


@pytest.mark.parametrize("method,path", [("get", "/v1/nothing"), ("get", "/v1"), ("post", "/v1/unknown")])
def test_unknown_routes_are_json_404(client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "method,path", [("get", "/v1/extract"), ("get", "/v1/match"), ("post", "/v1/health"), ("delete", "/v1/taxonomy")]
)
def test_wrong_methods_are_json_405(client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


@pytest.fixture(scope="module")
def empty_client(services, tmp_path_factory):
    """A service whose index folder has nothing published."""
    settings = services.settings.with_overrides(index_dir=tmp_path_factory.mktemp("empty-index"))
    svc = Services(settings, embedder=services.embedder, taxonomy=services.taxonomy)
    return create_app(services=svc).test_client()


def test_no_index_is_503_for_match_and_health(empty_client):
    for response in (
        empty_client.post("/v1/match", json={"text": "需要会计", "kind": "request"}),
        empty_client.get("/v1/health"),
    ):
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "index_unavailable"


def test_extract_works_without_an_index(empty_client):
    response = empty_client.post("/v1/extract", json={"text": "会用Photoshop修图"})
    assert response.status_code == 200


def test_corrupted_index_is_503_not_500(services, tmp_path):
    from nlp_service.corpus import load_corpus

    settings = services.settings.with_overrides(index_dir=tmp_path / "idx")
    svc = Services(settings, embedder=services.embedder, taxonomy=services.taxonomy)
    version = svc.builder().build(load_corpus(settings.corpus_dir)[:10])
    target = svc.store.version_path(version) / "vectors" / "volunteer.id_bytes.npy"
    target.write_bytes(target.read_bytes().replace(b"vol", b"vok", 1))
    client = create_app(services=Services(settings, embedder=services.embedder, taxonomy=services.taxonomy)).test_client()
    response = client.post("/v1/match", json={"text": "需要会计", "kind": "request"})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "index_corrupted"
    assert "checksum" in response.get_json()["error"]["message"]


def _random_json(rng, depth=0):
    kind = rng.integers(0, 8 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return bool(rng.integers(0, 2))
    if kind == 2:
        return int(rng.integers(-10**6, 10**6))
    if kind == 3:
        return float(rng.normal()) * 1e3
    if kind == 4:
        alphabet = ["a", "Z", "志", "愿", " ", "\n", "\u3000", "\ud83d\ude00", "\\", '"', "\x00", "é", "ل"]
        return "".join(rng.choice(alphabet, size=int(rng.integers(0, 12))))
    if kind == 5:
        return [_random_json(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))]
    keys = ["text", "kind", "top_k", "x"]
    return {str(rng.choice(keys)): _random_json(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))}


@pytest.mark.parametrize("endpoint", POST_ENDPOINTS)
def test_random_bodies_never_cause_a_5xx(client, endpoint):
    """A seeded fuzz run: random JSON values and random bytes; every answer is JSON and below 500."""
    import numpy as np

    rng = np.random.default_rng(20261127)
    for round_number in range(150):
        if round_number % 5 == 0:
            body = bytes(rng.integers(0, 256, size=int(rng.integers(0, 64)), dtype=np.uint8))
        else:
            value = _random_json(rng)
            if isinstance(value, dict) and rng.random() < 0.5:
                value["text"] = _random_json(rng) if rng.random() < 0.3 else "需要会计 accountant"
                value["kind"] = str(rng.choice(["request", "volunteer", "other"]))
            body = json.dumps(value, ensure_ascii=bool(rng.integers(0, 2))).encode("utf-8", "surrogatepass")
        response = client.post(endpoint, data=body, content_type="application/json")
        assert response.status_code < 500, (body[:100], response.data[:200])
        assert response.is_json


def test_match_filters_narrow_the_results(client):
    text = "We need a volunteer accountant to review our books"
    remote = client.post("/v1/match", json={"text": text, "kind": "request", "top_k": 20,
                                            "filters": {"remote": True}}).get_json()
    assert remote["matches"] and all(m["meta"]["remote"] is True for m in remote["matches"])
    beijing = client.post("/v1/match", json={"text": text, "kind": "request", "top_k": 5,
                                             "filters": {"location": "北京", "languages": ["zh"]}}).get_json()
    assert beijing["matches"]
    for match in beijing["matches"]:
        assert "北京" in match["meta"]["location"] and "zh" in match["meta"]["languages"]
    none = client.post("/v1/match", json={"text": text, "kind": "request", "filters": {"location": "Atlantis"}})
    assert none.status_code == 200 and none.get_json()["matches"] == []


@pytest.mark.parametrize(
    "filters,fragment",
    [("remote", "'filters' must be an object"), ({"remote": "yes"}, "filters.remote"),
     ({"languages": "zh"}, "filters.languages"), ({"languages": [1]}, "filters.languages"),
     ({"location": ""}, "filters.location"), ({"city": "北京"}, "unknown filter")],
)
def test_bad_filters_are_400(client, filters, fragment):
    response = client.post("/v1/match", json={"text": "会计", "kind": "request", "filters": filters})
    assert response.status_code == 400 and fragment in response.get_json()["error"]["message"]


def test_document_and_its_matches(client, services):
    doc = client.get("/v1/documents/req-2001")
    assert doc.status_code == 200
    body = doc.get_json()
    assert body["kind"] == "request" and body["text"] and body["index"]["version"]
    for tag in body["tags"]:
        assert body["text"][tag["start"] : tag["end"]] == tag["surface"]
    matches = client.get("/v1/documents/req-2001/matches?top_k=5").get_json()
    assert len(matches["matches"]) == 5 and all(m["kind"] == "volunteer" for m in matches["matches"])
    assert matches["query"]["tags"] == body["tags"]
    volunteer = client.get("/v1/documents/vol-2001/matches").get_json()
    assert len(volunteer["matches"]) == 10 and all(m["kind"] == "request" for m in volunteer["matches"])


@pytest.mark.parametrize(
    "path,status,code",
    [("/v1/documents/nope", 404, "document_not_found"), ("/v1/documents/nope/matches", 404, "document_not_found"),
     ("/v1/documents/req-2001/matches?top_k=0", 400, "invalid_request"),
     ("/v1/documents/req-2001/matches?top_k=abc", 400, "invalid_request"),
     ("/v1/documents/req-2001/matches?top_k=51", 400, "invalid_request")],
)
def test_document_errors(client, path, status, code):
    response = client.get(path)
    assert response.status_code == status and response.get_json()["error"]["code"] == code


def test_a_repeated_query_reuses_its_analysis_and_still_ranks_on_the_live_index(services):
    """The second identical query is not tagged or embedded again (the cache counts a hit), and gives
    the same explained matches; a different kind is a different entry."""
    index = services.current_index()
    text = "我们需要一位会计帮忙做年度财务审计，不需要设计师。"
    cache = services.matcher.query_analyses
    before = (cache.hits, cache.misses)
    first = services.matcher.match(index, text, "request", top_k=5)
    second = services.matcher.match(index, text, "request", top_k=5)
    assert (cache.hits - before[0], cache.misses - before[1]) == (1, 1)
    assert [(m.id, m.score, m.shared_concepts, m.band) for m in first.matches] == \
        [(m.id, m.score, m.shared_concepts, m.band) for m in second.matches]
    assert first.query is second.query
    services.matcher.match(index, text, "volunteer", top_k=5)
    assert cache.misses - before[1] == 2
