"""Batch tagging of JSON Lines: each line ``{"id", "text", "kind"?}`` becomes one record with tags and needs.

Bad lines do not stop the batch: each becomes a :class:`BatchLineError` naming its line, in input order
among the results. Texts are tagged in chunks (one embedding call per chunk), with one tagger for all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from nlp_service.corpus import KINDS
from nlp_service.extract.tagger import TaxonomyTagger

MAX_ID_CHARS = 200


@dataclass(frozen=True, slots=True)
class BatchItem:
    line: int
    id: str
    text: str
    kind: str | None


@dataclass(frozen=True, slots=True)
class BatchLineError:
    line: int
    message: str


def read_batch(lines: Iterable[bytes | str], max_chars: int, default_kind: str | None = None
               ) -> Iterator[BatchItem | BatchLineError]:
    """Parse and check every non-blank line; ``default_kind`` applies to lines without ``kind``."""
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        try:
            item = _parse_line(raw, number, max_chars, default_kind)
        except ValueError as exc:
            yield BatchLineError(number, str(exc))
            continue
        if item is None:
            continue
        if item.id in seen:
            yield BatchLineError(number, f"duplicate id {item.id!r} (first on line {seen[item.id]})")
            continue
        seen[item.id] = number
        yield item


def _parse_line(raw: bytes | str, number: int, max_chars: int, default_kind: str | None) -> BatchItem | None:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"not valid UTF-8 (byte {exc.start})") from exc
    if number == 1:
        raw = raw.removeprefix("\ufeff")
    if not raw.strip():
        return None
    try:
        value: Any = json.loads(raw)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise ValueError('each line must be a JSON object such as {"id": "a1", "text": "...", "kind": "request"}')
    doc_id, text, kind = value.get("id"), value.get("text"), value.get("kind", default_kind)
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        doc_id = str(doc_id)
    if not isinstance(doc_id, str) or not doc_id.strip() or len(doc_id) > MAX_ID_CHARS:
        raise ValueError(f"'id' must be a non-empty string (or an integer) of at most {MAX_ID_CHARS} characters")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("'text' must be a non-empty string")
    if len(text) > max_chars:
        raise ValueError(f"'text' has {len(text)} characters; the limit is {max_chars}")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"'kind' must be one of {', '.join(KINDS)} (or left out)")
    for name, field in (("id", doc_id), ("text", text)):
        try:
            field.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"'{name}' contains an unpaired surrogate (invalid Unicode)") from exc
    return BatchItem(number, doc_id.strip(), text, kind)


def tag_batch(tagger: TaxonomyTagger, entries: Iterable[BatchItem | BatchLineError], *, chunk: int = 32
              ) -> Iterator[dict[str, Any] | BatchLineError]:
    """``{"id", "lang", "kind", "tags", "needs"}`` per item, errors passed through, all in input order."""
    pending: list[BatchItem | BatchLineError] = []

    def flush() -> Iterator[dict[str, Any] | BatchLineError]:
        items = [e for e in pending if isinstance(e, BatchItem)]
        tagged = iter(tagger.tag_many([i.text for i in items], [i.kind for i in items]) if items else [])
        for entry in pending:
            yield entry if isinstance(entry, BatchLineError) else {"id": entry.id, **next(tagged).to_dict()}
        pending.clear()

    for entry in entries:
        pending.append(entry)
        if sum(isinstance(e, BatchItem) for e in pending) >= chunk:
            yield from flush()
    yield from flush()
