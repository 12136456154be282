"""A learned reader of a request's deliverable: which clause names what the volunteer is asked to produce.

The deliverable patterns of :mod:`nlp_service.extract.needs` (a made-thing noun after a making verb, "做一本",
"design a one-page flyer") were written on the gold texts and find the right phrase about half the time on
posts written later: a deliverable is as often told through its use ("一个义工用手机也能更新的领养库") or one
ask among several. The reader is a logistic regression over a clause's sentence embedding and character
2-3-grams (:mod:`nlp_service.extract.clause_features`), trained on the clauses of the gold requests (positive:
the clause that holds the gold deliverable), and a request's deliverable is its most probable clause when that
probability reaches ``threshold``; the evidence is that clause. (Keeping the pattern's phrase when it lies inside
the chosen clause scored lower in cross-validation, F1 0.699 against 0.736: in a clause with several objects the
pattern often picks another one.)

Trained by ``nlp-service train-needs`` on the dev and fresh gold (never the test part or the held-out sets) and
saved as a self-describing folder (:mod:`nlp_service.extract.model_folder`): ``meta.json`` holds the embedder,
the training files and their hashes, the hyperparameters and what cross-validation found.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from nlp_service.errors import NlpServiceError
from nlp_service.extract.clause_features import CLAUSE_CHARS, HASH_FEATURES, char_hashing, clause_features
from nlp_service.extract.model_folder import read_model_folder, write_model_folder

logger = logging.getLogger(__name__)

FORMAT = 1
KIND = "deliverable-reader"

Span = tuple[int, int]


class NeedsModelError(NlpServiceError):
    """A deliverable reader folder that is missing, unreadable or made for another embedder."""


class DeliverableReader:
    """Picks the clause of a request that names its deliverable (see the module docstring)."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, meta: dict[str, Any],
                 embed: Callable[[Sequence[str]], np.ndarray]) -> None:
        self.coef = np.asarray(coef, dtype=np.float32).reshape(-1)
        self.intercept = float(np.asarray(intercept, dtype=np.float32).reshape(-1)[0])
        self.meta = dict(meta)
        self.threshold = float(self.meta["hyperparameters"]["threshold"])
        self.embed = embed
        self._hashing = char_hashing()
        digest = hashlib.sha256(self.coef.tobytes())
        digest.update(repr((self.intercept, self.threshold)).encode())
        self.fingerprint = digest.hexdigest()[:12]  # part of the analysis version of stored documents

    def probabilities(self, clauses: Sequence[str]) -> np.ndarray:
        if not clauses:
            return np.zeros(0, dtype=np.float32)
        return self._probabilities_of(clause_features(clauses, self.embed, self._hashing))

    def choose_many(self, texts: Sequence[str], clause_lists: Sequence[Sequence[Span]],
                    features=None) -> list[tuple[Span, float] | None]:
        """Per text, its most probable deliverable clause and the probability, or None below the threshold;
        ``features`` are the clauses' :func:`clause_features` (in order) when the caller has them."""
        if features is None:
            flat = [text[s:e] for text, spans in zip(texts, clause_lists) for s, e in spans]
            probs = iter(self.probabilities(flat).tolist())
        else:
            probs = iter(self._probabilities_of(features).tolist() if features.shape[0] else [])
        out: list[tuple[Span, float] | None] = []
        for spans in clause_lists:
            scored = [(next(probs), span) for span in spans]
            best = max(scored, default=None)
            out.append((best[1], best[0]) if best is not None and best[0] >= self.threshold else None)
        return out

    def _probabilities_of(self, features) -> np.ndarray:
        scores = np.asarray(features @ self.coef).reshape(-1) + self.intercept
        return 1.0 / (1.0 + np.exp(-scores))

    # -- training -------------------------------------------------------------------------------------
    @classmethod
    def train(cls, clauses: Sequence[str], positive: Sequence[bool], texts: Sequence[str], groups: Sequence[str],
              embed: Callable[[Sequence[str]], np.ndarray], *, embedder_name: str, sources: Sequence[dict[str, Any]],
              c: float = 3.0, threshold: float = 0.3,
              folds: int = 4) -> "DeliverableReader":
        """Fit on the clauses of gold requests: ``positive[i]`` when clause ``i`` holds its text's gold
        deliverable; ``texts[i]`` names its text and ``groups[i]`` its gold file (one cross-validation fold per
        group). Cross-validation scores the choice per text as ``evaluate`` does (a right clause is a hit)."""
        from sklearn.linear_model import LogisticRegression

        if not (len(clauses) == len(positive) == len(texts) == len(groups)):
            raise ValueError("clauses, positive, texts and groups must have the same length")
        labels = np.asarray(positive, dtype=int)
        if labels.sum() < 2 or labels.sum() == len(labels):
            raise NeedsModelError("deliverable reader training needs clauses with and without a gold deliverable")
        features = clause_features(clauses, embed)
        names = sorted(set(groups))
        cv: dict[str, Any] = {"folds": 0}
        if len(names) >= folds >= 2:
            out_of_fold = np.zeros(len(clauses))
            group_array = np.asarray(groups)
            for fold in range(folds):
                held = np.isin(group_array, names[fold::folds])
                model = LogisticRegression(C=c, max_iter=3000).fit(features[~held], labels[~held])
                out_of_fold[held] = model.predict_proba(features[held])[:, 1]
            cv = {"folds": folds, "grouped_by": "gold file", **_text_scores(out_of_fold, labels, texts, threshold)}
        logger.info("deliverable reader: fitting on %s clauses", len(clauses))
        model = LogisticRegression(C=c, max_iter=3000).fit(features, labels)
        meta = {
            "format": FORMAT,
            "kind": KIND,
            "embedder": embedder_name,
            "trained_on": list(sources),
            "clauses": len(clauses),
            "texts": len(set(texts)),
            "hyperparameters": {"c": c, "threshold": threshold, "hash_features": HASH_FEATURES,
                                "clause_chars": CLAUSE_CHARS},
            "cross_validation": cv,
        }
        return cls(model.coef_, model.intercept_, meta, embed)

    # -- the folder -----------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        write_model_folder(directory, {"coef": self.coef, "intercept": np.asarray([self.intercept], np.float32)},
                           self.meta)

    @classmethod
    def load(cls, directory: Path, embed: Callable[[Sequence[str]], np.ndarray], *,
             embedder_name: str) -> "DeliverableReader":
        meta, weights = read_model_folder(directory, KIND, FORMAT, ("coef", "intercept"), NeedsModelError)
        if meta.get("embedder") != embedder_name:
            raise NeedsModelError(f"the deliverable reader in {directory} was trained with embedder "
                                  f"{meta.get('embedder')!r}, not {embedder_name!r}; retrain it with "
                                  "'nlp-service train-needs'")
        return cls(weights["coef"], weights["intercept"], meta, embed)


def _text_scores(probabilities: np.ndarray, labels: np.ndarray, texts: Sequence[str], threshold: float) -> dict[str, Any]:
    """Per text: the best clause at or above the threshold is the prediction; P/R/F1 as in ``evaluate``."""
    best: dict[str, tuple[float, int]] = {}
    has_gold: dict[str, bool] = {}
    for p, label, text in zip(probabilities, labels, texts):
        has_gold[text] = has_gold.get(text, False) or bool(label)
        if text not in best or p > best[text][0]:
            best[text] = (float(p), int(label))
    tp = fp = fn = 0
    for text, (p, label) in best.items():
        predicted = p >= threshold
        if predicted and has_gold[text]:
            tp += label
            fp += 1 - label
            fn += 1 - label
        else:
            fp += int(predicted)
            fn += int(has_gold[text])
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    return {"texts": len(best), "precision": precision, "recall": recall,
            "f1": 2 * precision * recall / max(1e-9, precision + recall)}
