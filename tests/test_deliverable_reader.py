"""The learned deliverable reader: training on real gold requests with the real model, its self-describing
folder, what it gives the needs block through the tagger, the patterns-alone baseline beside it in the evaluation,
and how the service goes on without it when the folder does not fit."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from nlp_service.cli import main
from nlp_service.errors import GoldDataError
from nlp_service.evaluation.gold import REFERENCE_DATE, load_gold
from nlp_service.evaluation.role_training import deliverable_training_data, train_deliverable_reader
from nlp_service.extract.needs_model import DeliverableReader, NeedsModelError
from nlp_service.services import Services

from conftest import ROOT


@pytest.fixture(scope="module")
def small_golds(tmp_path_factory):
    """The requests of 120 dev texts in four files (cross-validation holds out whole files)."""
    folder = tmp_path_factory.mktemp("deliverable-gold")
    lines = (ROOT / "corpus/eval/dev.jsonl").read_text(encoding="utf-8").splitlines()[:120]
    paths = []
    for part in range(4):
        path = folder / f"dev-part{part}.jsonl"
        path.write_text("\n".join(lines[part::4]) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def trained(services, small_golds):
    return train_deliverable_reader(services, small_golds)


def test_training_data_are_the_clauses_of_gold_requests(services, small_golds):
    clauses, positive, texts, groups, sources = deliverable_training_data(services, small_golds)
    items = {f"{path.name}:{item.id}": item for path in small_golds for item in load_gold(path, services.taxonomy)}
    assert len(clauses) == len(positive) == len(texts) == len(groups) > 100
    assert {items[t].kind for t in texts} == {"request"} and set(groups) == {p.name for p in small_golds}
    assert [s["texts"] for s in sources] == [30] * 4
    with_deliverable = {t for t, item in items.items() if item.kind == "request" and (item.needs or {}).get("deliverable")}
    # exactly the clauses that touch a request's gold deliverable are positive (one or, when it spans a break, more)
    assert {t for t, p in zip(texts, positive) if p} == with_deliverable and sum(positive) < len(positive) / 3
    for clause, is_positive, text in zip(clauses, positive, texts):
        if is_positive:
            surface = items[text].needs["deliverable"]["span"]["surface"]
            assert surface[:2] in clause or clause[:2] in surface
    with pytest.raises(GoldDataError, match="test part"):
        deliverable_training_data(services, [ROOT / "corpus/eval/test.jsonl"])
    with pytest.raises(GoldDataError, match="held-out"):
        deliverable_training_data(services, [ROOT / "corpus/eval/heldout/needs-e.jsonl"])


def test_reader_describes_itself_and_round_trips(services, trained, tmp_path):
    meta = trained.meta
    assert meta["kind"] == "deliverable-reader" and meta["embedder"] == services.embedder.name
    cv = meta["cross_validation"]
    assert cv["folds"] == 4 and cv["grouped_by"] == "gold file" and 0 < cv["f1"] <= 1 and cv["texts"] == meta["texts"]
    target = tmp_path / "reader"
    trained.save(target)
    assert json.loads((target / "meta.json").read_text(encoding="utf-8"))["weights_sha256"]
    loaded = DeliverableReader.load(target, services.embedder.embed, embedder_name=services.embedder.name)
    assert loaded.fingerprint == trained.fingerprint and loaded.threshold == trained.threshold
    clauses = ["想请一位设计师帮我们做一本二十页的年报", "我们机构成立于2015年"]
    assert np.allclose(loaded.probabilities(clauses), trained.probabilities(clauses), atol=1e-5)
    with pytest.raises(NeedsModelError, match="embedder"):
        DeliverableReader.load(target, services.embedder.embed, embedder_name="another-model")
    (target / "weights.npz").write_bytes(b"not numpy")
    with pytest.raises(NeedsModelError, match="checksum"):
        DeliverableReader.load(target, services.embedder.embed, embedder_name=services.embedder.name)


def test_the_shipped_reader_gives_a_request_its_deliverable_clause(services):
    """The set-up command trains models/needs-reader on the dev and fresh gold. A deliverable told through its use
    (no counted output noun after a making verb) is found as the clause that holds it; an ask with no output and a
    volunteer's profile get none."""
    reader = services.needs.deliverables
    assert reader is not None
    assert "test.jsonl" not in " ".join(s["file"] for s in reader.meta["trained_on"])
    text = ("我们是一个做流浪猫救助的小团体，领养信息现在全靠几张Excel表。想找一位懂low-code工具的朋友，帮我们搭一个义工用手机"
            "也能随时更新的领养登记系统。可以远程。")
    request = services.tagger.tag(text, "request", reference=REFERENCE_DATE).needs
    assert request.deliverable is not None and "领养登记系统" in request.deliverable.surface
    assert text[request.deliverable.start:request.deliverable.end] == request.deliverable.surface
    profile = services.tagger.tag("我是一名平面设计师，做过很多海报和画册，周末有空。", "volunteer",
                                  reference=REFERENCE_DATE).needs
    assert profile.deliverable is None
    batch = services.tagger.tag_many([text, "Looking for a bookkeeper for two hours a week, ongoing."],
                                     ["request", "request"], reference=REFERENCE_DATE)
    assert batch[0].needs.deliverable == request.deliverable and batch[1].needs.deliverable is None


