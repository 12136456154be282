"""A learned correction of the rule-based tag roles (see :mod:`nlp_service.extract.roles`).

The cue rules were written on a few hundred gold texts and reach about 0.9 role accuracy there but
about 0.78 on texts written later. The refiner is a multinomial logistic regression over, per tag:
the rule's role, the text's kind, character n-grams of the words just before and after the tag, the tag's
concept and its category (each with the text's kind: some concepts are mostly an organisation's field,
others mostly the work asked for), and sentence embeddings of the tag's clause and of the words before it
in the clause. Tags of concepts the annotator did not label at all are learned as ``context`` at a lower
weight (a post's own "志愿者招募" header is no skill it needs). It is trained on
the gold files (``nlp-service train-roles``) and saved as a self-describing folder: ``meta.json``
(format, embedder, the rules' fingerprint, training files and their hashes, hyperparameters,
cross-validated accuracy of rules and refiner) and ``weights.npz`` (no pickle).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from nlp_service.errors import NlpServiceError
from nlp_service.extract.model_folder import read_model_folder, write_model_folder
from nlp_service.extract.roles import MATCHING_ROLES, ROLES, Role, clauses, only_false_negation

logger = logging.getLogger(__name__)

FORMAT = 1
_HASH_FEATURES = 2**14
_CONCEPT_FEATURES = 2**12
_LEFT_CHARS = 24
_RIGHT_CHARS = 12
_CLAUSE_CHARS = 200


class RoleModelError(NlpServiceError):
    """A role refiner folder that is missing, unreadable or made for another embedder or rule set."""


def rules_fingerprint() -> str:
    """A hash of the rule code whose output the refiner takes as a feature (retrain when it changes)."""
    import nlp_service.extract.roles as roles_module

    return hashlib.sha256(Path(roles_module.__file__).read_bytes()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class RoleInstance:
    """One tag in its text: what the refiner reads."""

    text: str
    kind: str | None
    start: int
    end: int
    rule_role: str
    clause: tuple[int, int]
    concept_id: str = ""
    category: str = ""

    @classmethod
    def of(cls, text: str, kind: str | None, start: int, end: int, rule_role: str,
           clause_spans: Sequence[tuple[int, int]] | None = None, *, concept_id: str = "",
           category: str = "") -> "RoleInstance":
        spans = clause_spans if clause_spans is not None else clauses(text)
        clause = next(((s, e) for s, e in spans if s <= start < e), (0, len(text)))
        return cls(text, kind, start, end, rule_role, clause, concept_id, category)

    @property
    def left(self) -> str:
        return self.text[max(self.clause[0], self.start - _LEFT_CHARS):self.start]

    @property
    def right(self) -> str:
        return self.text[self.end:min(self.clause[1], self.end + _RIGHT_CHARS)]

    @property
    def clause_text(self) -> str:
        return self.text[self.clause[0]:min(self.clause[1], self.clause[0] + _CLAUSE_CHARS)]


def _hashing():
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(analyzer="char_wb", ngram_range=(1, 3), n_features=_HASH_FEATURES,
                             alternate_sign=False, norm="l2")


def _concept_hashing():
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(analyzer=lambda names: names, n_features=_CONCEPT_FEATURES, alternate_sign=False,
                             norm=None)


def _concept_names(instance: RoleInstance) -> list[str]:
    kind = instance.kind or "-"
    return [f"c:{instance.concept_id}:{kind}", f"k:{instance.category}:{kind}", f"k:{instance.category}"]


def _features(instances: Sequence[RoleInstance], embed: Callable[[Sequence[str]], np.ndarray], rule_weight: float,
              hashing=None, concept_weight: float = 0.0, concept_hashing=None):
    from scipy import sparse

    rules = np.array([[i.rule_role == r for r in ROLES] + [i.kind == "request"] for i in instances], dtype=np.float32)
    grams = (hashing or _hashing()).transform([f"L:{i.left} R:{i.right}" for i in instances])
    blocks = [sparse.csr_matrix(rules * rule_weight), grams]
    if concept_weight:  # refiners trained before the concept features have none
        concepts = (concept_hashing or _concept_hashing()).transform([_concept_names(i) for i in instances])
        blocks.append(concepts * concept_weight)
    wanted = [i.clause_text or "-" for i in instances] + [i.left.strip() or "-" for i in instances]
    unique = list(dict.fromkeys(wanted))  # tags of one clause share its embedding
    row = {text: n for n, text in enumerate(unique)}
    vectors = embed(unique)[[row[text] for text in wanted]]
    dense = np.hstack([vectors[: len(instances)], vectors[len(instances):]]).astype(np.float32)
    return sparse.hstack([*blocks, sparse.csr_matrix(dense)]).tocsr()


class RoleRefiner:
    """Predicts a tag's role from its rule role and context (see the module docstring)."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, classes: Sequence[str], meta: dict[str, Any],
                 embed: Callable[[Sequence[str]], np.ndarray]) -> None:
        self.coef = np.asarray(coef, dtype=np.float32)
        self.intercept = np.asarray(intercept, dtype=np.float32)
        self.classes = tuple(classes)
        self.meta = dict(meta)
        self._embed = embed
        self._hashing = _hashing()  # stateless; built once, not per prediction
        self._concept_hashing = _concept_hashing()
        digest = hashlib.sha256(self.coef.tobytes())
        digest.update(self.intercept.tobytes())
        # changes whenever the weights change (part of the analysis version of stored documents)
        self.fingerprint = digest.hexdigest()[:12]

    def predict(self, instances: Sequence[RoleInstance]) -> list[Role]:
        if not instances:
            return []
        hyper = self.meta["hyperparameters"]
        features = _features(instances, self._embed, float(hyper["rule_weight"]), self._hashing,
                             float(hyper.get("concept_weight", 0.0)), self._concept_hashing)
        scores = np.asarray(features @ self.coef.T + self.intercept)
        if scores.shape[1] == 1:  # a two-class model keeps one row of weights
            scores = np.hstack([-scores, scores])
        predicted = [self.classes[i] for i in scores.argmax(axis=1)]
        return [_guarded(instance, new) for instance, new in zip(instances, predicted)]  # type: ignore[misc]

    # -- training -------------------------------------------------------------------------------------
    @classmethod
    def train(cls, instances: Sequence[RoleInstance], gold_roles: Sequence[str | None], groups: Sequence[str],
              embed: Callable[[Sequence[str]], np.ndarray], *, embedder_name: str, sources: Sequence[dict[str, Any]],
              c: float = 3.0, rule_weight: float = 0.1, concept_weight: float = 0.7, unlabelled_weight: float = 0.3,
              folds: int = 5) -> "RoleRefiner":
        """Fit on ``instances`` (tags the tagger found in gold texts) and their gold roles; ``groups`` (text
        ids) keep a text's tags in one cross-validation fold.

        A gold role of ``None`` is a tag of a concept the annotator did not label at all (the post's own
        "志愿者招募" header, a tool named in passing): it is learned as ``context`` with sample weight
        ``unlabelled_weight`` (0 leaves such tags out). Cross-validated accuracy counts labelled tags only."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GroupKFold

        if len(instances) != len(gold_roles) or len(instances) != len(groups):
            raise ValueError("instances, gold_roles and groups must have the same length")
        keep = [n for n, role in enumerate(gold_roles) if role is not None or unlabelled_weight > 0]
        instances = [instances[n] for n in keep]
        labelled = np.asarray([gold_roles[n] is not None for n in keep])
        labels = np.asarray([gold_roles[n] or "context" for n in keep])
        groups = [groups[n] for n in keep]
        weights = np.where(labelled, 1.0, unlabelled_weight)
        if len(set(labels[labelled])) < 2:
            raise RoleModelError("role refiner training needs gold tags of at least two roles")
        features = _features(instances, embed, rule_weight, concept_weight=concept_weight)
        predicted = np.empty(len(labels), dtype=object)
        splits = min(folds, len(set(groups)))
        if splits >= 2:
            for train, held in GroupKFold(splits).split(features, labels, groups):
                model = LogisticRegression(C=c, max_iter=3000).fit(features[train], labels[train],
                                                                   sample_weight=weights[train])
                predicted[held] = model.predict(features[held])
            predicted = np.asarray([_guarded(i, p) for i, p in zip(instances, predicted)], dtype=object)
        model = LogisticRegression(C=c, max_iter=3000).fit(features, labels, sample_weight=weights)
        rules = np.asarray([i.rule_role for i in instances])
        labels, predicted, rules = labels[labelled], predicted[labelled], rules[labelled]  # counts: labelled tags
        meta = {
            "format": FORMAT,
            "kind": "role-refiner",
            "embedder": embedder_name,
            "rules": rules_fingerprint(),
            "trained_on": list(sources),
            "instances": int(labelled.sum()),
            "unlabelled_instances": int((~labelled).sum()),
            "hyperparameters": {"c": c, "rule_weight": rule_weight, "concept_weight": concept_weight,
                                "unlabelled_weight": unlabelled_weight,
                                "hash_features": _HASH_FEATURES, "concept_features": _CONCEPT_FEATURES,
                                "left_chars": _LEFT_CHARS, "right_chars": _RIGHT_CHARS},
            "cross_validation": {
                "folds": splits,
                "tag_accuracy_rules": float((rules == labels).mean()),
                "tag_accuracy_refiner": float((predicted == labels).mean()) if splits >= 2 else None,
                "leaks_rules": int(sum(g not in MATCHING_ROLES and r in MATCHING_ROLES for g, r in zip(labels, rules))),
                "leaks_refiner": int(sum(g not in MATCHING_ROLES and p in MATCHING_ROLES for g, p in zip(labels, predicted)))
                if splits >= 2 else None,
            },
        }
        return cls(model.coef_, model.intercept_, [str(x) for x in model.classes_], meta, embed)

    # -- the folder -----------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write ``weights.npz`` and ``meta.json`` into a new folder, then move it into place."""
        write_model_folder(directory, {"coef": self.coef, "intercept": self.intercept},
                           {**self.meta, "classes": list(self.classes)})

    @classmethod
    def load(cls, directory: Path, embed: Callable[[Sequence[str]], np.ndarray], *, embedder_name: str) -> "RoleRefiner":
        meta, weights = read_model_folder(directory, "role-refiner", FORMAT, ("coef", "intercept"), RoleModelError)
        coef, intercept = weights["coef"], weights["intercept"]
        if meta.get("embedder") != embedder_name:
            raise RoleModelError(f"the role refiner in {directory} was trained with embedder {meta.get('embedder')!r}, "
                                 f"not {embedder_name!r}; retrain it with 'nlp-service train-roles'")
        if meta.get("rules") != rules_fingerprint():
            raise RoleModelError(f"the role refiner in {directory} was trained on other role rules; retrain it with "
                                 "'nlp-service train-roles'")
        classes = meta.get("classes") or []
        if coef.shape[0] not in (len(classes), 1 if len(classes) == 2 else -1) or any(c not in ROLES for c in classes):
            raise RoleModelError(f"the role refiner in {directory} has inconsistent classes {classes!r}")
        return cls(coef, intercept, classes, meta, embed)


def _guarded(instance: RoleInstance, predicted: str) -> str:
    """The refiner's role, within what the text's words allow. An explicit negation found by the rules stands
    (their "declined" is right ~97% of the time on the dev and fresh gold, and a negated skill read as needed
    is the costliest error); and a clause whose only negation-like words are no negation ("写接口、做数据库设计都
    没问题", "not only") declines nothing."""
    if instance.rule_role == "declined":
        return "declined"
    if predicted == "declined" and only_false_negation(instance.text, *instance.clause):
        return instance.rule_role
    return predicted
