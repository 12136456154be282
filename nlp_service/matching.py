"""Ranked, explained matches: semantic similarity blended with the skills both sides share and with how
well the needs fit (place and mode, language, hours) and whether the volunteer knows the organisation's
field, minus a penalty when the volunteer declines what the
request needs. Every match carries its ``score_parts``, a calibrated ``band`` and an explanation."""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Mapping

from nlp_service.corpus import KINDS, other_kind
from nlp_service.errors import DocumentNotFoundError, InvalidInputError
from nlp_service.extract.needs import _LANGUAGE_NAMES, Gazetteer, Needs
from nlp_service.extract.roles import MATCHING_ROLES
from nlp_service.extract.segment import detect_language
from nlp_service.extract.tagger import Tag, TaggedText, TaxonomyTagger
from nlp_service.extract.taxonomy import Taxonomy
from nlp_service.index.embedder import Embedder
from nlp_service.index.store import IndexedDocument, LoadedIndex

MAX_TOP_K = 50
MAX_EMBED_CHARS = 3_000
BANDS = ("strong", "possible", "weak")
_ISO_639_1 = re.compile(r"^[a-z]{2}$")


def normalise_language(value: str) -> str | None:
    """"EN", "en", "English", "英语", "zh-CN", "普通话" -> ISO 639-1 code; None when unknown."""
    raw = value.strip()
    if not raw:
        return None
    lowered = raw.casefold()
    if lowered in _LANGUAGE_NAMES:
        return _LANGUAGE_NAMES[lowered]
    if raw in _LANGUAGE_NAMES:
        return _LANGUAGE_NAMES[raw]
    head = re.split(r"[-_]", lowered)[0]
    if _ISO_639_1.match(head):
        return head
    if raw.endswith("语") or raw.endswith("文"):
        return _LANGUAGE_NAMES.get(raw[:-1] + "语") or _LANGUAGE_NAMES.get(raw[:-1] + "文")
    return None


@dataclass(frozen=True, slots=True)
class MatchFilters:
    """Optional constraints on the documents returned; ``None`` or empty means "any".

    Languages are compared as ISO 639-1 codes ("EN", "English" and "英语" all mean ``en``); a location is
    resolved through the gazetteer, so "Shanghai" finds 上海 and the reverse, with a case-insensitive text
    match as the fallback for places the gazetteer does not know.
    """

    remote: bool | None = None
    languages: tuple[str, ...] = ()
    location: str | None = None
    location_id: str | None = None

    @classmethod
    def build(cls, remote: bool | None, languages: tuple[str, ...] | list[str], location: str | None,
              gazetteer: Gazetteer | None) -> "MatchFilters":
        codes = []
        for value in languages:
            code = normalise_language(value)
            if code is None:
                raise InvalidInputError(f"unknown language {value!r}: use an ISO 639-1 code such as 'zh' or 'en', "
                                        "or a language name ('English', '英语')")
            codes.append(code)
        place = gazetteer.lookup(location) if (gazetteer is not None and location) else None
        return cls(remote, tuple(dict.fromkeys(codes)), location.strip() if location else None,
                   place.id if place else None)

    def accepts(self, entry: IndexedDocument) -> bool:
        needs = entry.needs_obj
        meta = entry.document.meta
        if self.remote is not None:
            mode = needs.mode[0] if needs.mode else None
            if mode is None and isinstance(meta.get("remote"), bool):
                mode = "remote" if meta["remote"] else "on_site"
            ok = mode in ("remote", "hybrid") if self.remote else mode in ("on_site", "hybrid")
            if not ok:
                return False
        if self.languages:
            spoken = document_languages(entry)
            if not set(self.languages) & spoken:
                return False
        if self.location:
            if self.location_id is not None and needs.location_id == self.location_id:
                return True
            where = meta.get("location")
            names = [where] if isinstance(where, str) else []
            if needs.location:
                names += [needs.location[0].name_en, needs.location[0].name_zh or ""]
            if not any(self.location.casefold() in n.casefold() for n in names if n):
                return False
        return True

    @property
    def active(self) -> bool:
        return self.remote is not None or bool(self.languages) or bool(self.location)

    def vector_filter(self, exclude: str | None = None):
        """The same constraints for the vector backend, or None when they cannot all be pushed down
        (a location the gazetteer does not know is matched as text, after the search)."""
        from nlp_service.index.backends import VectorFilter

        if self.location and self.location_id is None:
            return None
        modes: tuple[str, ...] = ()
        if self.remote is not None:
            modes = ("remote", "hybrid") if self.remote else ("on_site", "hybrid")
        return VectorFilter(languages=self.languages, locations=(self.location_id,) if self.location_id else (),
                            modes=modes, exclude_ids=(exclude,) if exclude else ())


