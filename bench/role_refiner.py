"""What the role refiner costs and buys, beside the rules alone, in one run.

    .venv/bin/python bench/role_refiner.py [--repeat 5] [--out bench/results]

Speed: the median time to tag one corpus text (a /v1/extract without HTTP) with and without the
refiner, and a whole-corpus batch. Quality: role accuracy and declined/context leaks on the test gold
part and on each fresh set (the refiner trained on dev and the fresh sets, so those rows are training data).
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
from model_bench import time_tagging, write_result  # noqa: E402 (bench/ is on the path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="timed passes over the corpus (default 5)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    from nlp_service.corpus import load_corpus
    from nlp_service.evaluation.gold import REFERENCE_DATE, load_gold
    from nlp_service.evaluation.needs_roles import evaluate_roles
    from nlp_service.services import Services
    from nlp_service.settings import load_settings

    os.chdir(ROOT)
    services = Services(load_settings())
    tagger = services.tagger
    if tagger.refiner is None:
        sys.exit("no role refiner at models/role-refiner: run `make setup` (or nlp-service train-roles) first")
    docs = load_corpus(ROOT / "corpus" / "documents")
    texts = [(d.text, d.kind) for d in docs]
    tagger.tag_many([t for t, _ in texts[:8]], [k for _, k in texts[:8]])  # warm up jieba, spaCy and the model

    speed: dict[str, dict] = {}
    for refine in (False, True):
        per_text, batch = time_tagging(lambda pair: tagger.tag(pair[0], pair[1], refine=refine),
                                       lambda: tagger.tag_many([t for t, _ in texts], [k for _, k in texts],
                                                               refine=refine),
                                       texts, args.repeat)
        speed["refiner" if refine else "rules alone"] = {"per_text_median_ms": per_text,
                                                         "corpus_batch_median_s": batch, "texts": len(texts)}

    quality = {}
    gold_files = [ROOT / "corpus/eval/test.jsonl", *sorted((ROOT / "corpus/eval/fresh").glob("*.jsonl"))]
    for path in gold_files:
        items = load_gold(path, services.taxonomy)
        row = {}
        for refine in (False, True):
            predictions = tagger.tag_many([i.text for i in items], [i.kind or None for i in items],
                                          reference=REFERENCE_DATE, refine=refine)
            roles = evaluate_roles(items, predictions)
            row["refiner" if refine else "rules alone"] = {"accuracy": round(roles["accuracy"], 3),
                                                           "leaks": roles["leaks"], "guarded": roles["guarded_concepts"]}
        quality[str(path.relative_to(ROOT))] = row

    result = {"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "repeat": args.repeat,
              "refiner": {k: tagger.refiner.meta.get(k) for k in ("instances", "hyperparameters", "cross_validation")},
              "speed": speed, "quality": quality}
    print(f"wrote {write_result(args.out, 'role-refiner', result)}")
    rules, refined = speed["rules alone"], speed["refiner"]
    print("| measure | rules alone | rules + refiner | ratio |\n|---|---|---|---|")
    print(f"| tag one corpus text, median ms | {rules['per_text_median_ms']} | {refined['per_text_median_ms']} | "
          f"{refined['per_text_median_ms'] / rules['per_text_median_ms']:.2f}× |")
    print(f"| tag the corpus ({rules['texts']} texts) in one batch, s | {rules['corpus_batch_median_s']} | "
          f"{refined['corpus_batch_median_s']} | {refined['corpus_batch_median_s'] / rules['corpus_batch_median_s']:.2f}× |")
    for name, row in quality.items():
        a, b = row["rules alone"], row["refiner"]
        print(f"| {name}: role accuracy / leaks | {a['accuracy']} / {a['leaks']} of {a['guarded']} | "
              f"{b['accuracy']} / {b['leaks']} of {b['guarded']} | |")


if __name__ == "__main__":
    main()
