"""Feedback: the SQLite store, POST /v1/feedback, and `nlp-service evaluate --feedback`."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest

from nlp_service.cli import main
from nlp_service.errors import InvalidInputError
from nlp_service.evaluation.feedback import summarise_feedback
from nlp_service.store.documents import StoreError
from nlp_service.store.feedback import SCHEMA_VERSION, FeedbackEntry, FeedbackStore, entry_from_mapping

TEXT = "需要一位会计帮我们做年度审计，电话 13800138000"


def _entry(**changes) -> FeedbackEntry:
    fields = {"query_text": TEXT, "kind": "request", "match_id": "vol-2001", "rank": 1, "band": "strong",
              "outcome": "accepted"}
    return FeedbackEntry.build(**{**fields, **changes})


def test_store_keeps_only_a_hash_of_the_text_in_wal_mode(tmp_path):
    store = FeedbackStore(tmp_path / "sub" / "feedback.sqlite")
    assert not store.path.exists()  # nothing touches the disk before the first call
    record = store.record(_entry(reason="  too   far  away "))
    assert record.id == 1 and record.entry.reason == "too far away"
    raw = store.path.read_bytes() + (store.path.with_name("feedback.sqlite-wal").read_bytes()
                                     if store.path.with_name("feedback.sqlite-wal").exists() else b"")
    assert "13800138000".encode() not in raw and TEXT.encode() not in raw
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["feedback"]
        (digest,) = conn.execute("SELECT query_sha256 FROM feedback").fetchone()
    assert digest == hashlib.sha256(TEXT.encode("utf-8")).hexdigest()
    # committed before record() returned: a new store (another process, say) sees it
    assert [r.entry.match_id for r in FeedbackStore(store.path).records()] == ["vol-2001"]


def test_store_refuses_a_foreign_or_newer_database(tmp_path):
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE documents (id TEXT)")
    with pytest.raises(StoreError, match="not a feedback store"):
        FeedbackStore(other).count()
    newer = tmp_path / "newer.sqlite"
    FeedbackStore(newer).count()
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="schema version"):
        FeedbackStore(newer).count()
    with pytest.raises(StoreError, match="no feedback database"):
        FeedbackStore(tmp_path / "missing.sqlite", create=False).records()


@pytest.mark.parametrize("changes,fragment", [
    ({"query_text": None}, "exactly one"),
    ({"query_id": "req-1"}, "exactly one"),
    ({"kind": "donor"}, "kind"),
    ({"rank": 0}, "rank"),
    ({"rank": True}, "rank"),
    ({"rank": "1"}, "rank"),
    ({"band": "great"}, "band"),
    ({"outcome": "maybe"}, "outcome"),
    ({"outcome": None}, "outcome"),
    ({"match_id": " "}, "match_id"),
    ({"match_id": 5}, "match_id"),
    ({"reason": "x" * 501}, "500"),
    ({"reason": 3}, "reason"),
    ({"query_text": "abc \ud800"}, "surrogate"),
])
def test_entries_are_checked(changes, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        _entry(**changes)


def test_unknown_fields_are_rejected():
    with pytest.raises(InvalidInputError, match="unknown field"):
        entry_from_mapping({"query_id": "req-1", "kind": "request", "match_id": "v", "rank": 1, "band": "weak",
                            "outcome": "declined", "text": "typo for query_text"})


def test_post_feedback_stores_and_acknowledges(client, services):
    before = services.feedback.count()
    body = {"query_text": TEXT, "kind": "request", "match_id": "vol-2001", "rank": 2, "band": "possible",
            "outcome": "declined", "reason": "只在周末有空"}
    response = client.post("/v1/feedback", json=body)
    assert response.status_code == 201, response.get_json()
    stored = response.get_json()["feedback"]
    assert stored["query_sha256"] == hashlib.sha256(TEXT.encode()).hexdigest()
    assert stored["reason"] == "只在周末有空" and "query_text" not in stored
    assert services.feedback.count() == before + 1


@pytest.mark.parametrize("body", [
    b"[]", b"null", b"", b"{", '{"query_id": "a", "kind": "request"}'.encode(),
    json.dumps({"query_id": "a", "kind": "request", "match_id": "v", "rank": 1, "band": "weak",
                "outcome": "accepted", "extra": 1}).encode(),
    json.dumps({"query_id": "a", "kind": "request", "match_id": "v", "rank": 10 ** 30, "band": "weak",
                "outcome": "accepted"}).encode(),
])
def test_post_feedback_rejects_bad_bodies_with_the_error_shape(client, body):
    response = client.post("/v1/feedback", data=body, content_type="application/json")
    assert response.status_code == 400
    assert set(response.get_json()["error"]) == {"code", "message"}


def test_summary_counts_latest_outcome_per_pair_by_rank_and_band(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite")
    for entry in [
        _entry(match_id="a", rank=1, band="strong", outcome="contacted"),
        _entry(match_id="a", rank=1, band="strong", outcome="accepted"),   # the pair's latest: accepted
        _entry(match_id="b", rank=2, band="possible", outcome="declined", reason="Too far"),
        _entry(match_id="c", rank=3, band="weak", outcome="declined", reason="too  far"),
        _entry(match_id="d", rank=1, band="strong", outcome="declined", reason="no time", query_id="req-9",
               query_text=None),
        _entry(match_id="e", rank=12, band="weak", outcome="contacted"),
    ]:
        store.record(entry)
    summary = summarise_feedback(store.records())
    assert summary["events"] == 6 and summary["pairs"] == 5
    assert summary["outcomes"] == {"contacted": 2, "accepted": 1, "declined": 3}
    assert summary["by_rank"]["1"] == {"pairs": 2, "accepted": 1, "declined": 1, "pending": 0, "acceptance_rate": 0.5}
    assert summary["by_rank"]["4"]["acceptance_rate"] is None
    assert summary["by_rank"][">10"]["pending"] == 1
    assert summary["by_band"]["weak"] == {"pairs": 2, "accepted": 0, "declined": 1, "pending": 1,
                                          "acceptance_rate": 0.0}
    assert summary["decline_reasons"][0] == {"reason": "too far", "count": 2}


def test_evaluate_feedback_cli(runner, tmp_path):
    db = tmp_path / "f.sqlite"
    store = FeedbackStore(db)
    store.record(_entry(outcome="accepted"))
    store.record(_entry(match_id="x", rank=2, band="weak", outcome="declined", reason="only weekends"))
    result = runner.invoke(main, ["evaluate", "--feedback", "--feedback-db", str(db), "--report-dir",
                                  str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert "2 entries on 2 (query, match) pairs" in result.output
    assert "only weekends" in result.output
    report = json.loads((tmp_path / "rep" / "feedback.json").read_text(encoding="utf-8"))
    assert report["by_rank"]["2"]["declined"] == 1
    missing = runner.invoke(main, ["evaluate", "--feedback", "--feedback-db", str(tmp_path / "none.sqlite")])
    assert missing.exit_code == 1 and "no feedback database" in missing.output

