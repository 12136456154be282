"""The bilingual skill taxonomy: data on disk, loaded by a named constructor."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from nlp_service.errors import TaxonomyError
from nlp_service.jsonl import JsonLineError, iter_jsonl

CATEGORIES_FILE = "categories.json"
CONCEPTS_DIR = "concepts"
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9_]+$")
_ESCO_PREFIX = "http://data.europa.eu/esco/skill/"
ESCO_ATTRIBUTION = (
    "This service uses the ESCO classification of the European Commission. ESCO is (c) European Union, "
    "CC BY 4.0; this taxonomy ships a modified excerpt (ESCO URIs and English preferred labels as a mapping)."
)


def normalize_label(label: str) -> str:
    """The form used to compare labels for duplicates: NFKC, case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", label).casefold().split())


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    label_en: str
    label_zh: str


@dataclass(frozen=True, slots=True)
class Concept:
    id: str
    category: str
    label_en: str
    label_zh: str
    alt_en: tuple[str, ...] = ()
    alt_zh: tuple[str, ...] = ()
    esco_uri: str | None = None
    esco_label: str | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        """Every label, preferred first."""
        return (self.label_en, self.label_zh, *self.alt_en, *self.alt_zh)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "category": self.category,
            "label_en": self.label_en,
            "label_zh": self.label_zh,
            "alt_en": list(self.alt_en),
            "alt_zh": list(self.alt_zh),
            "esco_uri": self.esco_uri,
            "esco_label": self.esco_label,
        }


