"""A learned concept detector: which taxonomy concept a clause talks about when it names none.

Labels and aliases find a skill that is named ("做账", "grant writing"); posts often describe it instead
("把纸质登记表录进系统", "whether this can ever pay for itself"). The detector is a multinomial logistic
regression over a clause's sentence embedding and its character 2-3-grams, with one class per concept the
gold offers or needs in a clause and a class ``NONE`` for clauses that offer or need nothing. It is trained on the gold files
(``nlp-service train-concepts``; never the test part or the held-out sets) and saved as a self-describing
folder (:mod:`nlp_service.extract.model_folder`): ``meta.json`` holds the embedder, the taxonomy version, the
training files and their hashes, the hyperparameters and what cross-validation found.

A clause gets at most ``per_clause`` concepts, each only when its probability reaches ``threshold`` and the
text has no tag of it yet: the detector adds recall where the labels are silent and never replaces them.
Roles are then assigned as for any tag.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from nlp_service.errors import NlpServiceError
from nlp_service.extract.clause_features import CLAUSE_CHARS, HASH_FEATURES, char_hashing, clause_features
from nlp_service.extract.model_folder import read_model_folder, write_model_folder

logger = logging.getLogger(__name__)

FORMAT = 1
KIND = "concept-detector"
NONE = "NONE"


class ConceptModelError(NlpServiceError):
    """A concept detector folder that is missing, unreadable or made for another embedder or taxonomy."""


class ConceptDetector:
    """Predicts the concepts a clause describes (see the module docstring)."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, classes: Sequence[str], meta: dict[str, Any],
                 embed: Callable[[Sequence[str]], np.ndarray]) -> None:
        self.coef = np.asarray(coef, dtype=np.float32)
        self.intercept = np.asarray(intercept, dtype=np.float32)
        self.classes = tuple(classes)
        self.meta = dict(meta)
        self.threshold = float(self.meta["hyperparameters"]["threshold"])
        self.per_clause = int(self.meta["hyperparameters"]["per_clause"])
        self.embed = embed  # the clause encoder (the tagger shares clause features with the deliverable reader)
        self._hashing = char_hashing()
        self._none = self.classes.index(NONE) if NONE in self.classes else -1
        digest = hashlib.sha256(self.coef.tobytes())
        digest.update(self.intercept.tobytes())
        digest.update(repr((self.threshold, self.per_clause)).encode())
        self.fingerprint = digest.hexdigest()[:12]  # part of the analysis version of stored documents

    def probabilities(self, clauses: Sequence[str]) -> np.ndarray:
        """(clauses x classes) probabilities."""
        if not clauses:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return self._probabilities_of(clause_features(clauses, self.embed, self._hashing))

    def detect(self, clauses: Sequence[str], features=None) -> list[list[tuple[str, float]]]:
        """Per clause, the concepts (with probability) at or above the threshold, best first; ``features`` are the
        clauses' :func:`clause_features` when the caller has them."""
        if features is None:
            return [self._best(row) for row in self.probabilities(clauses)]
        return [self._best(row) for row in self._probabilities_of(features)] if len(clauses) else []

    def _best(self, row: np.ndarray) -> list[tuple[str, float]]:
        out = []
        for column in np.argsort(-row)[: self.per_clause + 1]:
            if column == self._none:
                continue
            if row[column] < self.threshold or len(out) == self.per_clause:
                break
            out.append((self.classes[column], float(row[column])))
        return out

    # -- training -------------------------------------------------------------------------------------
    @classmethod
    def train(cls, clauses: Sequence[str], concepts: Sequence[frozenset[str]], groups: Sequence[str],
              embed: Callable[[Sequence[str]], np.ndarray], *, embedder_name: str, taxonomy_version: str,
              sources: Sequence[dict[str, Any]], c: float = 10.0, threshold: float = 0.3, per_clause: int = 2,
              folds: int = 4, known: Sequence[frozenset[str]] | None = None) -> "ConceptDetector":
        """Fit on gold clauses: ``concepts[i]`` are the concepts whose gold spans touch clause ``i`` (empty: NONE).
        ``groups`` (gold files) keep a file's clauses in one cross-validation fold; ``known`` are the concepts
        the labels already find in each clause's text, which the detector would not add again (for the
        cross-validated counts of what it adds)."""
        from sklearn.linear_model import LogisticRegression

        if not (len(clauses) == len(concepts) == len(groups)):
            raise ValueError("clauses, concepts and groups must have the same length")
        rows = [i for i, found in enumerate(concepts) for _ in (sorted(found) or [NONE])]
        labels = np.asarray([name for found in concepts for name in (sorted(found) or [NONE])])
        if len(set(labels) - {NONE}) < 2:
            raise ConceptModelError("concept detector training needs gold spans of at least two concepts")
        features = clause_features(clauses, embed)
        row_groups = np.asarray([groups[i] for i in rows])
        names = sorted(set(groups))
        cv: dict[str, Any] = {"folds": 0}
        if len(names) >= folds >= 2:
            added: Counter[str] = Counter()
            for fold in range(folds):
                logger.info("concept detector: cross-validation fold %s of %s", fold + 1, folds)
                held = set(names[fold::folds])
                keep = ~np.isin(row_groups, list(held))
                model = LogisticRegression(C=c, max_iter=2000).fit(features[np.asarray(rows)[keep]], labels[keep])
                test = [i for i, g in enumerate(groups) if g in held]
                fitted = cls(model.coef_, model.intercept_, [str(x) for x in model.classes_],
                             {"hyperparameters": {"threshold": threshold, "per_clause": per_clause}}, embed)
                for i, row in zip(test, fitted._probabilities_of(features[test])):
                    for concept, _ in fitted._best(row):
                        if known is not None and concept in known[i]:
                            continue
                        added["right" if concept in concepts[i] else "wrong"] += 1
            cv = {"folds": folds, "grouped_by": "gold file", "added_right": added["right"],
                  "added_wrong": added["wrong"],
                  "precision": added["right"] / max(1, added["right"] + added["wrong"])}
        logger.info("concept detector: fitting %s classes on %s clauses", len(set(labels)), len(clauses))
        model = LogisticRegression(C=c, max_iter=2000).fit(features[rows], labels)
        meta = {
            "format": FORMAT,
            "kind": KIND,
            "embedder": embedder_name,
            "taxonomy_version": taxonomy_version,
            "trained_on": list(sources),
            "clauses": len(clauses),
            "hyperparameters": {"c": c, "threshold": threshold, "per_clause": per_clause,
                                "hash_features": HASH_FEATURES, "clause_chars": CLAUSE_CHARS},
            "cross_validation": cv,
        }
        return cls(model.coef_, model.intercept_, [str(x) for x in model.classes_], meta, embed)

    def _probabilities_of(self, features) -> np.ndarray:
        """Softmax of the class scores of feature rows (what :meth:`probabilities` and cross-validation share)."""
        scores = np.asarray(features @ self.coef.T + self.intercept)
        scores -= scores.max(axis=1, keepdims=True)
        weights = np.exp(scores)
        return weights / weights.sum(axis=1, keepdims=True)

    # -- the folder -----------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        write_model_folder(directory, {"coef": self.coef, "intercept": self.intercept},
                           {**self.meta, "classes": list(self.classes)})

    @classmethod
    def load(cls, directory: Path, embed: Callable[[Sequence[str]], np.ndarray], *, embedder_name: str,
             taxonomy_version: str, concept_ids: frozenset[str] | set[str]) -> "ConceptDetector":
        meta, weights = read_model_folder(directory, KIND, FORMAT, ("coef", "intercept"), ConceptModelError)
        if meta.get("embedder") != embedder_name:
            raise ConceptModelError(f"the concept detector in {directory} was trained with embedder "
                                    f"{meta.get('embedder')!r}, not {embedder_name!r}; retrain it with "
                                    "'nlp-service train-concepts'")
        if meta.get("taxonomy_version") != taxonomy_version:
            raise ConceptModelError(f"the concept detector in {directory} was trained on taxonomy "
                                    f"{meta.get('taxonomy_version')!r}, not {taxonomy_version!r}; retrain it with "
                                    "'nlp-service train-concepts'")
        classes = meta.get("classes") or []
        unknown = [c for c in classes if c != NONE and c not in concept_ids]
        if weights["coef"].shape[0] != len(classes) or unknown:
            raise ConceptModelError(f"the concept detector in {directory} has classes that do not fit the taxonomy "
                                    f"({unknown[:3] or classes[:3]!r})")
        return cls(weights["coef"], weights["intercept"], classes, meta, embed)
