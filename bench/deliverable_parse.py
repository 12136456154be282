"""What reading English deliverables with spaCy's dependency parser costs and buys, beside the patterns
alone, in one run.

    .venv/bin/python bench/deliverable_parse.py [--repeat 5] [--out bench/results]

Speed: the median time to extract the needs of one request text (dev, fresh and test gold requests), with
and without the parser (`NeedsExtractor(objects=None)` is the patterns alone). Quality: deliverable
precision / recall (span overlap) per gold file. Dev and the fresh sets are where the patterns were
written; the test part is held out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")
from model_bench import write_result  # noqa: E402 (bench/ is on the path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="timed passes over the request texts (default 5)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    from nlp_service.evaluation.gold import REFERENCE_DATE, load_gold
    from nlp_service.evaluation.needs_roles import needs_counts
    from nlp_service.services import Services
    from nlp_service.settings import load_settings

    os.chdir(ROOT)
    services = Services(load_settings())
    needs = services.needs
    reader = needs.objects
    gold_files = [ROOT / "corpus/eval/dev.jsonl", *sorted((ROOT / "corpus/eval/fresh").glob("*.jsonl")),
                  ROOT / "corpus/eval/test.jsonl"]
    requests = {path: [i for i in load_gold(path, services.taxonomy) if i.kind != "volunteer"] for path in gold_files}
    texts = [i.text for items in requests.values() for i in items]
    variants = {"patterns alone": None, "patterns + parse": reader}
    reader.objects("Warm up the parser with one sentence that is long enough to be parsed.")

    speed, quality = {}, {}
    for name, objects in variants.items():
        needs.objects = objects
        medians = []
        for _ in range(args.repeat):
            times = []
            for text in texts:
                start = time.perf_counter()
                needs.extract(text, kind="request", reference=REFERENCE_DATE)
                times.append((time.perf_counter() - start) * 1000)
            medians.append(statistics.median(times))
        speed[name] = {"per_request_median_ms": round(statistics.median(medians), 2), "texts": len(texts)}
        for path, items in requests.items():
            tp = fp = fn = 0
            for item in items:
                counts = needs_counts(item.needs, needs.extract(item.text, kind=item.kind,
                                                                reference=REFERENCE_DATE).to_dict())["deliverable"]
                tp, fp, fn = tp + counts.tp, fp + counts.fp, fn + counts.fn
            quality.setdefault(str(path.relative_to(ROOT)), {})[name] = {"tp": tp, "fp": fp, "fn": fn}
    needs.objects = reader

    result = {"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "repeat": args.repeat,
              "model": reader.model, "speed": speed, "quality": quality}
    print(f"wrote {write_result(args.out, 'deliverable-parse', result)}")

    def pr(c: dict) -> str:
        p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
        r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
        return f"{p:.2f} / {r:.2f}"

    a, b = speed["patterns alone"], speed["patterns + parse"]
    print("| measure | patterns alone | patterns + parse | ratio |\n|---|---|---|---|")
    print(f"| needs of one request text, median ms ({a['texts']} texts) | {a['per_request_median_ms']} | "
          f"{b['per_request_median_ms']} | {b['per_request_median_ms'] / a['per_request_median_ms']:.2f}× |")
    totals = {name: {k: sum(row[name][k] for path, row in quality.items() if "test" not in path) for k in ("tp", "fp", "fn")}
              for name in variants}
    print(f"| deliverable P / R, dev + fresh sets | {pr(totals['patterns alone'])} | {pr(totals['patterns + parse'])} | |")
    test = quality["corpus/eval/test.jsonl"]
    print(f"| deliverable P / R, test (held out) | {pr(test['patterns alone'])} | {pr(test['patterns + parse'])} | |")


if __name__ == "__main__":
    main()