class Taxonomy:
    """Categories and concepts, with a version and a content hash."""

    def __init__(self, name: str, version: str, categories: list[Category], concepts: list[Concept],
                 capitalised_only: frozenset[str] = frozenset()) -> None:
        self.name = name
        self.capitalised_only = frozenset(capitalised_only)
        self.version = version
        self.categories = {c.id: c for c in categories}
        self.concepts = {c.id: c for c in concepts}
        self._ordered = list(concepts)
        payload = json.dumps(
            {"version": version, "concepts": [c.to_dict() for c in concepts],
             "capitalised_only": sorted(self.capitalised_only)},
            ensure_ascii=False,
            sort_keys=True,
        )
        self.content_hash = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]

    def __iter__(self) -> Iterator[Concept]:
        return iter(self._ordered)

    def __len__(self) -> int:
        return len(self._ordered)

    def __getitem__(self, concept_id: str) -> Concept:
        return self.concepts[concept_id]

    @property
    def full_version(self) -> str:
        """``<semver>+<content hash>``: changes whenever any concept changes."""
        return f"{self.version}+{self.content_hash}"

    @classmethod
    def from_dir(cls, directory: Path, *, strict: bool = True) -> "Taxonomy":
        """Load ``categories.json`` and ``concepts/*.jsonl``; with ``strict``, raise on any rule broken."""
        directory = Path(directory)
        meta_path = directory / CATEGORIES_FILE
        if not meta_path.is_file():
            raise TaxonomyError(f"taxonomy folder {directory} has no {CATEGORIES_FILE}")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise TaxonomyError(f"{meta_path}: not valid JSON ({exc})") from exc
        categories = [Category(c["id"], c["label_en"], c["label_zh"]) for c in meta.get("categories", [])]
        concepts: list[Concept] = []
        problems: list[str] = []
        files = sorted((directory / CONCEPTS_DIR).glob("*.jsonl"))
        if not files:
            raise TaxonomyError(f"taxonomy folder {directory} has no {CONCEPTS_DIR}/*.jsonl files")
        for path in files:
            try:
                rows = list(iter_jsonl(path))
            except JsonLineError as exc:
                problems.append(str(exc))
                continue
            for where, raw in rows:
                if not isinstance(raw, dict):
                    problems.append(f"{where}: a concept must be a JSON object")
                    continue
                concept = _concept_from_raw(raw, where, problems)
                if concept is not None:
                    concepts.append(concept)
        capitalised = meta.get("capitalised_only", [])
        if not isinstance(capitalised, list) or not all(isinstance(x, str) for x in capitalised):
            problems.append(f"{CATEGORIES_FILE}: capitalised_only must be a list of labels")
            capitalised = []
        taxonomy = cls(meta.get("taxonomy", "taxonomy"), str(meta.get("version", "0")), categories, concepts,
                       frozenset(capitalised))
        problems.extend(taxonomy.problems())
        if strict and problems:
            raise TaxonomyError(
                f"taxonomy {directory} has {len(problems)} problem(s); run 'nlp-service taxonomy validate'",
                problems,
            )
        return taxonomy

    def problems(self) -> list[str]:
        """Every broken rule: duplicate ids and labels, unknown categories, missing labels, bad ids."""
        found: list[str] = []
        seen_ids: set[str] = set()
        owner: dict[str, str] = {}
        for concept in self._ordered:
            if concept.id in seen_ids:
                found.append(f"duplicate concept id {concept.id!r}")
            seen_ids.add(concept.id)
            if not _ID_RE.match(concept.id):
                found.append(f"{concept.id!r}: id must look like 'prefix.snake_case'")
            if concept.category not in self.categories:
                found.append(f"{concept.id}: unknown category {concept.category!r}")
            if not concept.label_en.strip():
                found.append(f"{concept.id}: missing label_en")
            if not concept.label_zh.strip():
                found.append(f"{concept.id}: missing label_zh")
            if concept.esco_uri is not None and not concept.esco_uri.startswith(_ESCO_PREFIX):
                found.append(f"{concept.id}: esco_uri must start with {_ESCO_PREFIX}")
            for label in concept.labels:
                key = normalize_label(label)
                if not key:
                    found.append(f"{concept.id}: empty alternative label")
                    continue
                other = owner.get(key)
                if other is not None and other != concept.id:
                    found.append(f"label {label!r} belongs to both {other} and {concept.id}")
                owner.setdefault(key, concept.id)
        all_labels = {label for concept in self._ordered for label in concept.labels}
        for label in sorted(self.capitalised_only - all_labels):
            found.append(f"capitalised_only lists {label!r}, which is not a label")
        counts = {cid: 0 for cid in self.categories}
        for concept in self._ordered:
            if concept.category in counts:
                counts[concept.category] += 1
        for cid, count in counts.items():
            if count == 0:
                found.append(f"category {cid!r} has no concepts")
        return found

    def concepts_in(self, category: str) -> list[Concept]:
        return [c for c in self._ordered if c.category == category]

    def to_dict(self) -> dict[str, object]:
        return {
            "taxonomy": self.name,
            "version": self.full_version,
            "attribution": ESCO_ATTRIBUTION,
            "categories": [
                {"id": c.id, "label_en": c.label_en, "label_zh": c.label_zh} for c in self.categories.values()
            ],
            "concepts": [c.to_dict() for c in self._ordered],
        }


def _concept_from_raw(raw: dict, where: str, problems: list[str]) -> Concept | None:
    missing = [key for key in ("id", "category", "label_en", "label_zh") if not isinstance(raw.get(key), str)]
    if missing:
        problems.append(f"{where}: missing or non-string field(s) {', '.join(missing)}")
        return None
    alts: dict[str, tuple[str, ...]] = {}
    for key in ("alt_en", "alt_zh"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"{where}: {key} must be a list of strings")
            value = []
        alts[key] = tuple(v.strip() for v in value)
    uri = raw.get("esco_uri")
    return Concept(
        id=raw["id"].strip(),
        category=raw["category"].strip(),
        label_en=raw["label_en"].strip(),
        label_zh=raw["label_zh"].strip(),
        alt_en=alts["alt_en"],
        alt_zh=alts["alt_zh"],
        esco_uri=uri if isinstance(uri, str) and uri else None,
        esco_label=raw.get("esco_label") if isinstance(raw.get("esco_label"), str) else None,
    )