def test_a_reader_that_does_not_fit_is_refused_and_the_patterns_decide(settings, services, trained, tmp_path, caplog):
    target = tmp_path / "reader"
    trained.save(target)
    meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
    (target / "meta.json").write_text(json.dumps({**meta, "embedder": "another-model"}), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="nlp_service.services"):
        fallback = Services(settings.with_overrides(needs_model_path=target), embedder=services.embedder,
                            taxonomy=services.taxonomy)
    assert fallback.needs.deliverables is None and "patterns alone" in caplog.text and "train-needs" in caplog.text
    text = "Looking for a designer to create a one-page flyer for our spring food drive."
    found = fallback.tagger.tag(text, "request", reference=REFERENCE_DATE).needs.deliverable
    assert found is not None and found == fallback.needs.pattern_deliverable(text)
    assert fallback.analysis_version != services.analysis_version  # stored analyses are redone


def test_evaluation_reports_the_patterns_alone_beside_the_reader(services):
    from nlp_service.evaluation.tagging import run_gold_evaluation

    report = run_gold_evaluation(services, ROOT / "corpus/eval/heldout/needs-f.jsonl")
    results = report["results"]
    reader, patterns = results["needs"]["per_field"]["deliverable"], results["deliverable_patterns_only"]
    assert reader["support"] == patterns["support"] > 10
    assert report["meta"]["deliverable_reader"]["hyperparameters"]["threshold"] == services.needs.deliverables.threshold


def test_train_needs_command(runner, monkeypatch, settings, small_golds, tmp_path):
    for name in ("taxonomy_dir", "model_path", "cache_dir"):
        monkeypatch.setenv(f"NLP_SERVICE_{name.upper()}", str(getattr(settings, name)))
    out = tmp_path / "cli-reader"
    gold = [arg for path in small_golds for arg in ("--gold", str(path))]
    result = runner.invoke(main, ["train-needs", *gold, "--out", str(out), "--threshold", "0.4"])
    assert result.exit_code == 0, result.output
    assert "4-fold cross-validation (by gold file): deliverable P" in result.output and (out / "weights.npz").is_file()
    assert json.loads((out / "meta.json").read_text(encoding="utf-8"))["hyperparameters"]["threshold"] == 0.4
    again = runner.invoke(main, ["train-needs", *gold, "--out", str(out), "--if-missing"])
    assert again.exit_code == 0 and "is current" in again.output
    refused = runner.invoke(main, ["train-needs", "--gold", str(ROOT / "corpus/eval/heldout/needs-e.jsonl"), "--out",
                                   str(tmp_path / "x")])
    assert refused.exit_code == 1 and "held-out" in refused.output
