"""A small vector index interface with a faiss inner-product backend over normalised vectors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

VECTORS_FILE = "vectors.faiss"
IDS_FILE = "ids.json"


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    score: float


class VectorIndex(Protocol):
    dimension: int

    def __len__(self) -> int: ...

    def search(self, queries: np.ndarray, k: int) -> list[list[Hit]]: ...

    def save(self, directory: Path) -> None: ...


class FaissIndex:
    """``IndexFlatIP`` (exact cosine on normalised vectors) with string ids kept beside the faiss file."""

    def __init__(self, dimension: int, ids: Sequence[str] = (), index: object | None = None) -> None:
        import faiss

        self.dimension = int(dimension)
        self._index = index if index is not None else faiss.IndexFlatIP(self.dimension)
        self._ids: list[str] = list(ids)
        self._rows: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"vectors must have shape (n, {self.dimension}), got {vectors.shape}")
        if len(ids) != vectors.shape[0]:
            raise ValueError(f"{len(ids)} ids for {vectors.shape[0]} vectors")
        self._index.add(vectors)  # type: ignore[attr-defined]
        self._ids.extend(ids)
        self._rows = None

    def vector(self, item_id: str) -> np.ndarray:
        """The stored vector of one id (exact for a flat index), shape (1, dimension)."""
        if self._rows is None:
            self._rows = {item: row for row, item in enumerate(self._ids)}
        row = self._rows.get(item_id)
        if row is None:
            raise KeyError(item_id)
        return self._index.reconstruct(row).reshape(1, -1)  # type: ignore[attr-defined]

    def search(self, queries: np.ndarray, k: int) -> list[list[Hit]]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if len(self._ids) == 0 or k <= 0:
            return [[] for _ in range(queries.shape[0])]
        k = min(k, len(self._ids))
        scores, rows = self._index.search(queries, k)  # type: ignore[attr-defined]
        return [
            [Hit(self._ids[r], float(s)) for s, r in zip(score_row, row) if r >= 0]
            for score_row, row in zip(scores, rows)
        ]

    def save(self, directory: Path) -> None:
        import faiss

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self._index, str(directory / VECTORS_FILE))
        (directory / IDS_FILE).write_text(json.dumps(self._ids, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> "FaissIndex":
        import faiss

        directory = Path(directory)
        index = faiss.read_index(str(directory / VECTORS_FILE))
        ids = json.loads((directory / IDS_FILE).read_text(encoding="utf-8"))
        if index.ntotal != len(ids):
            raise ValueError(f"{directory}: {index.ntotal} vectors but {len(ids)} ids")
        return cls(index.d, ids, index)