def _exclude_only(exclude: str | None):
    from nlp_service.index.backends import VectorFilter

    return VectorFilter(exclude_ids=(exclude,)) if exclude else None


def document_languages(entry: IndexedDocument) -> frozenset[str]:
    """Languages a document states, or else the language it is written in (mixed: both)."""
    stated = entry.needs_obj.language_codes
    if stated:
        return stated
    lang = entry.lang
    return frozenset({"zh", "en"}) if lang == "mixed" else frozenset({lang})


@dataclass(frozen=True, slots=True)
class RankingWeights:
    """How the parts of a score add up. Defaults are tuned on corpus/eval/match_dev (see the README)."""

    skills: float = 0.15  # 0.25 before the role refiner's rule weight fell to 0.1 (dev P@1 .78 -> .87)
    location: float = 0.06  # 0.12 and 0.10 until the needs rules of 2026-12-07 (fifth session): with the
    language: float = 0.05  # extraction more often right, half the weight ranks match_dev best (nDCG@5 .799 -> .819)
    hours: float = 0.03
    field: float = 0.04  # the request's own field (its context tags) in the volunteer's skills or background;
    # match_dev flat from 0.02 to 0.05 (P@1 .867, nDCG@5 .841-.842), test P@1 zh .722 -> .778 (README)
    declined: float = 0.15
    fit_without_skills: float = 0.4  # share of a positive needs fit kept when the two sides share no skill
    strong: float = 0.520  # band thresholds on the final score (calibrate_bands on match_dev)
    possible: float = 0.388


@dataclass(frozen=True, slots=True)
class SharedSkill:
    concept_id: str
    query_surfaces: tuple[str, ...]
    document_surfaces: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Match:
    id: str
    kind: str
    score: float
    similarity: float
    skill_overlap: float
    text: str
    title: str | None
    shared: tuple[SharedSkill, ...]
    missing: tuple[str, ...]
    declined: tuple[str, ...]
    score_parts: dict[str, float]
    fit: dict[str, str]
    band: str
    meta: dict[str, Any]  # the document's metadata (its title is shown apart)
    needs: Any = None  # the document's Needs (metadata merged)

    @property
    def shared_concepts(self) -> tuple[str, ...]:
        return tuple(s.concept_id for s in self.shared)


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


def _surfaces(tags: tuple[Tag, ...], concept_id: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t.surface for t in tags if t.concept_id == concept_id and t.role in MATCHING_ROLES))


