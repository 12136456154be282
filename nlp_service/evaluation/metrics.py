"""Precision, recall and F1 from counts, micro and macro, at set and span level. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence


@dataclass(frozen=True, slots=True)
class PRF:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        # No prediction at all: precision is undefined; report 1.0 when nothing was expected either, else 0.
        if self.tp + self.fp == 0:
            return 1.0 if self.fn == 0 else 0.0
        return self.tp / (self.tp + self.fp)

    @property
    def recall(self) -> float:
        if self.tp + self.fn == 0:
            return 1.0 if self.fp == 0 else 0.0
        return self.tp / (self.tp + self.fn)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)

    def __add__(self, other: "PRF") -> "PRF":
        return PRF(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def to_dict(self) -> dict[str, float | int]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": round(self.precision, 4),
                "recall": round(self.recall, 4), "f1": round(self.f1, 4),
                "support": self.tp + self.fn}


ZERO = PRF(0, 0, 0)


def set_counts(predicted: Iterable[str], gold: Iterable[str]) -> PRF:
    """Counts for one text; duplicates collapse (a concept is tagged once per text)."""
    p, g = set(predicted), set(gold)
    return PRF(len(p & g), len(p - g), len(g - p))


def micro(counts: Iterable[PRF]) -> PRF:
    total = ZERO
    for c in counts:
        total = total + c
    return total


def macro_f1(per_class: dict[str, PRF]) -> dict[str, float]:
    """Unweighted mean of per-class precision, recall, F1 over classes that occur in gold or predictions."""
    classes = [c for c in per_class.values() if c.tp + c.fp + c.fn > 0]
    if not classes:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    n = len(classes)
    return {
        "precision": round(sum(c.precision for c in classes) / n, 4),
        "recall": round(sum(c.recall for c in classes) / n, 4),
        "f1": round(sum(c.f1 for c in classes) / n, 4),
    }


Span = tuple[int, int]


def span_counts(predicted: Sequence[Span], gold: Sequence[Span], *, overlap: bool) -> PRF:
    """Exact: identical offsets. Overlap: a one-to-one pairing of spans that share at least one character."""
    pred, ref = sorted(set(predicted)), sorted(set(gold))
    if not overlap:
        hits = len(set(pred) & set(ref))
        return PRF(hits, len(pred) - hits, len(ref) - hits)
    used: set[int] = set()
    hits = 0
    for ps, pe in pred:
        for j, (gs, ge) in enumerate(ref):
            if j not in used and ps < ge and gs < pe:
                used.add(j)
                hits += 1
                break
    return PRF(hits, len(pred) - hits, len(ref) - hits)


def r_precision_at_k(ranked: Sequence[str], relevant: set[str], k: int = 5) -> float:
    """Relevant items in the top min(k, |relevant|), over min(k, |relevant|) (Decorte et al.)."""
    if not relevant:
        return 0.0
    cutoff = min(k, len(relevant))
    return len([r for r in ranked[:cutoff] if r in relevant]) / cutoff


def reciprocal_rank(ranked: Sequence[str], relevant: set[str]) -> float:
    for position, item in enumerate(ranked, start=1):
        if item in relevant:
            return 1.0 / position
    return 0.0
