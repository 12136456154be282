"""The learned role refiner: training on real gold through the real tagger and model, its self-describing
folder, and how the service falls back to the rules when the folder does not fit."""

from __future__ import annotations

import json
import logging

import pytest

from nlp_service.cli import main
from nlp_service.errors import GoldDataError
from nlp_service.evaluation.role_training import role_training_data, train_role_refiner
from nlp_service.extract.role_model import RoleInstance, RoleModelError, RoleRefiner
from nlp_service.extract.roles import ROLES
from nlp_service.services import Services

from conftest import ROOT


@pytest.fixture(scope="module")
def small_gold(tmp_path_factory):
    """60 dev texts: enough for every role, small enough to train in seconds."""
    path = tmp_path_factory.mktemp("gold") / "dev-small.jsonl"
    lines = (ROOT / "corpus/eval/dev.jsonl").read_text(encoding="utf-8").splitlines()[:60]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(services, small_gold):
    return train_role_refiner(services, [small_gold])


def test_training_data_are_the_tags_the_tagger_finds_with_gold_roles(services, small_gold):
    instances, roles, groups, sources = role_training_data(services, [small_gold])
    assert len(instances) == len(roles) == len(groups) > 50
    # None: a concept the gold does not label at all (learned as context at a lower weight)
    assert set(roles) - {None} <= set(ROLES) and len(set(roles) - {None}) >= 3 and None in roles
    assert sources[0]["texts"] == 60 and len(sources[0]["sha256"]) == 64
    first = instances[0]
    assert first.clause[0] <= first.start < first.end <= first.clause[1] and first.rule_role in ROLES


def test_the_test_part_is_never_training_data(services):
    with pytest.raises(GoldDataError, match="test part"):
        role_training_data(services, [ROOT / "corpus/eval/test.jsonl"])
    with pytest.raises(GoldDataError, match="held-out sets"):
        role_training_data(services, [ROOT / "corpus/eval/heldout/needs-e.jsonl"])


def test_refiner_describes_itself_and_round_trips(services, trained, tmp_path):
    meta = trained.meta
    assert meta["embedder"] == services.embedder.name and meta["instances"] > 50
    cv = meta["cross_validation"]
    assert cv["folds"] == 5 and 0 < cv["tag_accuracy_rules"] <= 1 and 0 < cv["tag_accuracy_refiner"] <= 1
    target = tmp_path / "refiner"
    trained.save(target)
    saved = json.loads((target / "meta.json").read_text(encoding="utf-8"))
    assert saved["weights_sha256"] and set(saved["classes"]) <= set(ROLES)
    loaded = RoleRefiner.load(target, services.embedder.embed, embedder_name=services.embedder.name)
    assert loaded.fingerprint == trained.fingerprint
    text = "我们已经有两位专职社工，想找一位会剪视频的志愿者。"
    instances = [RoleInstance.of(text, "request", text.index("社工"), text.index("社工") + 2, "context"),
                 RoleInstance.of(text, "request", text.index("剪视频"), text.index("剪视频") + 3, "needed")]
    assert loaded.predict(instances) == trained.predict(instances)
    trained.save(target)  # replacing a folder keeps one folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["refiner"]


def test_the_concept_and_its_category_are_features_and_older_folders_still_load(services, small_gold, trained,
                                                                                tmp_path):
    instances, *_ = role_training_data(services, [small_gold])
    assert all(i.concept_id in services.taxonomy.concepts and i.category for i in instances)
    assert trained.meta["hyperparameters"]["concept_weight"] == 0.7
    plain = train_role_refiner(services, [small_gold], concept_weight=0.0)
    assert trained.coef.shape[1] == plain.coef.shape[1] + trained.meta["hyperparameters"]["concept_features"]
    # a folder written before the concept features (no concept_weight in its meta) reads as before
    del plain.meta["hyperparameters"]["concept_weight"]
    plain.save(tmp_path / "old")
    old = RoleRefiner.load(tmp_path / "old", services.embedder.embed, embedder_name=services.embedder.name)
    sample = instances[:40]
    assert old.predict(sample) == plain.predict(sample)


