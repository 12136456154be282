"""Corpus documents: ``corpus/documents/*.jsonl``, one document a line."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

from nlp_service.errors import CorpusError
from nlp_service.jsonl import JsonLineError, iter_jsonl

Kind = Literal["volunteer", "request"]
KINDS: tuple[str, ...] = ("volunteer", "request")
OPTIONAL_FIELDS = ("title", "location", "remote", "hours_per_week", "languages", "causes")


def other_kind(kind: str) -> str:
    return "request" if kind == "volunteer" else "volunteer"


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    kind: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "text": self.text, **self.meta}


def document_from_dict(raw: Any, where: str) -> Document:
    if not isinstance(raw, dict):
        raise CorpusError(f"{where}: a document must be a JSON object")
    doc_id, kind, text = raw.get("id"), raw.get("kind"), raw.get("text")
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise CorpusError(f"{where}: 'id' must be a non-empty string")
    if kind not in KINDS:
        raise CorpusError(f"{where}: 'kind' must be 'volunteer' or 'request', got {kind!r}")
    if not isinstance(text, str) or not text.strip():
        raise CorpusError(f"{where}: 'text' must be a non-empty string")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CorpusError(f"{where}: 'text' contains an unpaired surrogate (invalid Unicode)") from exc
    meta = {key: raw[key] for key in OPTIONAL_FIELDS if key in raw}
    return Document(doc_id.strip(), kind, text, meta)


def load_corpus(directory: Path) -> list[Document]:
    """Every document of every ``*.jsonl`` file, in file then line order. Ids must be unique."""
    directory = Path(directory)
    files = sorted(directory.glob("*.jsonl")) if directory.is_dir() else []
    if not files:
        raise CorpusError(f"no *.jsonl documents in {directory}")
    documents: list[Document] = []
    seen: dict[str, str] = {}
    for path in files:
        try:
            rows = list(iter_jsonl(path))
        except JsonLineError as exc:
            raise CorpusError(str(exc)) from exc
        for where, raw in rows:
            document = document_from_dict(raw, where)
            if document.id in seen:
                raise CorpusError(f"{where}: duplicate id {document.id!r} (first in {seen[document.id]})")
            seen[document.id] = where
            documents.append(document)
    return documents


def corpus_hash(documents: Iterable[Document]) -> str:
    digest = hashlib.sha256()
    for document in documents:
        digest.update(json.dumps(document.to_dict(), ensure_ascii=False, sort_keys=True).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()