class QueryAnalyses:
    """An LRU of query analyses (tags with roles, needs, vector) by (kind, text), for one Matcher: its
    tagger and embedder are fixed, so an entry never goes stale. Platforms ask again for the same text
    (paging, refreshing a request's matches); the ranking itself always runs on the live index."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, str], tuple[TaggedText, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple[str, str]) -> tuple[TaggedText, Any] | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: tuple[str, str], value: tuple[TaggedText, Any]) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


@dataclass(frozen=True, slots=True)
class _Query:
    """What scoring needs from the query side, computed once per request rather than per candidate."""

    tagged: TaggedText
    kind: str
    concepts: frozenset[str]
    declined: frozenset[str]
    order: tuple[str, ...]  # offered/needed concepts in text order
    langs: frozenset[str]
    context: frozenset[str]  # the text's context concepts (a request's field, a volunteer's background)
    known: frozenset[str]  # offered/needed and context concepts: what a volunteer query knows of a field

    @classmethod
    def of(cls, tagged: TaggedText, kind: str) -> "_Query":
        order = tuple(dict.fromkeys(t.concept_id for t in tagged.tags if t.role in MATCHING_ROLES))
        context = frozenset(t.concept_id for t in tagged.tags if t.role == "context")
        return cls(tagged, kind, frozenset(order), tagged.declined_ids, order, _languages_of(tagged.needs, tagged.lang),
                   context, frozenset(order) | context)


class Matcher:
    def __init__(self, tagger: TaxonomyTagger, embedder: Embedder, *, tag_weight: float, candidate_pool: int,
                 weights: RankingWeights | None = None, query_semantic_tags: bool = True,
                 query_cache_size: int = 1_024):
        self.tagger = tagger
        self.embedder = embedder
        self.weights = weights or RankingWeights(skills=tag_weight)
        self.candidate_pool = candidate_pool
        self.query_semantic_tags = query_semantic_tags
        self.query_analyses = QueryAnalyses(query_cache_size)

    @property
    def tag_weight(self) -> float:
        return self.weights.skills

    def match(self, index: LoadedIndex, text: str, kind: str, top_k: int = 10,
              filters: MatchFilters | None = None) -> MatchResult:
        """Rank documents of the other kind for a new text of ``kind``."""
        if kind not in KINDS:
            raise InvalidInputError("'kind' must be 'volunteer' or 'request'")
        if not 1 <= top_k <= MAX_TOP_K:
            raise InvalidInputError(f"'top_k' must be between 1 and {MAX_TOP_K}")
        key = (kind, text)
        analysed = self.query_analyses.get(key)
        if analysed is None:
            tagged = self.tagger.tag(text, kind, semantic=self.query_semantic_tags)
            vector = self.embedder.embed([text[:MAX_EMBED_CHARS]])  # the encoder's cost grows with length; meaning doesn't
            vector.setflags(write=False)
            analysed = (tagged, vector)
            self.query_analyses.put(key, analysed)
        tagged, vector = analysed
        return self._rank(index, tagged, vector, kind, top_k, filters, exclude=None)

    def match_document(self, index: LoadedIndex, document_id: str, top_k: int = 10,
                       filters: MatchFilters | None = None) -> MatchResult:
        """Rank documents of the other kind for a document already in the index (its stored tags and needs)."""
        entry = index.documents.get(document_id)
        if entry is None:
            raise DocumentNotFoundError(f"no document {document_id!r} in index {index.version}")
        document = entry.document
        tagged = TaggedText(entry.lang, entry.tag_objs, document.kind, entry.needs_obj)
        vector = index.vectors[document.kind].vector(document_id)  # embedded at build time; not again
        return self._rank(index, tagged, vector, document.kind, top_k, filters, exclude=document_id)

    def _rank(self, index: LoadedIndex, tagged: TaggedText, vector, kind: str, top_k: int,
              filters: MatchFilters | None, exclude: str | None) -> MatchResult:
        if not 1 <= top_k <= MAX_TOP_K:
            raise InvalidInputError(f"'top_k' must be between 1 and {MAX_TOP_K}")
        target = other_kind(kind)
        pool = max(top_k, self.candidate_pool)
        pushed = filters.vector_filter(exclude) if filters is not None else None
        if getattr(index, "pushes_filters", False) and (pushed is not None or filters is None or not filters.active):
            # the backend applies the filter inside the search: only matching documents are scored
            hits = index.vectors[target].search(vector, pool, pushed or _exclude_only(exclude))[0]
        else:
            if filters is not None and filters.active:
                pool = len(index.vectors[target])  # scan the whole kind so a narrow filter still finds matches
            hits = index.vectors[target].search(vector, pool + 1)[0]
        query = _Query.of(tagged, kind)
        scored: list[tuple[float, str, IndexedDocument, float, dict[str, float], dict[str, str]]] = []
        get_many = getattr(index.documents, "get_many", None)
        entries = get_many([h.id for h in hits]) if get_many is not None else None
        for hit in hits:
            entry = entries.get(hit.id) if entries is not None else index.documents.get(hit.id)
            if entry is None or hit.id == exclude or (filters is not None and not filters.accepts(entry)):
                continue
            total, parts, fit = self._parts(query, entry, hit.score)
            scored.append((total, entry.document.id, entry, hit.score, parts, fit))
        scored.sort(key=lambda row: (-row[0], row[1]))
        # only the matches returned are explained (shared evidence, missing skills): 10 of ~100 candidates
        ranked = tuple(self._explain(query, entry, similarity, total, parts, fit)
                       for total, _, entry, similarity, parts, fit in scored[:top_k])
        return MatchResult(tagged, ranked, index.version)

    def score(self, query: TaggedText, kind: str, entry: IndexedDocument, similarity: float) -> Match:
        """The explained match of one document for a query of ``kind``."""
        prepared = _Query.of(query, kind)
        total, parts, fit = self._parts(prepared, entry, similarity)
        return self._explain(prepared, entry, similarity, total, parts, fit)

    def _parts(self, query: _Query, entry: IndexedDocument, similarity: float
               ) -> tuple[float, dict[str, float], dict[str, str]]:
        """The score of one candidate, by part, and the needs-fit notes (cheap: no explanation yet)."""
        w = self.weights
        kind = query.kind
        q_concepts = query.concepts
        d_concepts, d_declined, d_context = _concept_sets(entry)
        overlap = skill_overlap(q_concepts, d_concepts)
        request_side_needs = q_concepts if kind == "request" else d_concepts
        volunteer_declines = d_declined if kind == "request" else query.declined
        volunteer_offers = d_concepts if kind == "request" else q_concepts
        declined = request_side_needs & volunteer_declines - volunteer_offers
        tagged = query.tagged
        entry_langs = _languages_of(entry.needs_obj, entry.lang)
        request_needs, volunteer_needs = (tagged.needs, entry.needs_obj) if kind == "request" else (entry.needs_obj, tagged.needs)
        request_langs, volunteer_langs = (query.langs, entry_langs) if kind == "request" else (entry_langs, query.langs)
        location, location_note = _location_fit(request_needs, volunteer_needs)
        language, language_note = _language_fit(request_needs, request_langs, volunteer_langs)
        hours, hours_note = _hours_fit(request_needs, volunteer_needs)
        if kind == "request":
            field_value, field_note = _field_fit(query.context, d_concepts | d_context)
        else:
            field_value, field_note = _field_fit(d_context, query.known)
        conflict = min(1.0, len(declined) / max(1, len(request_side_needs))) if declined else 0.0
        # A good fit of place, language or hours is worth less when no skill is shared: it should order
        # the people who can do the work, not lift those who cannot. Bad fits count in full.
        lift = 1.0 if overlap > 0 else w.fit_without_skills

        def fit(weight: float, value: float) -> float:
            return round(weight * value * (lift if value > 0 else 1.0), 4)

        parts = {
            "similarity": round((1.0 - w.skills) * similarity, 4),
            "skills": round(w.skills * overlap, 4),
            "location": fit(w.location, location),
            "language": fit(w.language, language),
            "hours": fit(w.hours, hours),
            "field": round(w.field * field_value, 4),  # relevance, not logistics: not scaled by the shared skills
            "declined": round(-w.declined * conflict, 4),
        }
        return sum(parts.values()), parts, {"location": location_note, "language": language_note, "hours": hours_note,
                                            "field": field_note}

    def _explain(self, query: _Query, entry: IndexedDocument, similarity: float, total: float,
                 parts: dict[str, float], fit: dict[str, str]) -> Match:
        w = self.weights
        q_concepts = query.concepts
        d_tags = entry.tag_objs
        d_concepts, d_declined, _ = _concept_sets(entry)
        shared = tuple(SharedSkill(cid, _surfaces(query.tagged.tags, cid), _surfaces(d_tags, cid))
                       for cid in query.order if cid in d_concepts)
        if query.kind == "request":
            missing = tuple(cid for cid in query.order if cid not in d_concepts)
            declined = tuple(sorted(q_concepts & d_declined - d_concepts))
        else:
            missing = tuple(cid for cid in dict.fromkeys(t.concept_id for t in d_tags if t.role in MATCHING_ROLES)
                            if cid not in q_concepts)
            declined = tuple(sorted(d_concepts & query.declined - q_concepts))
        band = "strong" if total >= w.strong else "possible" if total >= w.possible else "weak"
        title = entry.document.meta.get("title")
        return Match(entry.document.id, entry.document.kind, total, similarity, skill_overlap(q_concepts, d_concepts),
                     entry.document.text, title if isinstance(title, str) else None, shared, missing, declined, parts,
                     fit, band, entry.document.meta, entry.needs_obj)


def _concept_sets(entry: IndexedDocument) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """A document's offered/needed, declined and context concepts (computed when the entry was parsed, if it was)."""
    sets = entry.role_concepts
    if sets is None:
        d_tags = entry.tag_objs
        sets = (frozenset(t.concept_id for t in d_tags if t.role in MATCHING_ROLES),
                frozenset(t.concept_id for t in d_tags if t.role == "declined"),
                frozenset(t.concept_id for t in d_tags if t.role == "context"))
    return sets


