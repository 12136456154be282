"""The nlp-service command through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlp_service.cli import main

COMMANDS = [[], ["rebuild"], ["extract"], ["match"], ["serve"], ["prepare-model"], ["taxonomy", "validate"],
            ["versions"], ["evaluate"], ["calibrate"], ["benchmark"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "main")
def test_every_command_has_help_with_an_example(runner, command):
    result = runner.invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output


def test_taxonomy_validate_passes_on_shipped_taxonomy(runner, settings):
    result = runner.invoke(main, ["taxonomy", "validate", "--dir", str(settings.taxonomy_dir)])
    assert result.exit_code == 0, result.output
    assert "ESCO classification of the European Commission" in result.output


def test_taxonomy_validate_rejects_a_broken_taxonomy(runner, tmp_path, settings):
    (tmp_path / "concepts").mkdir()
    (tmp_path / "categories.json").write_text(
        (settings.taxonomy_dir / "categories.json").read_text(encoding="utf-8"), encoding="utf-8"
    )
    lines = [
        {"id": "legal.a", "category": "legal", "label_en": "contract review", "label_zh": "合同审查"},
        {"id": "legal.b", "category": "legal", "label_en": "Contract  Review", "label_zh": "审合同"},
        {"id": "legal.c", "category": "cooking", "label_en": "baking", "label_zh": "烘焙"},
        {"id": "legal.d", "category": "legal", "label_en": "", "label_zh": "调解"},
    ]
    (tmp_path / "concepts" / "legal.jsonl").write_text(
        "\n".join(json.dumps(x, ensure_ascii=False) for x in lines), encoding="utf-8"
    )
    result = runner.invoke(main, ["taxonomy", "validate", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "belongs to both legal.a and legal.b" in result.output
    assert "unknown category 'cooking'" in result.output
    assert "legal.d: missing label_en" in result.output
    assert "category 'hr' has no concepts" in result.output


def test_extract_json_matches_api(runner, client, monkeypatch, settings):
    _use(monkeypatch, settings)
    text = "会用Figma做原型，也做过usability testing"
    result = runner.invoke(main, ["extract", text, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == client.post("/v1/extract", json={"text": text}).get_json()


def test_match_readable_and_json(runner, client, monkeypatch, settings, services):
    _use(monkeypatch, settings)
    text = "We need an accountant to prepare our annual financial statements"
    readable = runner.invoke(main, ["match", text, "--kind", "request", "--top-k", "3"])
    assert readable.exit_code == 0, readable.output
    assert "shared:" in readable.output and " 1. " in readable.output
    as_json = runner.invoke(main, ["match", text, "--kind", "request", "--top-k", "3", "--json"])
    api = client.post("/v1/match", json={"text": text, "kind": "request", "top_k": 3}).get_json()
    assert json.loads(as_json.output) == api


def test_match_without_index_fails_cleanly(runner, monkeypatch, settings, tmp_path):
    _use(monkeypatch, settings)
    result = runner.invoke(main, ["match", "会计", "--kind", "request", "--index-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no index is published" in result.output


@pytest.mark.parametrize(
    "line,message",
    [('{"id": "x", "kind": "donor", "text": "hi"}', "'kind' must be 'volunteer' or 'request'"),
     ('{"id": "x", "kind": "request", "text": "bad \\ud800 text"}', "unpaired surrogate"),
     ('{"id": "x", "kind": "request", "text": "  "}', "'text' must be a non-empty string"),
     ('{"id": "x", "kind": "request"', "docs.jsonl:1: not valid JSON"),
     ('[1, 2]', "a document must be a JSON object")],
)
def test_rebuild_reports_bad_corpus(runner, monkeypatch, settings, tmp_path, line, message):
    _use(monkeypatch, settings)
    (tmp_path / "docs.jsonl").write_text(line + "\n", encoding="utf-8")
    result = runner.invoke(main, ["rebuild", "--corpus", str(tmp_path), "--index-dir", str(tmp_path / "idx")])
    assert result.exit_code == 1
    assert message in result.output
    assert not (tmp_path / "idx" / "CURRENT").exists()


def test_rebuild_refuses_duplicate_ids(runner, monkeypatch, settings, tmp_path):
    _use(monkeypatch, settings)
    doc = '{"id": "x", "kind": "request", "text": "需要会计"}'
    (tmp_path / "a.jsonl").write_text(doc + "\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(doc + "\n", encoding="utf-8")
    result = runner.invoke(main, ["rebuild", "--corpus", str(tmp_path), "--index-dir", str(tmp_path / "idx")])
    assert result.exit_code == 1 and "duplicate id 'x' (first in a.jsonl:1)" in result.output


def _use(monkeypatch, settings) -> None:
    """Point the CLI's settings (read from the environment) at the test session's folders."""
    for name in ("taxonomy_dir", "corpus_dir", "index_dir", "model_path", "cache_dir"):
        monkeypatch.setenv(f"NLP_SERVICE_{name.upper()}", str(getattr(settings, name)))


def test_versions_lists_and_rolls_back(runner, monkeypatch, settings, services, tmp_path):
    """Two builds into a private folder: list both, roll back to the first, and the API follows."""
    from nlp_service.app import create_app
    from nlp_service.corpus import load_corpus
    from nlp_service.services import Services

    _use(monkeypatch, settings)
    private = settings.with_overrides(index_dir=tmp_path / "idx")
    svc = Services(private, embedder=services.embedder, taxonomy=services.taxonomy)
    docs = load_corpus(settings.corpus_dir)
    first = svc.builder().build(docs[:20])
    second = svc.builder().build(docs[:30])
    client = create_app(services=svc).test_client()
    assert client.get("/v1/health").get_json()["index"]["documents"] == 30
    listed = runner.invoke(main, ["versions", "--index-dir", str(tmp_path / "idx")])
    assert listed.exit_code == 0, listed.output
    assert f"* {second}" in listed.output and f"  {first}" in listed.output
    rolled = runner.invoke(main, ["versions", "--index-dir", str(tmp_path / "idx"), "--publish", first])
    assert rolled.exit_code == 0, rolled.output
    # the older snapshot serves again; documents written since it stay (the store is the source of truth)
    health = client.get("/v1/health").get_json()["index"]
    assert health["version"] == first and health["documents"] == 30
    missing = runner.invoke(main, ["versions", "--index-dir", str(tmp_path / "idx"), "--publish", "nope"])
    assert missing.exit_code == 1 and "no index version 'nope'" in missing.output


def test_prepare_model_writes_loadable_folders(runner, tmp_path):
    """Both packaged models become sentence-transformers folders that load offline and embed."""
    from nlp_service.index.embedder import SentenceTransformerEmbedder

    for kind, dimension in (("use-multilingual-v3", 512), ("e5-small-multilingual", 384)):
        target = tmp_path / kind
        result = runner.invoke(main, ["prepare-model", "--model", kind, "--target", str(target)])
        assert result.exit_code == 0, result.output
        again = runner.invoke(main, ["prepare-model", "--model", kind, "--target", str(target)])
        assert "already exists" in again.output
        embedder = SentenceTransformerEmbedder(target)
        vectors = embedder.embed(["会计做账", "bookkeeping for a charity", "剪辑短视频"])
        assert vectors.shape == (3, dimension) and embedder.dimension == dimension
        assert abs(float((vectors * vectors).sum(axis=1).mean()) - 1.0) < 1e-3
        assert not list(tmp_path.glob("*.tmp"))


def test_match_by_document_id_and_usage_errors(runner, client, monkeypatch, settings, services):
    _use(monkeypatch, settings)
    by_id = runner.invoke(main, ["match", "--id", "req-2001", "--top-k", "3", "--json"])
    assert by_id.exit_code == 0, by_id.output
    assert json.loads(by_id.output) == client.get("/v1/documents/req-2001/matches?top_k=3").get_json()
    assert runner.invoke(main, ["match", "会计"]).exit_code == 2  # --kind missing
    assert runner.invoke(main, ["match"]).exit_code == 2
    assert runner.invoke(main, ["match", "会计", "--kind", "request", "--id", "req-2001"]).exit_code == 2
    missing = runner.invoke(main, ["match", "--id", "nope"])
    assert missing.exit_code == 1 and "no document 'nope'" in missing.output


def test_evaluate_matches_reports_baselines_and_band_thresholds(runner, monkeypatch, settings, services, tmp_path):
    _use(monkeypatch, settings)
    root = Path(__file__).resolve().parents[1]
    lines = (root / "corpus/eval/match_dev.jsonl").read_text(encoding="utf-8").splitlines()[:6]
    gold = tmp_path / "matches.jsonl"
    gold.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(main, ["evaluate", "--matches", str(gold), "--report-dir", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "6 requests" in result.output and "cosine only (naive)" in result.output
    assert "calibrated on this gold: strong >=" in result.output
    report = json.loads((tmp_path / "out" / "matches.json").read_text(encoding="utf-8"))
    bands = report["results"]["service"]["band_thresholds"]
    assert bands["in_use"]["strong"] >= bands["in_use"]["possible"]
    assert bands["calibrated"]["strong"] >= bands["calibrated"]["possible"]
    # a judgement of a document the index does not hold is a clear error, not a silent zero
    broken = json.loads(lines[0])
    broken["judgements"][0]["id"] = "vol-does-not-exist"
    gold.write_text(json.dumps(broken, ensure_ascii=False) + "\n", encoding="utf-8")
    failed = runner.invoke(main, ["evaluate", "--matches", str(gold)])
    assert failed.exit_code == 1 and "'vol-does-not-exist' is not in the index" in failed.output
