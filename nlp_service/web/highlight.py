"""Cut a text into plain and tagged pieces for the coordinator pages (templates escape every piece)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence


@dataclass(frozen=True, slots=True)
class Piece:
    text: str
    tag: Mapping[str, Any] | None = None  # a tag dict (Tag.to_dict()) when this piece is its surface


def highlight(text: str, tags: Sequence[Mapping[str, Any]]) -> list[Piece]:
    """Plain and tagged pieces that concatenate to ``text``; of overlapping tags the earlier (longer) wins."""
    pieces: list[Piece] = []
    cursor = 0
    ordered = sorted((t for t in tags if _valid(t, len(text))), key=lambda t: (t["start"], -t["end"]))
    for tag in ordered:
        start, end = tag["start"], tag["end"]
        if start < cursor:
            continue  # overlaps a piece already highlighted; it is still listed in the tag table
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
