"""What the benchmarks of the learned models share (role_refiner.py, concept_detector.py, deliverable_reader.py,
deliverable_parse.py, paraphrase_recall.py): timing a tagger on the corpus, tagging gold in batches, writing the
result file. Imported by those scripts (run as ``.venv/bin/python bench/<name>.py``); no benchmark of its own."""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence


def time_tagging(tag_one: Callable[[Any], object], tag_all: Callable[[], object], items: Sequence[Any],
                 repeat: int) -> tuple[float, float]:
    """(median over ``repeat`` passes of the median ms of ``tag_one(item)`` per item, median s of ``tag_all()``)."""
    medians, batches = [], []
    for _ in range(repeat):
        times = []
        for item in items:
            start = time.perf_counter()
            tag_one(item)
            times.append((time.perf_counter() - start) * 1000)
        medians.append(statistics.median(times))
        start = time.perf_counter()
        tag_all()
        batches.append(time.perf_counter() - start)
    return round(statistics.median(medians), 2), round(statistics.median(batches), 2)


def tag_gold(tagger, items, batch_size: int = 32, **options) -> list:
    """``tagger.tag_many`` over gold items in batches, each with its kind, at the gold's reference date."""
    from nlp_service.evaluation.gold import REFERENCE_DATE

    predictions = []
    for start in range(0, len(items), batch_size):
        batch = items[start:start + batch_size]
        predictions += tagger.tag_many([i.text for i in batch], [i.kind or None for i in batch],
                                       reference=REFERENCE_DATE, **options)
    return predictions


def write_result(out_dir: Path, name: str, result: dict, indent: int = 2) -> Path:
    """``<out_dir>/<name>-<UTC timestamp>.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, ensure_ascii=False, indent=indent) + "\n", encoding="utf-8")
    return path
