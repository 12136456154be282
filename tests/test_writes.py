"""Document writes over HTTP, the live index and incremental rebuilds, on the real store, model and faiss."""

from __future__ import annotations

import json
import threading
import time

import pytest

from nlp_service.corpus import Document, load_corpus
from nlp_service.errors import NlpServiceError
from nlp_service.services import Services

TOKEN = "test-token-1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROFILE = {"kind": "volunteer", "title": "Test: 注册会计师", "location": "上海", "remote": False,
           "text": "注册会计师，十年审计经验，可以帮公益机构做账、准备年度审计。上海，线下。"}


@pytest.fixture()
def writable(services, monkeypatch):
    """The session services with a write token configured; removes what the test wrote."""
    monkeypatch.setattr(services, "settings", services.settings.with_overrides(write_tokens=TOKEN))
    written: list[str] = []
    yield written
    services.writer().delete(written)
    services.current_index().refresh(force=True)


def _visible(services) -> None:
    """Wait out the poll interval, as a second request would."""
    time.sleep(services.settings.poll_seconds + 0.05)


def test_writes_need_a_token(client, writable):
    assert client.put("/v1/documents/t-1", json=PROFILE).status_code == 401
    assert client.put("/v1/documents/t-1", json=PROFILE).get_json()["error"]["code"] == "unauthorized"
    wrong = client.put("/v1/documents/t-1", json=PROFILE, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.get_json()["error"]["code"] == "forbidden"
    assert client.delete("/v1/documents/t-1").status_code == 401
    assert client.post("/v1/documents", json={"documents": [PROFILE]}).status_code == 401


def test_writes_are_refused_when_no_token_is_configured(client):
    response = client.put("/v1/documents/t-1", json=PROFILE, headers=AUTH)
    assert response.status_code == 403 and "NLP_SERVICE_WRITE_TOKENS" in response.get_json()["error"]["message"]


def test_put_is_matched_without_a_rebuild_and_delete_removes_it(client, services, writable):
    writable.append("t-acct")
    version = client.get("/v1/health").get_json()["index"]["version"]
    created = client.put("/v1/documents/t-acct", json=PROFILE, headers=AUTH)
    assert created.status_code == 201 and created.get_json()["status"] == "created"
    again = client.put("/v1/documents/t-acct", json=PROFILE, headers=AUTH)
    assert again.status_code == 200 and again.get_json()["status"] == "unchanged"
    _visible(services)
    request = {"text": "需要一位会计帮忙做账、准备年度审计，上海线下。", "kind": "request", "top_k": 5}
    body = client.post("/v1/match", json=request).get_json()
    assert body["index"]["version"] == version, "no rebuild happened"
    assert "t-acct" in [m["id"] for m in body["matches"]]
    document = client.get("/v1/documents/t-acct").get_json()
    assert document["needs"]["location"]["name_en"] == "Shanghai"
    assert {t["role"] for t in document["tags"]} <= {"offered", "context", "declined"}

    assert client.delete("/v1/documents/t-acct", headers=AUTH).get_json()["status"] == "deleted"
    _visible(services)
    assert "t-acct" not in [m["id"] for m in client.post("/v1/match", json=request).get_json()["matches"]]
    assert client.get("/v1/documents/t-acct").status_code == 404
    assert client.delete("/v1/documents/t-acct", headers=AUTH).status_code == 404


def test_update_changes_what_matches(client, services, writable):
    writable.append("t-upd")
    client.put("/v1/documents/t-upd", json=PROFILE, headers=AUTH)
    changed = {**PROFILE, "title": "Test: 视频剪辑", "text": "会用剪映和Premiere剪视频，做过公益纪录片，远程。"}
    assert client.put("/v1/documents/t-upd", json=changed, headers=AUTH).get_json()["status"] == "updated"
    _visible(services)
    tags = {t["concept_id"] for t in client.get("/v1/documents/t-upd").get_json()["tags"]}
    assert "media.video_editing" in tags and "finance.audit" not in tags


@pytest.mark.parametrize("body,status,fragment", [
    ({"kind": "volunteer"}, 400, "text"),
    ({**PROFILE, "kind": "sponsor"}, 400, "kind"),
    ({**PROFILE, "salary": 3}, 400, "salary"),
    ({**PROFILE, "id": "other"}, 400, "differs"),
    ({**PROFILE, "text": "\ud800"}, 400, "surrogate"),
    ({**PROFILE, "text": "x" * 20_001}, 413, "limit"),
    ([PROFILE], 400, "object"),
])
def test_bad_documents_are_4xx(client, writable, body, status, fragment):
    # json.dumps escapes the lone surrogate as \\ud800, as a real client would send it
    response = client.put("/v1/documents/t-bad", data=json.dumps(body), content_type="application/json", headers=AUTH)
    assert response.status_code == status
    assert fragment in response.get_json()["error"]["message"]


def test_bulk_upsert_and_paginated_listing(client, services, writable):
    docs = [{**PROFILE, "id": f"t-bulk-{n:02d}", "text": PROFILE["text"] + f" 编号{n}"} for n in range(12)]
    writable.extend(d["id"] for d in docs)
    body = client.post("/v1/documents", json={"documents": docs}, headers=AUTH).get_json()
    assert [r["status"] for r in body["results"]] == ["created"] * 12
    seen: list[str] = []
    cursor = None
    while True:
        query = "/v1/documents?kind=volunteer&tag=finance.audit&limit=5" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(query).get_json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert {d["id"] for d in docs} <= set(seen)
    assert client.get("/v1/documents?cursor=garbage").status_code == 400
    assert client.get("/v1/documents?kind=donor").status_code == 400
    too_many = client.post("/v1/documents", json={"documents": [PROFILE] * 1001}, headers=AUTH)
    assert too_many.status_code == 413
    twice = client.post("/v1/documents", json={"documents": [docs[0], docs[0]]}, headers=AUTH)
    assert twice.status_code == 400


def test_rebuild_after_one_percent_changed_analyses_only_the_changed(services, tmp_path):
    settings = services.settings.with_overrides(index_dir=tmp_path / "idx")
    svc = Services(settings, embedder=services.embedder, taxonomy=services.taxonomy)
    corpus = load_corpus(settings.corpus_dir)
    analysed: list[int] = []
    svc.builder().build(corpus, analysis_progress=analysed.append)
    assert sum(analysed) == len(corpus)
    changed = [Document(d.id, d.kind, d.text + " 可远程。", d.meta) for d in corpus[:3]]  # 1% of 312
    analysed.clear()
    version = svc.builder().build(changed + corpus[3:], analysis_progress=analysed.append)
    assert sum(analysed) == 3
    index = svc.current_index()
    assert index.version == version and index.document_count == len(corpus)


def test_one_rebuild_at_a_time(services, tmp_path):
    settings = services.settings.with_overrides(index_dir=tmp_path / "idx")
    svc = Services(settings, embedder=services.embedder, taxonomy=services.taxonomy)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with svc.store.rebuild_lock():
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(10)
    try:
        with pytest.raises(NlpServiceError, match="another rebuild"):
            svc.builder().build(load_corpus(settings.corpus_dir)[:5])
        with pytest.raises(NlpServiceError, match="another rebuild"):
            svc.store.publish_existing("anything")
    finally:
        release.set()
        thread.join()


def test_a_broken_new_version_falls_back_to_the_previous_good_one(services, tmp_path):
    from nlp_service.app import create_app

    settings = services.settings.with_overrides(index_dir=tmp_path / "idx")
    svc = Services(settings, embedder=services.embedder, taxonomy=services.taxonomy)
    corpus = load_corpus(settings.corpus_dir)[:20]
    good = svc.builder().build(corpus)
    bad = svc.builder().build(corpus)
    (svc.store.version_path(bad) / "manifest.json").write_text("{not json", encoding="utf-8")
    fresh = create_app(services=Services(settings, embedder=services.embedder, taxonomy=services.taxonomy))
    health = fresh.test_client().get("/v1/health")
    assert health.status_code == 200 and health.get_json()["index"]["version"] == good
    # a worker already serving the good version keeps it when the pointer moves to a broken one
    assert svc.current_index().version in (good, bad)
    svc.store._publish(bad)
    assert svc.current_index().version == good


def test_parallel_analysis_equals_serial(services, tmp_path):
    """`rebuild --workers 2`: two spawned processes analyse what one would, with the same tags and vectors."""
    import numpy as np

    from nlp_service.index.live import ParallelAnalysis

    docs = [Document(f"p-{n}", d.kind, d.text + f" ({n})", d.meta) for n, d in enumerate(load_corpus(services.settings.corpus_dir)[:12])]
    serial = services.analyzer.analyse(docs)
    pool = ParallelAnalysis(services.settings, 2)
    try:
        parallel = [a for batch in pool.map_batches([docs[:6], docs[6:]]) for a in batch]
    finally:
        pool.close()
    assert [a.tags for a in parallel] == [a.tags for a in serial]
    assert [a.needs for a in parallel] == [a.needs for a in serial]
    assert np.allclose(np.vstack([a.vector for a in parallel]), np.vstack([a.vector for a in serial]), atol=1e-5)


def test_a_code_upgrade_before_a_rebuild_keeps_the_snapshot_tags(services, tmp_path):
    """Analyses are keyed by the extraction-code version; a service whose version differs (here: another
    semantic threshold) still reads the tags the published snapshot was built with."""
    settings = services.settings.with_overrides(index_dir=tmp_path / "idx")
    svc = Services(settings, embedder=services.embedder, taxonomy=services.taxonomy)
    corpus = load_corpus(settings.corpus_dir)[:10]
    svc.builder().build(corpus)
    upgraded = Services(settings.with_overrides(semantic_threshold_zh=0.66), embedder=services.embedder,
                        taxonomy=services.taxonomy)
    assert upgraded.analysis_version != svc.analysis_version
    tagged = next(d.id for d in corpus if svc.current_index().documents[d.id].tags)
    entry = upgraded.current_index().documents[tagged]
    assert entry.tags and entry.tags == svc.current_index().documents[tagged].tags