def _languages_of(needs: Needs | None, text_lang: str) -> frozenset[str]:
    if needs is not None and needs.language_codes:
        return needs.language_codes
    return frozenset({"zh", "en"}) if text_lang == "mixed" else frozenset({text_lang})


def _location_fit(request: Needs | None, volunteer: Needs | None) -> tuple[float, str]:
    """+1 same city for work that is not remote-only, -1 another city for on-site work, 0 unknown/remote."""
    if request is None or volunteer is None:
        return 0.0, "unknown"
    r_mode = request.mode[0] if request.mode else None
    v_mode = volunteer.mode[0] if volunteer.mode else None
    r_place, v_place = request.location_id, volunteer.location_id
    if r_mode == "remote" or (v_mode == "remote" and r_mode is None):
        if r_place and v_place and r_place == v_place:
            return 0.5, "remote work, same city"
        return 0.0, "remote work"
    if r_place and v_place:
        if r_place == v_place:
            return 1.0, f"same city ({request.location[0].name_en})"
        if r_mode == "on_site" or v_mode == "on_site":
            return -1.0, f"different city for on-site work ({request.location[0].name_en} vs {volunteer.location[0].name_en})"
        return -0.3, f"different city ({request.location[0].name_en} vs {volunteer.location[0].name_en})"
    return 0.0, "location not stated"


