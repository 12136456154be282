"""Reading JSON Lines data files with line numbers for error messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator


class JsonLineError(ValueError):
    """A line that is not valid JSON; ``where`` is ``file:line``."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: not valid JSON ({message})")
        self.where = where


def iter_jsonl(path: Path) -> Iterator[tuple[str, Any]]:
    """Yield ``("file.jsonl:N", parsed value)`` for every non-blank line; raise JsonLineError on bad JSON."""
    path = Path(path)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name}:{number}"
        try:
            yield where, json.loads(line)
        except json.JSONDecodeError as exc:
            raise JsonLineError(where, exc.msg) from exc
