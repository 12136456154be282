"""Sweep the semantic-tagging threshold per language on dev gold data."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from nlp_service.evaluation.gold import GoldItem
from nlp_service.evaluation.metrics import micro, set_counts
from nlp_service.extract.tagger import TaxonomyTagger


def sweep_thresholds(
    tagger: TaxonomyTagger, items: Sequence[GoldItem], grid: Sequence[float]
) -> dict[str, Any]:
    """Concept-level micro P/R/F1 for each threshold, per language (zh, en), semantic plus lexical tags.

    Texts are segmented, lexically tagged and embedded once; only the threshold changes per point.
    """
    if tagger.semantic is None:
        raise ValueError("threshold calibration needs a tagger with semantic tagging")
    semantic = tagger.semantic
    prepared = []
    for item in items:
        lexical = tagger.lexical.tag_tokens(item.text, tagger.segmenter.segment(item.text))
        clauses = tagger.segmenter.sentences(item.text)
        prepared.append((item, lexical, clauses))
    flat = [item.text[s:e] for item, _, clauses in prepared for s, e in clauses]
    vectors = semantic.embedder.embed(flat)
    sims_all = semantic.concept_similarities(vectors) if len(flat) else np.zeros((0, 0), dtype=np.float32)
    per_language: dict[str, Any] = {}
    for lang in ("zh", "en"):
        points = []
        for threshold in grid:
            counts = []
            row = 0
            for item, lexical, clauses in prepared:
                block = slice(row, row + len(clauses))
                row += len(clauses)
                if item.lang != lang:
                    continue
                already = {t.concept_id for t in lexical}
                extra = semantic.tag_clauses(item.text, clauses, vectors[block], lexical,
                                             thresholds={"zh": threshold, "en": threshold}, sims=sims_all[block])
                predicted = already | {t.concept_id for t in extra}
                counts.append(set_counts(predicted, item.concept_ids))
            total = micro(counts)
            points.append({"threshold": round(float(threshold), 4), "precision": round(total.precision, 4),
                           "recall": round(total.recall, 4), "f1": round(total.f1, 4)})
        best = max(points, key=lambda p: (p["f1"], p["threshold"]))
        per_language[lang] = {"items": sum(1 for i in items if i.lang == lang), "best_threshold": best["threshold"],
                              "best": best, "points": points}
    return {"per_language": per_language}