def _language_fit(request: Needs | None, request_langs: frozenset[str], volunteer_langs: frozenset[str]) -> tuple[float, str]:
    stated = request is not None and bool(request.language_codes)
    if not request_langs or not volunteer_langs:
        return 0.0, "unknown"
    covered = request_langs & volunteer_langs
    if stated:
        share = len(covered) / len(request_langs)
        if share == 1:
            return 1.0, f"speaks {', '.join(sorted(covered))} as asked"
        missing = ", ".join(sorted(request_langs - volunteer_langs))
        return (2 * share - 1.0), f"lacks {missing}"
    if covered:
        return 0.0, f"shares {', '.join(sorted(covered))}"
    return -0.5, f"no shared working language ({'/'.join(sorted(request_langs))} vs {'/'.join(sorted(volunteer_langs))})"


def _field_fit(request_field: frozenset[str], volunteer_knows: frozenset[str]) -> tuple[float, str]:
    """How much of the request's own field (its context concepts: "我们做心智障碍者支持性就业", "a hospice ward")
    the volunteer brings as a skill or background: a cosine of the two sets, 0 when either is empty."""
    shared = request_field & volunteer_knows
    if not shared:
        return 0.0, "no shared field" if request_field else "field not stated"
    return (len(shared) / math.sqrt(len(request_field) * len(volunteer_knows)),
            f"knows the organisation's field ({', '.join(sorted(shared))})")


def _hours_fit(request: Needs | None, volunteer: Needs | None) -> tuple[float, str]:
    if request is None or volunteer is None or not request.hours_per_week or not volunteer.hours_per_week:
        return 0.0, "not stated"
    need, have = request.hours_per_week[0], volunteer.hours_per_week[0]
    if have >= need:
        return 1.0, f"{have:g} h/week available for {need:g} asked"
    return max(-1.0, have / need * 2 - 1.0), f"{have:g} h/week available for {need:g} asked"


def match_result_to_dict(result: MatchResult, taxonomy: Taxonomy) -> dict[str, Any]:
    def concept(cid: str) -> dict[str, str]:
        c = taxonomy[cid]
        return {"concept_id": c.id, "label_en": c.label_en, "label_zh": c.label_zh}

    def known(ids) -> list[dict[str, str]]:
        return [concept(cid) for cid in ids if cid in taxonomy.concepts]

    return {
        "query": result.query.to_dict(),
        "matches": [
            {
                "id": m.id,
                "kind": m.kind,
                "score": round(m.score, 4),
                "band": m.band,
                "score_parts": m.score_parts,
                "similarity": round(m.similarity, 4),
                "skill_overlap": round(m.skill_overlap, 4),
                "title": m.title,
                "text": m.text,
                "shared_tags": [
                    {**concept(s.concept_id), "query_evidence": list(s.query_surfaces),
                     "match_evidence": list(s.document_surfaces)}
                    for s in m.shared if s.concept_id in taxonomy.concepts
                ],
                "missing_tags": known(m.missing),
                "declined_conflicts": known(m.declined),
                "needs_fit": m.fit,
                "needs": m.needs.to_dict() if m.needs is not None else {},
                "meta": {k: v for k, v in m.meta.items() if k != "title"},
            }
            for m in result.matches
        ],
        "index": {"version": result.index_version},
    }
