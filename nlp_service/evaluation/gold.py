"""Gold annotations for tagging evaluation: ``corpus/eval/{dev,test}.jsonl``."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from nlp_service.errors import GoldDataError
from nlp_service.extract.roles import MATCHING_ROLES, ROLES
from nlp_service.extract.taxonomy import Taxonomy
from nlp_service.jsonl import JsonLineError, iter_jsonl

LANGS = ("zh", "en", "mixed")
KINDS = ("request", "volunteer")


# Gold texts were written on this day: dates without a year resolve to the next such date from here.
REFERENCE_DATE = dt.date(2026, 12, 1)
NEEDS_FIELDS = ("location", "mode", "hours_per_week", "total_hours", "duration", "deadline", "dates", "languages",
                "causes", "deliverable")


@dataclass(frozen=True, slots=True)
class GoldLabel:
    concept_id: str
    spans: tuple[tuple[int, int], ...]
    role: str = "offered"


@dataclass(frozen=True, slots=True)
class GoldItem:
    id: str
    lang: str
    kind: str
    text: str
    labels: tuple[GoldLabel, ...]
    needs: dict | None = None
    focus: str | None = None

    @property
    def concept_ids(self) -> frozenset[str]:
        """Concepts the text offers or needs (what matching uses)."""
        return frozenset(label.concept_id for label in self.labels if label.role in MATCHING_ROLES)

    @property
    def roles(self) -> dict[str, str]:
        return {label.concept_id: label.role for label in self.labels}


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_gold(path: Path, taxonomy: Taxonomy | None = None) -> list[GoldItem]:
    """Read and check a gold file: offsets must point at their surface, concepts must exist."""
    path = Path(path)
    if not path.is_file():
        raise GoldDataError(f"gold file {path} does not exist")
    items: list[GoldItem] = []
    seen: set[str] = set()
    try:
        rows = list(iter_jsonl(path))
    except JsonLineError as exc:
        raise GoldDataError(str(exc)) from exc
    for where, raw in rows:
        if not isinstance(raw, dict) or not isinstance(raw.get("text"), str) or not isinstance(raw.get("id"), str):
            raise GoldDataError(f"{where}: each line needs string 'id' and 'text'")
        if raw["id"] in seen:
            raise GoldDataError(f"{where}: duplicate id {raw['id']!r}")
        seen.add(raw["id"])
        if raw.get("lang") not in LANGS:
            raise GoldDataError(f"{where}: 'lang' must be one of {', '.join(LANGS)}")
        if raw.get("kind") is not None and raw["kind"] not in KINDS:
            raise GoldDataError(f"{where}: 'kind' must be one of {', '.join(KINDS)} (or absent, to infer it)")
        text = raw["text"]
        labels = []
        for label in raw.get("labels", []):
            concept_id = label.get("concept_id")
            if taxonomy is not None and concept_id not in taxonomy.concepts:
                raise GoldDataError(f"{where}: unknown concept {concept_id!r}")
            spans = []
            for span in label.get("spans", []):
                start, end, surface = span.get("start"), span.get("end"), span.get("surface")
                if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
                    raise GoldDataError(f"{where}: bad span {span!r} for {concept_id}")
                if surface is not None and text[start:end] != surface:
                    raise GoldDataError(f"{where}: span {start}-{end} is {text[start:end]!r}, not {surface!r}")
                spans.append((start, end))
            default_role = "needed" if raw.get("kind") == "request" else "offered"
            role = label.get("role", default_role)
            if role not in ROLES:
                raise GoldDataError(f"{where}: role {role!r} of {concept_id} is not one of {', '.join(ROLES)}")
            labels.append(GoldLabel(concept_id, tuple(spans), role))
        if len({label.concept_id for label in labels}) != len(labels):
            raise GoldDataError(f"{where}: a concept is listed twice; merge its spans")
        needs = raw.get("needs")
        if needs is not None:
            _check_needs(needs, text, where)
        items.append(GoldItem(raw["id"], raw["lang"], raw.get("kind", ""), text, tuple(labels), needs,
                              raw.get("focus")))
    if not items:
        raise GoldDataError(f"gold file {path} is empty")
    return items


def _check_needs(needs: object, text: str, where: str) -> None:
    if not isinstance(needs, dict):
        raise GoldDataError(f"{where}: 'needs' must be an object")
    missing = [f for f in NEEDS_FIELDS if f not in needs]
    if missing:
        raise GoldDataError(f"{where}: 'needs' lacks {', '.join(missing)} (use null or [] for none)")

    def check_span(span: object, field: str) -> None:
        if not isinstance(span, dict):
            raise GoldDataError(f"{where}: needs.{field} needs a span")
        start, end, surface = span.get("start"), span.get("end"), span.get("surface")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)) or \
                text[start:end] != surface:
            raise GoldDataError(f"{where}: needs.{field} span {span!r} does not point at its surface")

    for field in NEEDS_FIELDS:
        value = needs[field]
        if value is None:
            continue
        for entry in value if isinstance(value, list) else [value]:
            if not isinstance(entry, dict):
                raise GoldDataError(f"{where}: needs.{field} entries must be objects")
            check_span(entry.get("span"), field)
