"""Taxonomy tagging: lexical longest match over labels in both languages, plus semantic tagging of
clauses that share no label word with any concept."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np

from nlp_service.extract.clause_features import clause_features
from nlp_service.extract.needs import Needs, NeedsExtractor
from nlp_service.extract.script import to_simplified
from nlp_service.extract.needs import language_code
from nlp_service.extract.roles import MATCHING_ROLES, SPOKEN_LANGUAGE, Role, RoleAssigner, RoleSpan
from nlp_service.extract.segment import BilingualSegmenter, Lang, Token, detect_language
from nlp_service.extract.taxonomy import Concept, Taxonomy
from nlp_service.index.embedder import Embedder

if TYPE_CHECKING:
    from nlp_service.extract.concept_model import ConceptDetector
    from nlp_service.extract.role_model import RoleRefiner

logger = logging.getLogger(__name__)

Method = Literal["lexical", "semantic", "learned"]  # learned: the concept detector
MAX_CLAUSE_CHARS = 400


@dataclass(frozen=True, slots=True)
class Tag:
    """One taxonomy hit in a text; ``text[start:end] == surface``."""

    concept_id: str
    label_en: str
    label_zh: str
    category: str
    start: int
    end: int
    surface: str
    method: Method
    score: float
    role: Role = "offered"  # offered / needed / declined / context (see nlp_service.extract.roles)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["score"] = round(float(self.score), 4)
        return data

    @classmethod
    def from_dict(cls, raw: dict) -> "Tag":
        return cls(**{**raw, "score": float(raw["score"]), "role": raw.get("role", "offered")})


@dataclass(frozen=True, slots=True)
class TaggedText:
    lang: Lang
    tags: tuple[Tag, ...]
    kind: str | None = None
    needs: Needs | None = None

    @property
    def concept_ids(self) -> frozenset[str]:
        """Concepts the text offers or needs (declined and context mentions left out)."""
        return frozenset(t.concept_id for t in self.tags if t.role in MATCHING_ROLES)

    @property
    def declined_ids(self) -> frozenset[str]:
        return frozenset(t.concept_id for t in self.tags if t.role == "declined")

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"lang": self.lang, "kind": self.kind, "tags": [t.to_dict() for t in self.tags]}
        if self.needs is not None:
            data["needs"] = self.needs.to_dict()
        return data


@dataclass(frozen=True, slots=True)
class _LabelPattern:
    concept_id: str
    keys: tuple[str, ...]
    exact_case: tuple[str | None, ...]  # a required surface per token, for short capitalised acronyms
    capitalised: bool = False  # a product name that is also an English word: "Excel", "Illustrator"


def _is_acronym(token: Token) -> bool:
    return token.lang == "en" and token.text.isupper() and token.text.isalpha() and len(token.text) <= 5


class LexicalTagger:
    """Longest match of label token sequences over the text's tokens.

    English compares lower-cased lemmas on token (word) boundaries; Chinese compares jieba segments, so a
    label only fires on segment boundaries. Short all-capital acronyms ("R", "PS", "HR") match in capitals
    only, or in lower case right beside Chinese ("会ps").
    """

    def __init__(self, taxonomy: Taxonomy, segmenter: BilingualSegmenter) -> None:
        self._taxonomy = taxonomy
        self._segmenter = segmenter
        self._patterns: dict[tuple[str, ...], list[_LabelPattern]] = {}
        self.max_len = 1
        for concept in taxonomy:
            for label in dict.fromkeys(concept.labels):
                tokens = [t for t in segmenter.segment(label)]
                if not tokens:
                    continue
                keys = tuple(t.key for t in tokens)
                exact = tuple(t.text if _is_acronym(t) else None for t in tokens)
                capitalised = label in taxonomy.capitalised_only
                bucket = self._patterns.setdefault(keys, [])
                pattern = _LabelPattern(concept.id, keys, exact, capitalised)
                if pattern not in bucket:
                    bucket.append(pattern)
                self.max_len = max(self.max_len, len(keys))

    def tag_tokens(self, text: str, tokens: Sequence[Token]) -> list[Tag]:
        """Every mention, in text order: a concept declined in one clause and needed in another ("不用做海报。……
        想请人做一张活动海报") keeps a tag, and a role, for each."""
        tags: list[Tag] = []
        keys = [t.key for t in tokens]
        i = 0
        n = len(tokens)
        while i < n:
            matched = 0
            for length in range(min(self.max_len, n - i), 0, -1):
                candidates = self._patterns.get(tuple(keys[i : i + length]))
                if not candidates:
                    continue
                window = tokens[i : i + length]
                pattern = next((p for p in candidates if _case_ok(p, window, text)), None)
                if pattern is None:
                    continue
                if not _contiguous(text, window):
                    continue
                start, end = window[0].start, window[-1].end
                tags.append(_make_tag(self._taxonomy[pattern.concept_id], text, start, end, "lexical", 1.0))
                matched = length
                break
            i += matched or 1
        return tags


def _case_ok(pattern: _LabelPattern, window: Sequence[Token], text: str) -> bool:
    for required, token in zip(pattern.exact_case, window):
        if required is None or token.text == required:
            continue
        # Chinese writers often lower-case acronyms ("会ps", "做ppt"): accept that only beside Chinese.
        if token.text.upper() != required or not _next_to_han(text, token):
            return False
    if pattern.capitalised and not window[0].text[:1].isupper():
        # "excel at", "an illustrator": the lower-case word counts as the product only beside Chinese.
        return _next_to_han(text, window[0])
    return True


def _next_to_han(text: str, token: Token) -> bool:
    before = text[: token.start].rstrip()[-1:]
    after = text[token.end :].lstrip()[:1]
    return any("\u3400" <= ch <= "\u9fff" for ch in before + after)


def _contiguous(text: str, window: Sequence[Token]) -> bool:
    """Tokens of one label may be separated by spaces only (not by punctuation or a line break)."""
    for left, right in zip(window, window[1:]):
        gap = text[left.end : right.start]
        if gap.strip(" \t") or len(gap) > 2:
            return False
    return True


def _make_tag(concept: Concept, text: str, start: int, end: int, method: Method, score: float) -> Tag:
    return Tag(
        concept_id=concept.id,
        label_en=concept.label_en,
        label_zh=concept.label_zh,
        category=concept.category,
        start=start,
        end=end,
        surface=text[start:end],
        method=method,
        score=float(score),
    )


class SemanticTagger:
    """Tags clauses whose embedding is close to a concept's label embeddings (max over labels)."""

    def __init__(
        self,
        taxonomy: Taxonomy,
        embedder: Embedder,
        thresholds: dict[str, float],
        *,
        label_vectors: np.ndarray | None = None,
        per_clause: int = 1,
        min_clause_chars: int = 6,
    ) -> None:
        self._taxonomy = taxonomy
        self.embedder = embedder
        self.thresholds = dict(thresholds)
        self.per_clause = per_clause
        # Very short clauses ("本人律师") sit close to many labels of their field: leave them to lexical tagging.
        self.min_clause_chars = min_clause_chars
        concept_ids = [c.id for c in taxonomy]
        self._concept_ids = concept_ids
        owners: list[int] = []
        labels: list[str] = []
        for number, concept in enumerate(taxonomy):
            for label in dict.fromkeys(concept.labels):
                labels.append(label)
                owners.append(number)
        self._owners = np.asarray(owners, dtype=np.int64)
        if label_vectors is None:
            logger.info("embedding %s taxonomy labels with %s", len(labels), embedder.name)
            label_vectors = embedder.embed(labels)
        if label_vectors.shape != (len(labels), embedder.dimension):
            raise ValueError(
                f"label vectors have shape {label_vectors.shape}, expected {(len(labels), embedder.dimension)}"
            )
        self.label_vectors = np.ascontiguousarray(label_vectors, dtype=np.float32)

    def concept_similarities(self, clause_vectors: np.ndarray) -> np.ndarray:
        """(clauses x concepts) max cosine over each concept's labels."""
        sims = clause_vectors @ self.label_vectors.T
        out = np.full((sims.shape[0], len(self._concept_ids)), -1.0, dtype=np.float32)
        np.maximum.at(out.T, self._owners, sims.T)
        return out

    def tag_clauses(
        self,
        text: str,
        clauses: Sequence[tuple[int, int]],
        clause_vectors: np.ndarray,
        lexical: Sequence[Tag],
        thresholds: dict[str, float] | None = None,
        sims: np.ndarray | None = None,
    ) -> list[Tag]:
        """Semantic tags for clauses that hold no lexical tag (paraphrases that share no label word)."""
        if not clauses:
            return []
        already = {t.concept_id for t in lexical}
        thresholds = thresholds or self.thresholds
        if sims is None:
            sims = self.concept_similarities(clause_vectors)
        best: dict[str, Tag] = {}
        for row, (start, end) in enumerate(clauses):
            if end - start < self.min_clause_chars:
                continue
            if any(start <= t.start and t.end <= end for t in lexical):
                continue  # a label already explains this clause
            lang = detect_language(text[start:end])
            if lang == "mixed":  # be as strict as the stricter language
                threshold = max(thresholds["zh"], thresholds["en"])
            else:
                threshold = thresholds[lang]
            order = np.argsort(-sims[row])[: self.per_clause]
            for column in order:
                score = float(sims[row, column])
                if score < threshold:
                    break
                concept_id = self._concept_ids[column]
                if concept_id in already:
                    # The clause's best concept is already evidenced by a label: the clause is explained.
                    break
                if concept_id not in best or best[concept_id].score < score:
                    best[concept_id] = _make_tag(self._taxonomy[concept_id], text, start, end, "semantic", score)
        return list(best.values())


class TaxonomyTagger:
    """Lexical tags first; semantic tags (when an embedder is given) for concepts not found lexically."""

    def __init__(
        self,
        taxonomy: Taxonomy,
        segmenter: BilingualSegmenter,
        semantic: SemanticTagger | None = None,
        *,
        roles: RoleAssigner | None = None,
        needs: NeedsExtractor | None = None,
        refiner: "RoleRefiner | None" = None,
        detector: "ConceptDetector | None" = None,
    ) -> None:
        self.taxonomy = taxonomy
        self.refiner = refiner  # a learned correction of the rule roles (nlp_service.extract.role_model)
        self.detector = detector  # concepts described without a label (nlp_service.extract.concept_model)
        self.segmenter = segmenter
        self.lexical = LexicalTagger(taxonomy, segmenter)
        self.semantic = semantic
        self.roles = roles or RoleAssigner()
        self.needs = needs

    def _role_category(self, concept_id: str, category: str) -> str:
        """A concept's category for the role rules; a language one speaks ("in Cantonese or English") is no
        activity that takes an object, unlike translating or interpreting."""
        if category == "translation_languages":
            name = self.taxonomy.concepts[concept_id].label_en.casefold().removesuffix(" language")
            if language_code(name) or language_code(name.split()[0]):
                return SPOKEN_LANGUAGE
        return category

    def _refine(self, texts: Sequence[str], kinds: Sequence[str | None], tag_lists: list[list[Tag]],
                refiner: "RoleRefiner") -> list[list[Tag]]:
        from nlp_service.extract.role_model import RoleInstance
        from nlp_service.extract.roles import clauses, infer_kind

        instances = []
        for text, kind, tags in zip(texts, kinds, tag_lists):
            spans = clauses(text) if tags else []
            kind = kind or infer_kind(text)
            instances += [RoleInstance.of(text, kind, t.start, t.end, t.role, spans, concept_id=t.concept_id,
                                          category=t.category) for t in tags]
        refined = iter(refiner.predict(instances))
        return [[replace(t, role=next(refined)) for t in tags] for tags in tag_lists]

    def _detect(self, texts: Sequence[str], clause_lists, flat: Sequence[str], features,
                found: Sequence[Sequence[Tag]]) -> list[list[Tag]]:
        """The detector's tags: a clause-long tag for each concept it reads in a clause that the text has no
        tag of yet (the labels' evidence comes first)."""
        detector = self.detector
        assert detector is not None
        hits = iter(detector.detect(flat, features) if flat else [])
        out: list[list[Tag]] = []
        for text, clauses, tags in zip(texts, clause_lists, found):
            have = {t.concept_id for t in tags}
            mine: list[Tag] = []
            for (start, end), clause_hits in zip(clauses, [next(hits) for _ in clauses]):
                for concept_id, probability in clause_hits:
                    if concept_id in have or concept_id not in self.taxonomy.concepts:
                        continue
                    have.add(concept_id)
                    mine.append(_make_tag(self.taxonomy[concept_id], text, start, end, "learned", probability))
            out.append(mine)
        return out

    def refine(self, texts: Sequence[str], kinds: Sequence[str | None], results: Sequence[TaggedText]) -> list[TaggedText]:
        """``results`` of ``tag_many(..., refine=False)`` with the refiner's roles (unchanged without a refiner)."""
        if self.refiner is None:
            return list(results)
        tag_lists = self._refine(texts, kinds, [list(r.tags) for r in results], self.refiner)
        return [replace(r, tags=tuple(tags)) for r, tags in zip(results, tag_lists)]

    def tag(self, text: str, kind: str | None = None, *, meta: dict | None = None,
            reference: dt.date | None = None, semantic: bool = True, refine: bool = True) -> TaggedText:
        return self.tag_many([text], [kind], metas=[meta], reference=reference, semantic=semantic, refine=refine)[0]

    def tag_many(self, texts: Sequence[str], kinds: Sequence[str | None] | None = None, *,
                 metas: Sequence[dict | None] | None = None, reference: dt.date | None = None,
                 semantic: bool = True, refine: bool = True, learned: bool = True) -> list[TaggedText]:
        """Tags with roles (and needs, when a needs extractor is set) for each text.

        ``kinds`` ("volunteer" / "request" / None to infer) set the base role; ``metas`` are explicit document
        metadata that win over extracted needs; ``semantic=False`` skips the clause embeddings;
        ``refine=False`` keeps the rule roles even when a role refiner is set; ``learned=False`` leaves the
        concept detector out (labels and aliases alone).
        """
        kinds = list(kinds) if kinds is not None else [None] * len(texts)
        metas = list(metas) if metas is not None else [None] * len(texts)
        # traditional characters are matched as simplified ones (same offsets; surfaces from the original)
        simple_texts = [to_simplified(text) for text in texts]
        token_lists = [self.segmenter.segment(simple) for simple in simple_texts]
        lexical = [self.lexical.tag_tokens(text, tokens) for text, tokens in zip(texts, token_lists)]
        semantic_tags: list[list[Tag]] = [[] for _ in texts]
        if self.semantic is not None and semantic:
            clause_lists = [self.segmenter.sentences(text) for text in texts]
            # a clause is embedded from its first MAX_CLAUSE_CHARS characters: a longer one is no paraphrase
            flat = [text[s:min(e, s + MAX_CLAUSE_CHARS)] for text, clauses in zip(texts, clause_lists) for s, e in clauses]
            vectors = self.semantic.embedder.embed(flat) if flat else np.zeros((0, 1), dtype=np.float32)
            row = 0
            for number, (text, clauses) in enumerate(zip(texts, clause_lists)):
                block = vectors[row : row + len(clauses)]
                row += len(clauses)
                semantic_tags[number] = self.semantic.tag_clauses(text, clauses, block, lexical[number])
        detected: list[list[Tag]] = [[] for _ in texts]
        clause_lists = features = None  # the detector's clauses and their features, shared with the deliverable reader
        if self.detector is not None and learned:
            clause_lists = [self.segmenter.sentences(text) for text in texts]
            flat = [text[s:e] for text, clauses in zip(texts, clause_lists) for s, e in clauses]
            features = clause_features(flat, self.detector.embed) if flat else None
            detected = self._detect(texts, clause_lists, flat, features,
                                    [lex + sem for lex, sem in zip(lexical, semantic_tags)])
        tag_lists = []
        for simple, kind, lex, sem, det in zip(simple_texts, kinds, lexical, semantic_tags, detected):
            tags = sorted(lex + sem + det, key=lambda t: (t.start, t.end, t.concept_id))
            roles = self.roles.assign(simple, [RoleSpan(t.start, t.end, t.method != "lexical") for t in tags], kind,
                                      [self._role_category(t.concept_id, t.category) for t in tags])
            tag_lists.append([replace(t, role=r) for t, r in zip(tags, roles)])
        if self.refiner is not None and refine:
            tag_lists = self._refine(texts, kinds, tag_lists, self.refiner)
        results = []
        deliverables: list = []
        if self.needs is not None:
            reader = self.needs.deliverables
            shared = (features is not None and reader is not None and self.detector is not None
                      and reader.embed == self.detector.embed and self.needs.clauses == self.segmenter.sentences)
            deliverables = (self.needs.read_deliverables(texts, kinds, clause_lists, features) if shared
                            else self.needs.read_deliverables(texts, kinds))
        for number, (text, kind, meta, tokens, tags) in enumerate(zip(texts, kinds, metas, token_lists, tag_lists)):
            needs = None
            if self.needs is not None:
                boundaries = {t.start for t in tokens} | {t.end for t in tokens}
                needs = self.needs.extract(text, kind=kind, boundaries=boundaries, reference=reference, meta=meta,
                                           deliverable=deliverables[number])
            results.append(TaggedText(detect_language(text), tuple(tags), kind, needs))
        return results