def test_a_negation_the_rules_found_stands(trained):
    text = "We don't need a photographer; we need a video editor."
    start = text.index("photographer")
    instance = RoleInstance.of(text, "request", start, start + len("photographer"), "declined")
    assert trained.predict([instance]) == ["declined"]


def test_a_clause_that_only_looks_negated_declines_nothing(services, trained):
    """A refiner that always says "declined" keeps it only where the clause has a real negation cue."""
    import numpy as np

    classes = list(ROLES)
    intercept = np.full(len(classes), -5.0, dtype=np.float32)
    intercept[classes.index("declined")] = 5.0
    coef = np.zeros((len(classes), trained.coef.shape[1]), dtype=np.float32)
    always_declined = RoleRefiner(coef, intercept, classes, trained.meta, services.embedder.embed)
    ok = "写接口、做数据库设计都没问题。"
    refused = "数据库设计我不做。"
    instances = [RoleInstance.of(ok, "volunteer", ok.index("数据库设计"), ok.index("数据库设计") + 5, "offered"),
                 RoleInstance.of(refused, "volunteer", 0, 5, "offered")]
    assert always_declined.predict(instances) == ["offered", "declined"]


def test_a_refiner_that_does_not_fit_is_refused(services, trained, tmp_path):
    target = tmp_path / "refiner"
    trained.save(target)
    with pytest.raises(RoleModelError, match="embedder"):
        RoleRefiner.load(target, services.embedder.embed, embedder_name="another-model")
    meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
    (target / "meta.json").write_text(json.dumps({**meta, "rules": "0" * 16}), encoding="utf-8")
    with pytest.raises(RoleModelError, match="other role rules"):
        RoleRefiner.load(target, services.embedder.embed, embedder_name=services.embedder.name)
    (target / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    (target / "weights.npz").write_bytes(b"not numpy")
    with pytest.raises(RoleModelError, match="checksum"):
        RoleRefiner.load(target, services.embedder.embed, embedder_name=services.embedder.name)


def test_service_falls_back_to_the_rules_with_a_warning(settings, services, trained, tmp_path, caplog):
    target = tmp_path / "refiner"
    trained.save(target)
    meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
    (target / "meta.json").write_text(json.dumps({**meta, "rules": "0" * 16}), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="nlp_service.services"):
        fallback = Services(settings.with_overrides(role_model_path=target), embedder=services.embedder,
                            taxonomy=services.taxonomy)
    assert fallback.tagger.refiner is None
    assert "rules alone" in caplog.text and "retrain" in caplog.text


def test_the_refiner_changes_the_analysis_version(settings, services, trained, tmp_path):
    target = tmp_path / "refiner"
    trained.save(target)
    with_refiner = Services(settings.with_overrides(role_model_path=target), embedder=services.embedder,
                            taxonomy=services.taxonomy)
    without = Services(settings.with_overrides(role_refiner=False), embedder=services.embedder,
                       taxonomy=services.taxonomy)
    assert with_refiner.tagger.refiner is not None and without.tagger.refiner is None
    assert with_refiner.analysis_version != without.analysis_version


def test_train_roles_command(runner, monkeypatch, settings, small_gold, tmp_path):
    for name in ("taxonomy_dir", "model_path", "cache_dir"):
        monkeypatch.setenv(f"NLP_SERVICE_{name.upper()}", str(getattr(settings, name)))
    out = tmp_path / "cli-refiner"
    result = runner.invoke(main, ["train-roles", "--gold", str(small_gold), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "cross-validated tag-role accuracy: rules" in result.output and (out / "weights.npz").is_file()
    again = runner.invoke(main, ["train-roles", "--gold", str(small_gold), "--out", str(out), "--if-missing"])
    assert again.exit_code == 0 and "is current" in again.output
    refused = runner.invoke(main, ["train-roles", "--gold", str(ROOT / "corpus/eval/test.jsonl"), "--out",
                                   str(tmp_path / "x")])
    assert refused.exit_code == 1 and "test part" in refused.output
