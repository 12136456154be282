"""Evaluate ranked matches against a graded match gold (corpus/eval/match_{dev,test}.jsonl).

Each gold line is a request with coordinator judgements of volunteers: 2 contact first, 1 worth a look,
0 not relevant; unjudged volunteers count as 0. Reported per language: strict P@1 (top match graded 2),
lenient P@1 (graded >= 1), nDCG@5 (gain 2^grade - 1) and the share of the top 5 written in the query's
language, each with a bootstrap 95% interval over requests.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from nlp_service.errors import GoldDataError
from nlp_service.jsonl import JsonLineError, iter_jsonl
from nlp_service.matching import BANDS, Matcher, RankingWeights

if TYPE_CHECKING:
    from nlp_service.index.store import LoadedIndex


@dataclass(frozen=True, slots=True)
class MatchGoldItem:
    id: str
    lang: str
    split: str
    request: str
    grades: dict[str, int]


def load_match_gold(path: Path, known_ids: set[str] | None = None) -> list[MatchGoldItem]:
    path = Path(path)
    if not path.is_file():
        raise GoldDataError(f"match gold file {path} does not exist")
    try:
        rows = list(iter_jsonl(path))
    except JsonLineError as exc:
        raise GoldDataError(str(exc)) from exc
    items = []
    for where, raw in rows:
        if not isinstance(raw, dict) or not isinstance(raw.get("request"), str) or not isinstance(raw.get("id"), str):
            raise GoldDataError(f"{where}: each line needs string 'id' and 'request'")
        grades: dict[str, int] = {}
        for judgement in raw.get("judgements", []):
            doc_id, grade = judgement.get("id"), judgement.get("grade")
            if grade not in (0, 1, 2) or not isinstance(doc_id, str):
                raise GoldDataError(f"{where}: a judgement needs an 'id' and a grade 0, 1 or 2")
            if known_ids is not None and doc_id not in known_ids:
                raise GoldDataError(f"{where}: judged document {doc_id!r} is not in the index")
            if doc_id in grades:
                raise GoldDataError(f"{where}: {doc_id} is judged twice")
            grades[doc_id] = grade
        if len(grades) < 5:
            raise GoldDataError(f"{where}: at least 5 judgements are needed, got {len(grades)}")
        items.append(MatchGoldItem(raw["id"], raw.get("lang", "zh"), raw.get("split", ""), raw["request"], grades))
    if not items:
        raise GoldDataError(f"match gold file {path} is empty")
    return items


def dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(rank + 2) for rank, g in enumerate(gains))


def ndcg_at(ranked: Sequence[str], grades: dict[str, int], k: int = 5) -> float:
    gains = [2 ** grades.get(doc, 0) - 1 for doc in ranked[:k]]
    ideal = sorted((2 ** g - 1 for g in grades.values()), reverse=True)[:k]
    best = dcg(ideal)
    return dcg(gains) / best if best > 0 else 0.0


def bootstrap_interval(values: Sequence[float], *, rounds: int = 2000, seed: int = 7) -> tuple[float, float]:
    """Percentile 95% interval of the mean, resampling requests with replacement."""
    if not values:
        return (0.0, 0.0)
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds))
    return (round(means[int(0.025 * rounds)], 4), round(means[int(0.975 * rounds) - 1], 4))


def _summary(values: Sequence[float]) -> dict[str, Any]:
    mean = sum(values) / len(values) if values else 0.0
    low, high = bootstrap_interval(values)
    return {"mean": round(mean, 4), "ci95": [low, high], "n": len(values)}


def _same_language(query_lang: str, doc_lang: str) -> bool:
    return doc_lang == query_lang or "mixed" in (doc_lang, query_lang)


def rank_requests(matcher: Matcher, index: "LoadedIndex", items: Sequence[MatchGoldItem], *, k: int = 10,
                  progress: Callable[[int], None] | None = None) -> list[list[tuple[str, float, str]]]:
    """(id, score, band) of the top ``k`` volunteers for every gold request."""
    out = []
    for item in items:
        result = matcher.match(index, item.request, "request", k)
        out.append([(m.id, m.score, m.band) for m in result.matches])
        if progress is not None:
            progress(1)
    return out


def score_rankings(items: Sequence[MatchGoldItem], rankings: Sequence[Sequence[tuple[str, float, str]]],
                   index: "LoadedIndex") -> dict[str, Any]:
    per_lang: dict[str, dict[str, list[float]]] = {}
    band_counts = {b: {"count": 0, "grade2": 0, "grade1plus": 0} for b in BANDS}
    misses = []
    for item, ranked in zip(items, rankings):
        ids = [doc for doc, _, _ in ranked]
        top = item.grades.get(ids[0], 0) if ids else 0
        langs = [index.documents[d].lang for d in ids[:5] if d in index.documents]
        row = per_lang.setdefault(item.lang, {"p1_strict": [], "p1_lenient": [], "ndcg5": [], "same_lang_top5": []})
        for table in (row, per_lang.setdefault("all", {"p1_strict": [], "p1_lenient": [], "ndcg5": [],
                                                       "same_lang_top5": []})):
            table["p1_strict"].append(float(top == 2))
            table["p1_lenient"].append(float(top >= 1))
            table["ndcg5"].append(ndcg_at(ids, item.grades, 5))
            table["same_lang_top5"].append(sum(_same_language(item.lang, l) for l in langs) / max(1, len(langs)))
        for doc, _, band in ranked[:5]:
            grade = item.grades.get(doc, 0)
            band_counts[band]["count"] += 1
            band_counts[band]["grade2"] += grade == 2
            band_counts[band]["grade1plus"] += grade >= 1
        if top != 2:
            best = sorted((d for d, g in item.grades.items() if g == 2))
            misses.append({"id": item.id, "lang": item.lang, "top": ids[0] if ids else None, "top_grade": top,
                           "grade2": best, "request": item.request})
    return {
        "requests": len(items),
        "per_language": {lang: {metric: _summary(v) for metric, v in table.items()} for lang, table in per_lang.items()},
        "bands": {b: {**c, "share_grade2": round(c["grade2"] / c["count"], 3) if c["count"] else None}
                  for b, c in band_counts.items()},
        "misses": misses,
    }


def calibrate_bands(items: Sequence[MatchGoldItem], rankings: Sequence[Sequence[tuple[str, float, str]]], *,
                    strong_precision: float = 0.75, possible_precision: float = 0.5) -> tuple[float, float]:
    """Band thresholds from dev judgements: the lowest score above which at least ``strong_precision`` of the
    top-5 matches are graded 2 (strong), and ``possible_precision`` are graded >= 1 (possible)."""
    scored = sorted(((score, item.grades.get(doc, 0)) for item, ranked in zip(items, rankings)
                     for doc, score, _ in ranked[:5]), reverse=True)

    def lowest(predicate, precision: float) -> float:
        hits = 0
        best = scored[0][0] + 1e-6 if scored else 1.0
        for n, (score, grade) in enumerate(scored, start=1):
            hits += predicate(grade)
            if hits / n >= precision and n >= 5:
                best = score
        return round(best, 3)

    strong = lowest(lambda g: g == 2, strong_precision)
    possible = min(strong, lowest(lambda g: g >= 1, possible_precision))
    return strong, possible


BASELINES: dict[str, RankingWeights] = {
    "cosine only (naive)": RankingWeights(skills=0.0, location=0.0, language=0.0, hours=0.0, declined=0.0),
    "cosine + skill overlap (previous ranking)": RankingWeights(skills=0.25, location=0.0, language=0.0, hours=0.0,
                                                                 declined=0.0),
}


def evaluate_matching(matcher: Matcher, index: "LoadedIndex", items: Sequence[MatchGoldItem], *,
                      baselines: bool = True, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """The service's ranking and (side by side, same run) the naive baselines."""
    variants = {"service": matcher.weights}
    if baselines:
        variants.update(BASELINES)
    out: dict[str, Any] = {}
    for name, weights in variants.items():
        variant = Matcher(matcher.tagger, matcher.embedder, tag_weight=weights.skills,
                          candidate_pool=matcher.candidate_pool, weights=replace(weights, strong=matcher.weights.strong,
                                                                                 possible=matcher.weights.possible),
                          query_semantic_tags=matcher.query_semantic_tags)
        rankings = rank_requests(variant, index, items, progress=progress)
        out[name] = score_rankings(items, rankings, index)
        if name == "service":
            strong, possible = calibrate_bands(items, rankings)
            # the thresholds this gold would give (set RankingWeights.strong / .possible from match_dev's)
            out[name]["band_thresholds"] = {"in_use": {"strong": matcher.weights.strong,
                                                       "possible": matcher.weights.possible},
                                            "calibrated": {"strong": strong, "possible": possible}}
    return out
