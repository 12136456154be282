"""The learned concept detector: training on real gold clauses with the real model, its self-describing folder,
the tags it adds through the tagger, and how the service goes on without it when the folder does not fit."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from nlp_service.cli import main
from nlp_service.errors import GoldDataError
from nlp_service.evaluation.gold import REFERENCE_DATE, load_gold
from nlp_service.evaluation.role_training import concept_training_data, train_concept_detector
from nlp_service.extract.concept_model import NONE, ConceptDetector, ConceptModelError
from nlp_service.extract.tagger import TaxonomyTagger
from nlp_service.services import Services

from conftest import ROOT


@pytest.fixture(scope="module")
def small_golds(tmp_path_factory):
    """80 dev texts in four files (cross-validation holds out whole files)."""
    folder = tmp_path_factory.mktemp("concept-gold")
    lines = (ROOT / "corpus/eval/dev.jsonl").read_text(encoding="utf-8").splitlines()[:80]
    paths = []
    for part in range(4):
        path = folder / f"dev-part{part}.jsonl"
        path.write_text("\n".join(lines[part::4]) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def trained(services, small_golds):
    return train_concept_detector(services, small_golds)


def test_training_data_are_gold_clauses_with_their_concepts(services, small_golds):
    clauses, concepts, groups, known, sources = concept_training_data(services, small_golds)
    assert len(clauses) == len(concepts) == len(groups) == len(known) > 200
    assert set(groups) == {p.name for p in small_golds} and [s["texts"] for s in sources] == [20] * 4
    labelled = [c for c in concepts if c]
    assert len(labelled) > 60 and len(labelled) < len(concepts)  # clauses with and without evidence
    assert all(cid in services.taxonomy.concepts for found in labelled for cid in found)
    # only what a text offers or needs is a target: a concept the gold marks only as context or declined is none
    items = [item for path in small_golds for item in load_gold(path, services.taxonomy)]
    matching = {label.concept_id for item in items for label in item.labels if label.role in ("offered", "needed")}
    others = {label.concept_id for item in items for label in item.labels} - matching
    targets = {cid for found in concepts for cid in found}
    assert others and targets <= matching and not targets & others
    with pytest.raises(GoldDataError, match="test part"):
        concept_training_data(services, [ROOT / "corpus/eval/test.jsonl"])
    with pytest.raises(GoldDataError, match="held-out"):
        concept_training_data(services, [ROOT / "corpus/eval/heldout/needs-f.jsonl"])


def test_detector_describes_itself_and_round_trips(services, trained, tmp_path):
    meta = trained.meta
    assert meta["embedder"] == services.embedder.name and meta["taxonomy_version"] == services.taxonomy.full_version
    assert NONE in trained.classes and len(trained.classes) > 20
    cv = meta["cross_validation"]
    assert cv["folds"] == 4 and cv["grouped_by"] == "gold file" and 0 <= cv["precision"] <= 1
    assert min(cv["added_right"], cv["added_wrong"]) >= 0
    target = tmp_path / "detector"
    trained.save(target)
    saved = json.loads((target / "meta.json").read_text(encoding="utf-8"))
    assert saved["weights_sha256"] and saved["classes"] == list(trained.classes)
    loaded = ConceptDetector.load(target, services.embedder.embed, embedder_name=services.embedder.name,
                                  taxonomy_version=services.taxonomy.full_version,
                                  concept_ids=set(services.taxonomy.concepts))
    assert loaded.fingerprint == trained.fingerprint
    clauses = ["想请人帮忙把纸质登记表录进系统", "We need someone to sort out our books before the audit"]
    assert np.allclose(loaded.probabilities(clauses), trained.probabilities(clauses), atol=1e-5)
    assert np.allclose(trained.probabilities(clauses).sum(axis=1), 1.0, atol=1e-4)


def test_the_detector_adds_concepts_the_labels_miss_and_roles_follow(services, trained, small_golds):
    """On the texts it was trained on, the detector recovers most gold concepts that no label finds; each such tag
    spans its clause, says it is learned, and gets a role like any tag."""
    tagger = TaxonomyTagger(services.taxonomy, services.segmenter, detector=trained)
    items = [item for path in small_golds for item in load_gold(path, services.taxonomy)]
    texts, kinds = [i.text for i in items], [i.kind for i in items]
    plain = tagger.tag_many(texts, kinds, reference=REFERENCE_DATE, learned=False)
    learned = tagger.tag_many(texts, kinds, reference=REFERENCE_DATE)
    missed = recovered = 0
    for item, before, after in zip(items, plain, learned):
        assert {t.concept_id for t in before.tags} <= {t.concept_id for t in after.tags}
        for tag in after.tags:
            if tag.method == "learned":
                assert tag.concept_id not in {t.concept_id for t in before.tags}
                assert tag.surface == item.text[tag.start:tag.end] and tag.score >= trained.threshold
                assert tag.role in ("offered", "needed", "declined", "context")
        gone = {label.concept_id for label in item.labels if label.spans} - {t.concept_id for t in before.tags}
        missed += len(gone)
        recovered += len(gone & {t.concept_id for t in after.tags if t.method == "learned"})
    assert missed > 20 and recovered >= missed // 2


def test_a_detector_that_does_not_fit_is_refused_and_the_service_goes_on(settings, services, trained, tmp_path,
                                                                        caplog):
    target = tmp_path / "detector"
    trained.save(target)
    args = dict(embedder_name=services.embedder.name, taxonomy_version=services.taxonomy.full_version,
                concept_ids=set(services.taxonomy.concepts))
    with pytest.raises(ConceptModelError, match="embedder"):
        ConceptDetector.load(target, services.embedder.embed, **{**args, "embedder_name": "another-model"})
    with pytest.raises(ConceptModelError, match="taxonomy"):
        ConceptDetector.load(target, services.embedder.embed, **{**args, "taxonomy_version": "0.1.0+x"})
    with pytest.raises(ConceptModelError, match="do not fit the taxonomy"):
        ConceptDetector.load(target, services.embedder.embed, **{**args, "concept_ids": {"finance.bookkeeping"}})
    meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
    (target / "meta.json").write_text(json.dumps({**meta, "taxonomy_version": "0.1.0+x"}), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="nlp_service.services"):
        fallback = Services(settings.with_overrides(concept_model_path=target), embedder=services.embedder,
                            taxonomy=services.taxonomy)
    assert fallback.tagger.detector is None and "labels alone" in caplog.text and "train-concepts" in caplog.text
    (target / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    (target / "weights.npz").write_bytes(b"not numpy")
    with pytest.raises(ConceptModelError, match="checksum"):
        ConceptDetector.load(target, services.embedder.embed, **args)


def test_the_detector_changes_the_analysis_version(settings, services, trained, tmp_path):
    target = tmp_path / "detector"
    trained.save(target)
    with_detector = Services(settings.with_overrides(concept_model_path=target), embedder=services.embedder,
                             taxonomy=services.taxonomy)
    without = Services(settings.with_overrides(concept_detector=False), embedder=services.embedder,
                       taxonomy=services.taxonomy)
    assert with_detector.tagger.detector is not None and without.tagger.detector is None
    assert with_detector.analysis_version != without.analysis_version


def test_the_shipped_detector_is_loaded_and_evaluated_beside_the_labels_alone(services):
    """The set-up command trains models/concept-detector on the dev and fresh gold; the evaluation reports the
    labels alone next to it in the same run."""
    from nlp_service.evaluation.tagging import run_gold_evaluation

    assert services.tagger.detector is not None
    assert "test.jsonl" not in " ".join(s["file"] for s in services.tagger.detector.meta["trained_on"])
    report = run_gold_evaluation(services, ROOT / "corpus/eval/heldout/needs-e.jsonl")
    results = report["results"]
    assert results["concept_labels_only"]["support"] == results["concept"]["micro"]["support"]
    assert report["meta"]["concept_detector"]["hyperparameters"]["threshold"] == services.tagger.detector.threshold
    assert "learned" in results["per_method"]


def test_train_concepts_command(runner, monkeypatch, settings, small_golds, tmp_path):
    for name in ("taxonomy_dir", "model_path", "cache_dir"):
        monkeypatch.setenv(f"NLP_SERVICE_{name.upper()}", str(getattr(settings, name)))
    out = tmp_path / "cli-detector"
    gold = [arg for path in small_golds for arg in ("--gold", str(path))]
    result = runner.invoke(main, ["train-concepts", *gold, "--out", str(out), "--threshold", "0.5"])
    assert result.exit_code == 0, result.output
    assert "4-fold cross-validation (by gold file)" in result.output and (out / "weights.npz").is_file()
    assert json.loads((out / "meta.json").read_text(encoding="utf-8"))["hyperparameters"]["threshold"] == 0.5
    again = runner.invoke(main, ["train-concepts", *gold, "--out", str(out), "--if-missing"])
    assert again.exit_code == 0 and "is current" in again.output
    refused = runner.invoke(main, ["train-concepts", "--gold", str(ROOT / "corpus/eval/test.jsonl"), "--out",
                                   str(tmp_path / "x")])
    assert refused.exit_code == 1 and "test part" in refused.output
