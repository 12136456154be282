"""What the deliverable reader costs and buys, beside the deliverable patterns alone, in one run.

    .venv/bin/python bench/deliverable_reader.py [--repeat 5] [--out bench/results]

Speed: the median time to tag one corpus request (a /v1/extract without HTTP: tags, roles and needs) with and
without the reader, and a whole-corpus batch. Quality: deliverable P / R / F1 (span overlap, as `evaluate`) on the
test part and the held-out sets (never trained on) and on the training files (dev + fresh, where it was fitted).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="timed passes over the corpus (default 5)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    from nlp_service.corpus import load_corpus
    from nlp_service.evaluation.gold import load_gold
    from nlp_service.evaluation.needs_roles import evaluate_needs
    from nlp_service.evaluation.role_training import default_training_files
    from nlp_service.services import Services
    from nlp_service.settings import load_settings

    os.chdir(ROOT)
    services = Services(load_settings())
    reader = services.needs.deliverables
    if reader is None:
        sys.exit("no deliverable reader at models/needs-reader: run `make setup` (or nlp-service train-needs)")
    patterns = Services(load_settings(needs_reader=False), embedder=services.embedder, taxonomy=services.taxonomy)
    variants = {"patterns alone": patterns.tagger, "reader": services.tagger}
    requests = [d.text for d in load_corpus(ROOT / "corpus" / "documents") if d.kind == "request"]
    for tagger in variants.values():
        tagger.tag_many(requests[:8], ["request"] * 8)  # warm up jieba, spaCy and the model

    speed: dict[str, dict] = {}
    for name, tagger in variants.items():
        per_request, batch = time_tagging(lambda text: tagger.tag(text, "request"),
                                          lambda: tagger.tag_many(requests, ["request"] * len(requests)),
                                          requests, args.repeat)
        speed[name] = {"per_request_median_ms": per_request, "corpus_batch_median_s": batch, "requests": len(requests)}

    sets = {"test part": [ROOT / "corpus/eval/test.jsonl"],
            "held-out sets": sorted((ROOT / "corpus/eval/heldout").glob("*.jsonl")),
            "training files (dev + fresh)": default_training_files(ROOT)}
    quality = {}
    for label, paths in sets.items():
        items = [item for path in paths for item in load_gold(path, services.taxonomy)]
        row = {}
        for name, tagger in variants.items():
            found = evaluate_needs(items, tag_gold(tagger, items))["per_field"]["deliverable"]
            row[name] = {k: round(found[k], 3) for k in ("precision", "recall", "f1")} | {"support": found["support"]}
        quality[label] = row

    result = {"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "repeat": args.repeat,
              "reader": {k: reader.meta.get(k) for k in ("clauses", "texts", "hyperparameters", "cross_validation")},
              "speed": speed, "quality": quality}
    print(f"wrote {write_result(args.out, 'deliverable-reader', result)}")
    a, b = speed["patterns alone"], speed["reader"]
    print("| measure | patterns alone | reader | ratio |\n|---|---|---|---|")
    print(f"| tag one corpus request, median ms | {a['per_request_median_ms']} | {b['per_request_median_ms']} | "
          f"{b['per_request_median_ms'] / a['per_request_median_ms']:.2f}× |")
    print(f"| tag the corpus requests ({a['requests']}) in one batch, s | {a['corpus_batch_median_s']} | "
          f"{b['corpus_batch_median_s']} | {b['corpus_batch_median_s'] / a['corpus_batch_median_s']:.2f}× |")
    for label, row in quality.items():
        x, y = row["patterns alone"], row["reader"]
        print(f"| {label} ({x['support']} gold): deliverable P / R (F1) | {x['precision']} / {x['recall']} ({x['f1']}) | "
              f"{y['precision']} / {y['recall']} ({y['f1']}) | |")


if __name__ == "__main__":
    main()
