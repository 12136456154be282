"""Would a learned clause -> concept classifier find the skills that no label word names? Measured beside the
shipped tagger (lexical tags with refined roles) in one run; nothing here is part of the service yet.

    .venv/bin/python bench/clause_classifier.py [--c 4] [--min-positive 4] [--out bench/results]

Every clause (the segmenter's clause spans) of every gold text is embedded with the service's sentence
encoder. For each concept with at least ``--min-positive`` clauses that hold an offered/needed gold span in
the training files (dev + fresh: the refiner's training data), a logistic regression on the clause vectors
says whether the clause asks for or offers that concept. A text gains a concept when one of its clauses
scores at least the threshold and the tagger found no mention of it at all (any role); the added tag takes
the text's base role (offered for volunteers, needed for requests).

Reported per threshold, beside the tagger alone: offered/needed tag P/R/F1 and the added tags right and
wrong, (a) in 5-fold cross-validation by file on the training files (the tagger's aliases were mined from
these files, so its recall there is high and the classifier has less to add), (b) on the test part and
(c) on the held-out sets, with the classifier trained on all training files. Also the median time to embed
one text's clauses, the cost the service would pay per document.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--c", type=float, default=4.0, help="inverse regularisation of each concept's model")
    parser.add_argument("--min-positive", type=int, default=4, help="training clauses a concept needs (default 4)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    from nlp_service.evaluation.gold import REFERENCE_DATE, load_gold
    from nlp_service.evaluation.role_training import default_training_files
    from nlp_service.extract.roles import MATCHING_ROLES
    from nlp_service.services import Services
    from nlp_service.settings import load_settings

    os.chdir(ROOT)
    services = Services(load_settings())
    tagger = services.tagger
    parts = {"train": default_training_files(), "test": [Path("corpus/eval/test.jsonl")],
             "heldout": sorted(Path("corpus/eval/heldout").glob("*.jsonl"))}
    texts: dict[str, list[dict]] = {}
    embed_times = []
    for part, files in parts.items():
        texts[part] = []
        for path in files:
            items = load_gold(path, services.taxonomy)
            results = tagger.tag_many([i.text for i in items], [i.kind for i in items], reference=REFERENCE_DATE,
                                      semantic=False)
            for item, result in zip(items, results):
                clauses = tagger.segmenter.sentences(item.text)
                started = time.perf_counter()
                vectors = services.embedder.embed([item.text[a:b] for a, b in clauses]) if clauses else None
                embed_times.append(time.perf_counter() - started)
                positives = {(row, label.concept_id) for label in item.labels if label.role in MATCHING_ROLES
                             for a, b in label.spans for row, (ca, cb) in enumerate(clauses) if a < cb and ca < b}
                texts[part].append({"file": str(path), "vectors": vectors, "positives": positives,
                                    "gold": {c for c, r in item.roles.items() if r in MATCHING_ROLES},
                                    "found": {t.concept_id for t in result.tags},
                                    "tagged": {t.concept_id for t in result.tags if t.role in MATCHING_ROLES}})

    def fit_score(train: list[dict], apply: list[dict]) -> list[dict[str, float]]:
        rows = [(n, r) for n, t in enumerate(train) if t["vectors"] is not None for r in range(len(t["vectors"]))]
        x = np.vstack([t["vectors"] for t in train if t["vectors"] is not None])
        index = {key: k for k, key in enumerate(rows)}
        positives: dict[str, set[int]] = {}
        for n, t in enumerate(train):
            for row, concept in t["positives"]:
                positives.setdefault(concept, set()).add(index[(n, row)])
        concepts = sorted(c for c, rows_ in positives.items() if len(rows_) >= args.min_positive)
        embedded = [n for n, t in enumerate(apply) if t["vectors"] is not None]
        targets = np.vstack([apply[n]["vectors"] for n in embedded])  # every clause to score, in one matrix
        ends = np.cumsum([len(apply[n]["vectors"]) for n in embedded])
        scores = [dict() for _ in apply]
        for concept in concepts:
            y = np.zeros(len(rows))
            y[list(positives[concept])] = 1
            probability = LogisticRegression(C=args.c, max_iter=300).fit(x, y).predict_proba(targets)[:, 1]
            for n, block in zip(embedded, np.split(probability, ends[:-1])):
                scores[n][concept] = float(block.max())
        return scores

    def table(data: list[dict], scores: list[dict[str, float]]) -> list[dict]:
        out = []
        for threshold in (None, *THRESHOLDS):
            tp = fp = fn = right = wrong = 0
            for t, s in zip(data, scores):
                predicted = set(t["tagged"])
                if threshold is not None:
                    added = {c for c, v in s.items() if v >= threshold and c not in t["found"]}
                    right += len(added & t["gold"])
                    wrong += len(added - t["gold"])
                    predicted |= added
                tp += len(predicted & t["gold"])
                fp += len(predicted - t["gold"])
                fn += len(t["gold"] - predicted)
            p = tp / (tp + fp) if tp + fp else 0.0
            r = tp / (tp + fn) if tp + fn else 0.0
            out.append({"threshold": threshold, "precision": round(p, 3), "recall": round(r, 3),
                        "f1": round(2 * p * r / (p + r) if p + r else 0.0, 3), "added_right": right, "added_wrong": wrong})
        return out

    train = texts["train"]
    folds: list[dict] = [dict() for _ in train]
    groups = [t["file"] for t in train]
    for fit_rows, held_rows in GroupKFold(5).split(train, groups=groups):
        for n, s in zip(held_rows, fit_score([train[i] for i in fit_rows], [train[i] for i in held_rows])):
            folds[n] = s
    unseen = texts["test"] + texts["heldout"]
    scores = fit_score(train, unseen)
    report = {
        "when": dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
        "embedder": services.embedder.name, "taxonomy": services.taxonomy.full_version,
        "c": args.c, "min_positive": args.min_positive,
        "texts": {k: len(v) for k, v in texts.items()},
        "median_clause_embedding_ms_per_text": round(statistics.median(embed_times) * 1000, 2),
        "cv_training_files": table(train, folds),
        "test": table(texts["test"], scores[: len(texts["test"])]),
        "heldout": table(texts["heldout"], scores[len(texts["test"]):]),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"clause-classifier-{report['when']}.json"
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    for part in ("cv_training_files", "test", "heldout"):
        print(part)
        for row in report[part]:
            label = "tagger alone" if row["threshold"] is None else f"+ classifier >= {row['threshold']}"
            print(f"  {label:24s} P {row['precision']:.3f} R {row['recall']:.3f} F1 {row['f1']:.3f}"
                  f"  added right {row['added_right']} wrong {row['added_wrong']}")
    print(f"median clause embedding per text: {report['median_clause_embedding_ms_per_text']} ms; wrote {path}")


if __name__ == "__main__":
    main()
