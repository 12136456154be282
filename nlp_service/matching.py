"""Ranked, explained matches: semantic similarity blended with the skills both sides share."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nlp_service.corpus import KINDS, other_kind
from nlp_service.errors import DocumentNotFoundError, InvalidInputError
from nlp_service.extract.segment import detect_language
from nlp_service.extract.tagger import Tag, TaggedText, TaxonomyTagger
from nlp_service.extract.taxonomy import Taxonomy
from nlp_service.index.embedder import Embedder
from nlp_service.index.store import LoadedIndex

MAX_TOP_K = 50


@dataclass(frozen=True, slots=True)
class MatchFilters:
    """Optional constraints on the documents returned; ``None`` or empty means "any"."""

    remote: bool | None = None
    languages: tuple[str, ...] = ()
    location: str | None = None

    def accepts(self, meta: dict[str, Any]) -> bool:
        if self.remote is not None and meta.get("remote") is not self.remote:
            return False
        if self.languages:
            spoken = meta.get("languages") or []
            if not isinstance(spoken, list) or not set(self.languages) & set(spoken):
                return False
        if self.location:
            where = meta.get("location")
            if not isinstance(where, str) or self.location.casefold() not in where.casefold():
                return False
        return True

    @property
    def active(self) -> bool:
        return self.remote is not None or bool(self.languages) or bool(self.location)


@dataclass(frozen=True, slots=True)
class Match:
    id: str
    kind: str
    score: float
    similarity: float
    skill_overlap: float
    text: str
    title: str | None
    shared_concepts: tuple[str, ...]
    meta: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MatchResult:
    query: TaggedText
    matches: tuple[Match, ...]
    index_version: str


def skill_overlap(query: frozenset[str], document: frozenset[str]) -> float:
    """Cosine between two concept sets: shared / sqrt(|query| * |document|); 0 when either is empty."""
    if not query or not document:
        return 0.0
    return len(query & document) / math.sqrt(len(query) * len(document))


class Matcher:
    def __init__(self, tagger: TaxonomyTagger, embedder: Embedder, *, tag_weight: float, candidate_pool: int):
        self.tagger = tagger
        self.embedder = embedder
        self.tag_weight = tag_weight
        self.candidate_pool = candidate_pool

    def match(self, index: LoadedIndex, text: str, kind: str, top_k: int = 10,
              filters: MatchFilters | None = None) -> MatchResult:
        """Rank documents of the other kind for a new text of ``kind``."""
        if kind not in KINDS:
            raise InvalidInputError("'kind' must be 'volunteer' or 'request'")
        tagged = self.tagger.tag(text)
        return self._rank(index, tagged, self.embedder.embed([text]), kind, top_k, filters)

    def match_document(self, index: LoadedIndex, document_id: str, top_k: int = 10,
                       filters: MatchFilters | None = None) -> MatchResult:
        """Rank documents of the other kind for a document already in the index (its stored tags)."""
        entry = index.documents.get(document_id)
        if entry is None:
            raise DocumentNotFoundError(f"no document {document_id!r} in index {index.version}")
        document = entry.document
        tags = tuple(Tag(**{**t, "score": float(t["score"])}) for t in entry.tags)
        tagged = TaggedText(detect_language(document.text), tags)
        vector = index.vectors[document.kind].vector(document_id)  # embedded at build time; not again
        return self._rank(index, tagged, vector, document.kind, top_k, filters)

    def _rank(self, index: LoadedIndex, tagged: TaggedText, vector, kind: str, top_k: int,
              filters: MatchFilters | None) -> MatchResult:
        if not 1 <= top_k <= MAX_TOP_K:
            raise InvalidInputError(f"'top_k' must be between 1 and {MAX_TOP_K}")
        query_concepts = tagged.concept_ids
        target = other_kind(kind)
        pool = max(top_k, self.candidate_pool)
        if filters is not None and filters.active:
            pool = len(index.vectors[target])  # filter the whole kind, so a narrow filter still finds its matches
        hits = index.vectors[target].search(vector, pool)[0]
        ranked: list[Match] = []
        order = [t.concept_id for t in tagged.tags]
        for hit in hits:
            entry = index.documents[hit.id]
            if filters is not None and not filters.accepts(entry.document.meta):
                continue
            overlap = skill_overlap(query_concepts, entry.concept_ids)
            score = (1.0 - self.tag_weight) * hit.score + self.tag_weight * overlap
            shared = tuple(cid for cid in dict.fromkeys(order) if cid in entry.concept_ids)
            title = entry.document.meta.get("title")
            ranked.append(
                Match(hit.id, entry.document.kind, score, hit.score, overlap, entry.document.text,
                      title if isinstance(title, str) else None, shared,
                      {k: v for k, v in entry.document.meta.items() if k != "title"})
            )
        ranked.sort(key=lambda m: (-m.score, m.id))
        return MatchResult(tagged, tuple(ranked[:top_k]), index.version)


def match_result_to_dict(result: MatchResult, taxonomy: Taxonomy) -> dict[str, Any]:
    def concept(cid: str) -> dict[str, str]:
        c = taxonomy[cid]
        return {"concept_id": c.id, "label_en": c.label_en, "label_zh": c.label_zh}

    return {
        "query": result.query.to_dict(),
        "matches": [
            {
                "id": m.id,
                "kind": m.kind,
                "score": round(m.score, 4),
                "similarity": round(m.similarity, 4),
                "skill_overlap": round(m.skill_overlap, 4),
                "title": m.title,
                "text": m.text,
                "shared_tags": [concept(cid) for cid in m.shared_concepts if cid in taxonomy.concepts],
                "meta": m.meta,
            }
            for m in result.matches
        ],
        "index": {"version": result.index_version},
    }
