"""Browsing a published index: filter and page its documents; describe the versions kept on disk.

Plain library code (no Flask): the coordinator pages in ``nlp_service.web.pages`` format what this returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nlp_service.corpus import KINDS
from nlp_service.errors import InvalidInputError
from nlp_service.extract.roles import MATCHING_ROLES
from nlp_service.extract.taxonomy import Taxonomy, normalize_label
from nlp_service.index.store import MANIFEST, IndexedDocument, IndexStore, LoadedIndex

MAX_QUERY_CHARS = 200
MAX_PER_PAGE = 100


@dataclass(frozen=True, slots=True)
class DocumentFilter:
    """Every part optional: ``kind`` (volunteer / request), a concept offered or needed, a text search."""

    kind: str | None = None
    concept_id: str | None = None
    text: str | None = None

    @classmethod
    def build(cls, kind: str | None, concept: str | None, text: str | None, taxonomy: Taxonomy) -> "DocumentFilter":
        """Check the parts; ``concept`` may be a concept id or one of its labels in either language."""
        kind = (kind or "").strip() or None
        if kind is not None and kind not in KINDS:
            raise InvalidInputError(f"'kind' must be one of {', '.join(KINDS)} (or empty for both)")
        concept_id = resolve_concept(concept, taxonomy) if concept and concept.strip() else None
        text = (text or "").strip() or None
        for name, value in (("concept", concept), ("q", text)):
            if value is not None and len(value) > MAX_QUERY_CHARS:
                raise InvalidInputError(f"'{name}' has {len(value)} characters; the limit is {MAX_QUERY_CHARS}")
        return cls(kind, concept_id, text)

    def accepts(self, entry: IndexedDocument) -> bool:
        document = entry.document
        if self.kind is not None and document.kind != self.kind:
            return False
        if self.concept_id is not None and not any(
                t.get("concept_id") == self.concept_id and t.get("role", "offered") in MATCHING_ROLES
                for t in entry.tags):
            return False
        if self.text is not None:
            needle = self.text.casefold()
            title = document.meta.get("title")
            haystack = [document.id, document.text, title if isinstance(title, str) else ""]
            if not any(needle in value.casefold() for value in haystack):
                return False
        return True


def resolve_concept(value: str, taxonomy: Taxonomy) -> str:
    """A concept id, or any of its labels (NFKC, case-insensitive), -> the concept id."""
    raw = value.strip()
    if raw in taxonomy.concepts:
        return raw
    wanted = normalize_label(raw)
    for concept in taxonomy:
        if any(normalize_label(label) == wanted for label in concept.labels):
            return concept.id
    raise InvalidInputError(f"unknown concept {raw[:80]!r}: give a concept id such as 'legal.contract_review' "
                            "or one of its labels")


@dataclass(frozen=True, slots=True)
class DocumentPage:
    entries: tuple[IndexedDocument, ...]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def browse_documents(index: LoadedIndex, query: DocumentFilter, page: int = 1, per_page: int = 20) -> DocumentPage:
    """The documents ``query`` accepts, ordered by kind then id, one page of them (pages count from 1)."""
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidInputError(f"'per_page' must be between 1 and {MAX_PER_PAGE}")
    found = sorted((e for e in index.documents.values() if query.accepts(e)),
                   key=lambda e: (e.document.kind, e.document.id))
    last = max(1, -(-len(found) // per_page))
    if not 1 <= page <= last:
        raise InvalidInputError(f"page {page} does not exist: there {'is' if last == 1 else 'are'} {last} "
                                f"page{'' if last == 1 else 's'}")
    start = (page - 1) * per_page
    return DocumentPage(tuple(found[start:start + per_page]), page, per_page, len(found))


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One index version kept on disk, read from its manifest (not verified: that is a full load)."""

    version: str
    current: bool
    documents: dict[str, Any]
    model: dict[str, Any]
    taxonomy_version: str | None
    created_at: str | None
    problem: str | None = None


def index_versions(store: IndexStore) -> list[VersionInfo]:
    """Every version in ``store``, newest first, the published one marked."""
    current = store.current_version()
    infos = []
    for version in sorted(store.list_versions(), reverse=True):
        try:
            manifest = json.loads((store.version_path(version) / MANIFEST).read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError("the manifest is not a JSON object")
        except (OSError, ValueError) as exc:
            infos.append(VersionInfo(version, version == current, {}, {}, None, None, f"unreadable manifest: {exc}"))
            continue
        documents = manifest.get("documents") if isinstance(manifest.get("documents"), dict) else {}
        model = manifest.get("model") if isinstance(manifest.get("model"), dict) else {}
        taxonomy = manifest.get("taxonomy") if isinstance(manifest.get("taxonomy"), dict) else {}
        infos.append(VersionInfo(version, version == current, documents, model, taxonomy.get("version"),
                                 manifest.get("created_at")))
    return infos
