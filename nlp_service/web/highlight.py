"""Cut a text into plain and tagged pieces for the coordinator pages (templates escape every piece)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence


@dataclass(frozen=True, slots=True)
class Piece:
    text: str
    tag: Mapping[str, Any] | None = None  # a tag dict (Tag.to_dict()) when this piece is its surface


def highlight(text: str, tags: Sequence[Mapping[str, Any]]) -> list[Piece]:
    """Plain and tagged pieces that concatenate to ``text``. Of overlapping tags the earlier (longer) wins, and a
    label's tag wins over a clause-long one (semantic or learned), which is highlighted only where no label
    tag falls inside it."""
    chosen: list[Mapping[str, Any]] = []
    valid = [t for t in tags if _valid(t, len(text))]
    for clause_long in (False, True):
        layer = [t for t in valid if (t.get("method", "lexical") != "lexical") == clause_long]
        for tag in sorted(layer, key=lambda t: (t["start"], -t["end"])):
            if not any(tag["start"] < c["end"] and c["start"] < tag["end"] for c in chosen):
                chosen.append(tag)  # an overlapping tag is still listed in the tag table
    pieces: list[Piece] = []
    cursor = 0
    for tag in sorted(chosen, key=lambda t: t["start"]):
        start, end = tag["start"], tag["end"]
        if start > cursor:
            pieces.append(Piece(text[cursor:start]))
        pieces.append(Piece(text[start:end], tag))
        cursor = end
    if cursor < len(text):
        pieces.append(Piece(text[cursor:]))
    return pieces


def _valid(tag: Mapping[str, Any], length: int) -> bool:
    start, end = tag.get("start"), tag.get("end")
    return isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= length
