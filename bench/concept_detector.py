"""What the concept detector costs and buys, beside the labels alone, in one run.

    .venv/bin/python bench/concept_detector.py [--repeat 5] [--out bench/results]

Speed: the median time to tag one corpus text (a /v1/extract without HTTP) with and without the detector,
and a whole-corpus batch. Quality: offered/needed tag F1 and declined/context leaks on the test part and the
held-out sets (never trained on) and on the training files (dev + fresh, where the detector was fitted).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")
from model_bench import tag_gold, time_tagging, write_result  # noqa: E402 (bench/ is on the path)

VARIANTS = {"labels alone": False, "labels + detector": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="timed passes over the corpus (default 5)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    from nlp_service.corpus import load_corpus
    from nlp_service.evaluation.gold import load_gold
    from nlp_service.evaluation.needs_roles import evaluate_roles
    from nlp_service.evaluation.role_training import default_training_files
    from nlp_service.evaluation.tagging import evaluate_tagging
    from nlp_service.services import Services
    from nlp_service.settings import load_settings

    os.chdir(ROOT)
    services = Services(load_settings())
    tagger = services.tagger
    if tagger.detector is None:
        sys.exit("no concept detector at models/concept-detector: run `make setup` (or nlp-service train-concepts)")
    texts = [(d.text, d.kind) for d in load_corpus(ROOT / "corpus" / "documents")]
    tagger.tag_many([t for t, _ in texts[:8]], [k for _, k in texts[:8]])  # warm up jieba, spaCy and the model

    speed: dict[str, dict] = {}
    for name, learned in VARIANTS.items():
        per_text, batch = time_tagging(lambda pair: tagger.tag_many([pair[0]], [pair[1]], learned=learned),
                                       lambda: tagger.tag_many([t for t, _ in texts], [k for _, k in texts],
                                                               learned=learned),
                                       texts, args.repeat)
        speed[name] = {"per_text_median_ms": per_text, "corpus_batch_median_s": batch, "texts": len(texts)}

    sets = {"test part": [ROOT / "corpus/eval/test.jsonl"],
            "held-out sets": sorted((ROOT / "corpus/eval/heldout").glob("*.jsonl")),
            "training files (dev + fresh)": default_training_files(ROOT)}
    quality = {}
    for label, paths in sets.items():
        items = [item for path in paths for item in load_gold(path, services.taxonomy)]
        row = {}
        for name, learned in VARIANTS.items():
            predictions = tag_gold(tagger, items, learned=learned)
            tags = evaluate_tagging(items, predictions, services.taxonomy)["concept"]["micro"]
            roles = evaluate_roles(items, predictions)
            row[name] = {"f1": round(tags["f1"], 3), "precision": round(tags["precision"], 3),
                         "recall": round(tags["recall"], 3), "leaks": roles["leaks"],
                         "guarded": roles["guarded_concepts"]}
        quality[label] = row

    result = {"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "repeat": args.repeat,
              "detector": {k: tagger.detector.meta.get(k) for k in ("clauses", "hyperparameters", "cross_validation")},
              "speed": speed, "quality": quality}
    print(f"wrote {write_result(args.out, 'concept-detector', result)}")
    a, b = speed["labels alone"], speed["labels + detector"]
    print("| measure | labels alone | labels + detector | ratio |\n|---|---|---|---|")
    print(f"| tag one corpus text, median ms | {a['per_text_median_ms']} | {b['per_text_median_ms']} | "
          f"{b['per_text_median_ms'] / a['per_text_median_ms']:.2f}× |")
    print(f"| tag the corpus ({a['texts']} texts) in one batch, s | {a['corpus_batch_median_s']} | "
          f"{b['corpus_batch_median_s']} | {b['corpus_batch_median_s'] / a['corpus_batch_median_s']:.2f}× |")
    for label, row in quality.items():
        x, y = row["labels alone"], row["labels + detector"]
        print(f"| {label}: tag F1 (P / R); leaks | {x['f1']} ({x['precision']} / {x['recall']}); {x['leaks']} of "
              f"{x['guarded']} | {y['f1']} ({y['precision']} / {y['recall']}); {y['leaks']} of {y['guarded']} | |")


if __name__ == "__main__":
    main()
