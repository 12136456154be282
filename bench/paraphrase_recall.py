"""How often a skill that is described without any of its labels is found, by each way of tagging, in one run.

    .venv/bin/python bench/paraphrase_recall.py [--out bench/results]

Data: corpus/eval/paraphrase/*.jsonl, four clauses per taxonomy concept (two Chinese, two English) that describe
the skill without its labels or aliases, written by hand for this project and never trained on. Per way of
tagging: the share of clauses whose own concept is returned (any role), whose category is, and that get some
other concept and not theirs. Ways: the labels alone (none by construction), the labels with the nearest-label
semantic tagger (the naive baseline: clause vector against label vectors at the calibrated thresholds), and the
labels with the learned concept detector (the shipped models/concept-detector).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")
from model_bench import write_result  # noqa: E402 (bench/ is on the path)


def load_examples(folder: Path) -> list[dict]:
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows


def score(rows: list[dict], results, taxonomy) -> dict:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"clauses": 0, "own": 0, "category": 0, "other_only": 0})
    for row, result in zip(rows, results):
        found = {t.concept_id for t in result.tags}
        category = taxonomy[row["concept"]].category
        for key in ("all", row["lang"]):
            c = counts[key]
            c["clauses"] += 1
            c["own"] += row["concept"] in found
            c["category"] += any(taxonomy[cid].category == category for cid in found)
            c["other_only"] += bool(found) and row["concept"] not in found
    return {key: {**c, "recall": c["own"] / c["clauses"], "category_recall": c["category"] / c["clauses"],
                  "other_only_share": c["other_only"] / c["clauses"]} for key, c in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--examples", type=Path, default=ROOT / "corpus" / "eval" / "paraphrase")
    args = parser.parse_args()

    from nlp_service.services import Services
    from nlp_service.settings import load_settings

    os.chdir(ROOT)
    rows = load_examples(args.examples)
    texts = [row["text"] for row in rows]
    learned = Services(load_settings())  # the model and taxonomy are loaded once, shared by the other two
    shared = {"embedder": learned.embedder, "taxonomy": learned.taxonomy}
    plain = Services(load_settings(concept_detector=False), **shared)
    semantic = Services(load_settings(concept_detector=False, semantic_tags=True), **shared)
    if learned.tagger.detector is None:
        sys.exit("no concept detector in models/concept-detector: run make setup (or nlp-service train-concepts)")
    ways = {
        "labels alone": plain.tagger.tag_many(texts, learned=False),
        "labels + nearest-label semantic tagger (baseline)": semantic.tagger.tag_many(texts, learned=False),
        "labels + concept detector": learned.tagger.tag_many(texts),
    }
    report = {"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "clauses": len(rows),
              "concepts": len({row["concept"] for row in rows}),
              "detector": {k: learned.tagger.detector.meta[k] for k in ("clauses", "hyperparameters")},
              "ways": {name: score(rows, results, plain.taxonomy) for name, results in ways.items()}}
    target = write_result(args.out, "paraphrase-recall", report, indent=1)
    print(f"{len(rows)} clauses, {report['concepts']} concepts -> {target}")
    print(f"{'way':52s} {'own zh':>7s} {'own en':>7s} {'own':>6s} {'category':>9s} {'other only':>11s}")
    for name, result in report["ways"].items():
        print(f"{name:52s} {result['zh']['recall']:7.3f} {result['en']['recall']:7.3f} {result['all']['recall']:6.3f} "
              f"{result['all']['category_recall']:9.3f} {result['all']['other_only_share']:11.3f}")


if __name__ == "__main__":
    main()
