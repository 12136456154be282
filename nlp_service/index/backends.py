"""A vector backend interface (one collection per document kind, filtered search) and its faiss backend.

Two backends implement :class:`VectorBackend`: :class:`FaissBackend` here (in process, saved as a
directory with a manifest) and ``MilvusBackend`` in :mod:`nlp_service.index.milvus_backend` (Milvus Lite
in a local ``.db`` file, or a Milvus server). Both are tested by the same suite, ``tests/test_backends.py``.

Vectors are L2-normalised float32 (the caller normalises) and a hit's score is the inner product, which
is then the cosine. Every document carries three attribute lists (``languages``, ``locations``,
``modes``); a :class:`VectorFilter` keeps documents having *any* of the values asked for a field, *and*
across fields.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import threading
import uuid
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Protocol, Sequence

import numpy as np

from nlp_service.corpus import KINDS
from nlp_service.errors import IndexCorruptedError, IndexNotFoundError, InvalidInputError
from nlp_service.index.vector_index import Hit

logger = logging.getLogger(__name__)

__all__ = [
    "ATTRIBUTE_FIELDS",
    "DocAttributes",
    "FaissBackend",
    "FaissTuning",
    "Hit",
    "VectorBackend",
    "VectorFilter",
]

ATTRIBUTE_FIELDS: tuple[str, ...] = ("languages", "locations", "modes")

FORMAT = "nlp-service-vector-backend/2"
READABLE_FORMATS = ("nlp-service-vector-backend/1", FORMAT)
MANIFEST = "manifest.json"


# --------------------------------------------------------------------------------------------------
# Values shared by every backend
# --------------------------------------------------------------------------------------------------


def _string_tuple(value: Any, what: str) -> tuple[str, ...]:
    """A tuple of distinct non-empty strings, first occurrence order. A bare string is refused, since
    iterating ``"en"`` would give ``("e", "n")``."""
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidInputError(f"{what} must be a list of strings, got {type(value).__name__}")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item:
            raise InvalidInputError(f"{what} must hold non-empty strings, got {item!r}")
        try:
            item.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInputError(f"{what}: {item!r} is not valid Unicode (unpaired surrogate)") from exc
        if item not in out:
            out.append(item)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class VectorFilter:
    """Which documents a search may return: "any of" within a field, AND across fields.

    An empty field (or a ``None`` filter) sets no constraint. ``exclude_ids`` drops those documents.
    """

    languages: tuple[str, ...] = ()  # ISO 639-1 codes; a document matches if it has any of them
    locations: tuple[str, ...] = ()  # normalised location keys; any of them
    modes: tuple[str, ...] = ()  # e.g. ("remote", "hybrid")
    exclude_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _string_tuple(getattr(self, f.name), f"filter {f.name}"))

    @property
    def constraints(self) -> dict[str, tuple[str, ...]]:
        """The attribute fields that constrain (non-empty ones), by field name."""
        return {name: getattr(self, name) for name in ATTRIBUTE_FIELDS if getattr(self, name)}

    @property
    def is_empty(self) -> bool:
        return not self.constraints and not self.exclude_ids


@dataclass(frozen=True, slots=True)
class DocAttributes:
    """The filterable attributes of one document."""

    languages: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None, where: str = "attributes") -> "DocAttributes":
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise InvalidInputError(f"{where} must be a mapping, got {type(raw).__name__}")
        unknown = sorted(set(raw) - set(ATTRIBUTE_FIELDS))
        if unknown:
            raise InvalidInputError(f"{where}: unknown attribute(s) {unknown}; known: {list(ATTRIBUTE_FIELDS)}")
        return cls(**{name: _string_tuple(raw.get(name), f"{where}.{name}") for name in ATTRIBUTE_FIELDS})

    def to_dict(self) -> dict[str, list[str]]:
        return {name: list(getattr(self, name)) for name in ATTRIBUTE_FIELDS}


class VectorBackend(Protocol):
    """One collection (index) per kind; string ids; inner-product search with attribute filters."""

    dimension: int

    def upsert(
        self, kind: str, ids: Sequence[str], vectors: np.ndarray, attributes: Sequence[Mapping[str, Any]]
    ) -> None: ...

    def delete(self, kind: str, ids: Sequence[str]) -> int: ...

    def get(self, kind: str, ids: Sequence[str]) -> dict[str, np.ndarray]: ...

    def search(
        self, vector: np.ndarray, kind: str, k: int, filters: VectorFilter | None = None
    ) -> list[Hit]: ...

    def count(self, kind: str) -> int: ...


def check_kind(kind: str, kinds: Sequence[str]) -> str:
    if kind not in kinds:
        raise InvalidInputError(f"unknown kind {kind!r}; expected one of {list(kinds)}")
    return kind


def check_ids(ids: Sequence[str], *, unique: bool = True) -> list[str]:
    if isinstance(ids, (str, bytes)):
        raise InvalidInputError("ids must be a list of strings, not a single string")
    out = list(ids)
    for item in out:
        if not isinstance(item, str) or not item:
            raise InvalidInputError(f"ids must be non-empty strings, got {item!r}")
    if unique and len(set(out)) != len(out):
        seen: set[str] = set()
        for item in out:
            if item in seen:
                raise InvalidInputError(f"id {item!r} appears twice in one call")
            seen.add(item)
    return out


def check_vectors(vectors: np.ndarray, dimension: int, count: int) -> np.ndarray:
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim == 1 and count == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[1] != dimension:
        raise InvalidInputError(f"vectors must have shape (n, {dimension}), got {np.shape(vectors)}")
    if array.shape[0] != count:
        raise InvalidInputError(f"{count} ids for {array.shape[0]} vectors")
    if not np.isfinite(array).all():
        raise InvalidInputError("vectors contain NaN or infinite values")
    return array


def check_query(vector: np.ndarray, dimension: int) -> np.ndarray:
    array = np.ascontiguousarray(vector, dtype=np.float32)
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.shape != (dimension,):
        raise InvalidInputError(f"query vector must have shape ({dimension},), got {np.shape(vector)}")
    if not np.isfinite(array).all():
        raise InvalidInputError("query vector contains NaN or infinite values")
    return array


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InvalidInputError(f"k must be an integer, got {type(k).__name__}")
    return int(k)


def check_attributes(attributes: Sequence[Mapping[str, Any]], count: int) -> list[DocAttributes]:
    if isinstance(attributes, Mapping):
        raise InvalidInputError("attributes must be a list with one mapping per id")
    items = list(attributes)
    if len(items) != count:
        raise InvalidInputError(f"{count} ids for {len(items)} attribute mappings")
    return [DocAttributes.from_mapping(raw, f"attributes[{i}]") for i, raw in enumerate(items)]


def top_k(scores: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (score descending, label ascending on ties)."""
    if scores.size > k:
        part = np.argpartition(-scores, k - 1)[:k]
        scores, labels = scores[part], labels[part]
    order = np.lexsort((labels, -scores))
    return scores[order], labels[order]


# --------------------------------------------------------------------------------------------------
# faiss
# --------------------------------------------------------------------------------------------------


def _faiss():
    import faiss

    return faiss


APPROXIMATE_TYPES: tuple[str, ...] = ("ivf", "hnsw")


@dataclass(frozen=True, slots=True)
class FaissTuning:
    """The numbers that shape a :class:`FaissBackend` (saved in its manifest)."""

    approximate: str = "ivf"  # the index type of a kind with at least ann_threshold live vectors
    ann_threshold: int = 20_000
    ivf_lists: int = 0  # inverted lists of an IVF kind; 0: round(2 * sqrt(n)) at each (re)build
    nprobe: int = 48  # lists an unfiltered IVF query visits; filtered ones scale it up (see FaissBackend)
    max_nprobe: int = 1024
    ivf_retrain_growth: float = 4.0  # retrain an IVF kind once it holds this many times what it was trained on
    hnsw_m: int = 32
    ef_construction: int = 100
    ef_search: int = 128  # unfiltered HNSW queries; filtered ones scale it up
    max_ef_search: int = 1024
    exact_filter_limit: int = 5_000  # a filter keeping at most this many vectors is scanned exactly
    max_tombstone_ratio: float = 0.25  # rebuild a kind when this share of its rows is dead
    max_delta: int = 5_000  # rows a read-only (memory-mapped) kind buffers before it is copied to memory

    def __post_init__(self) -> None:
        if self.approximate not in APPROXIMATE_TYPES:
            raise InvalidInputError(f"approximate must be one of {list(APPROXIMATE_TYPES)}, got {self.approximate!r}")
        for name in ("ann_threshold", "ivf_lists", "exact_filter_limit", "max_delta"):
            if getattr(self, name) < 0:
                raise InvalidInputError(f"{name} must be >= 0")
        if self.hnsw_m < 4:
            raise InvalidInputError("hnsw_m must be >= 4")
        if self.ef_construction < self.hnsw_m or self.ef_search < 1 or self.max_ef_search < self.ef_search:
            raise InvalidInputError("need ef_construction >= hnsw_m and 1 <= ef_search <= max_ef_search")
        if self.nprobe < 1 or self.max_nprobe < self.nprobe:
            raise InvalidInputError("need 1 <= nprobe <= max_nprobe")
        if self.ivf_retrain_growth <= 1.0:
            raise InvalidInputError("ivf_retrain_growth must be > 1")
        if not 0.0 < self.max_tombstone_ratio <= 1.0:
            raise InvalidInputError("max_tombstone_ratio must be in (0, 1]")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "FaissTuning":
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in raw.items() if key in known}
        if "hnsw_threshold" in raw and "ann_threshold" not in raw:  # format 1: HNSW was the only approximate type
            values["ann_threshold"] = raw["hnsw_threshold"]
            values.setdefault("approximate", "hnsw")
        return cls(**values)

    def index_type_for(self, count: int) -> str:
        return self.approximate if count >= max(self.ann_threshold, 1) else "flat"

    def lists_for(self, count: int) -> int:
        """IVF lists for ``count`` vectors: ``ivf_lists``, else 2 * sqrt(n), with >= 39 vectors per list."""
        wanted = self.ivf_lists or round(2 * math.sqrt(count))
        return max(1, min(wanted, count // 39))


class _RowBuffer:
    """A float32 matrix that grows by appending rows (amortised doubling)."""

    def __init__(self, dimension: int, rows: np.ndarray | None = None) -> None:
        self._data = np.zeros((0, dimension), dtype=np.float32) if rows is None else np.array(rows, np.float32)
        self._n = self._data.shape[0]

    def __len__(self) -> int:
        return self._n

    @property
    def rows(self) -> np.ndarray:
        return self._data[: self._n]

    def append(self, rows: np.ndarray) -> None:
        need = self._n + rows.shape[0]
        if need > self._data.shape[0]:
            grown = np.zeros((max(need, 2 * self._data.shape[0], 64), self._data.shape[1]), dtype=np.float32)
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n : need] = rows
        self._n = need


def _load_array(path: Path, mmap: bool, what: str) -> np.ndarray:
    """A .npy file, memory-mapped when asked and worth it (small files are read)."""
    try:
        big = mmap and path.stat().st_size > (1 << 20)
        return np.load(path, mmap_mode="r" if big else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise IndexCorruptedError(f"{path}: cannot read {what}: {exc}") from exc


class _IdTable:
    """The string id of every label in two flat arrays (UTF-8 bytes and offsets; an empty id is a
    tombstone), with the live labels sorted by id for lookups by bisection. No Python object per
    document, and every array can be memory-mapped and shared between processes."""

    FILES = ("id_offsets", "id_bytes", "id_order")

    def __init__(self, offsets: np.ndarray, data: np.ndarray, order: np.ndarray) -> None:
        self.offsets = offsets
        self.data = data
        self.order = order

    @classmethod
    def build(cls, ids: Sequence[str | None]) -> "_IdTable":
        encoded = [b"" if item is None else item.encode("utf-8") for item in ids]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        if encoded:
            np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
        data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        present = [label for label, raw in enumerate(encoded) if raw]
        order = np.array(sorted(present, key=encoded.__getitem__), dtype=np.int64)
        return cls(offsets, data, order)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def raw(self, label: int) -> bytes:
        return self.data[self.offsets[label] : self.offsets[label + 1]].tobytes()

    def id(self, label: int) -> str | None:
        raw = self.raw(label)
        return raw.decode("utf-8") if raw else None

    def present(self) -> np.ndarray:
        return np.diff(self.offsets) > 0

    def find(self, item: str) -> int | None:
        """The label holding ``item``, or None (O(log n) byte comparisons)."""
        target = item.encode("utf-8")
        pos = bisect.bisect_left(self.order, target, key=self.raw)
        if pos < len(self.order):
            label = int(self.order[pos])
            if self.raw(label) == target:
                return label
        return None

    def save(self, directory: Path, kind: str) -> None:
        for name, array in zip(self.FILES, (self.offsets, self.data, self.order)):
            np.save(directory / f"{kind}.{name}.npy", np.ascontiguousarray(array), allow_pickle=False)

    @classmethod
    def load(cls, directory: Path, kind: str, mmap: bool, labels: int, count: int) -> "_IdTable":
        offsets, data, order = (_load_array(directory / f"{kind}.{name}.npy", mmap, f"{kind} ids")
                                for name in cls.FILES)
        where = f"{directory}: {kind} ids"
        if offsets.dtype != np.int64 or data.dtype != np.uint8 or order.dtype != np.int64:
            raise IndexCorruptedError(f"{where} have the wrong array types")
        if offsets.ndim != 1 or len(offsets) != labels + 1 or int(offsets[0]) != 0 or int(offsets[-1]) != len(data):
            raise IndexCorruptedError(f"{where}: {len(offsets) - 1} offsets for {labels} labels, or they overrun the bytes")
        if labels and not bool(np.all(offsets[1:] >= offsets[:-1])):
            raise IndexCorruptedError(f"{where}: offsets are not ascending")
        if order.ndim != 1 or len(order) != count or (count and (int(order.min()) < 0 or int(order.max()) >= labels)):
            raise IndexCorruptedError(f"{where}: the lookup order does not cover the {count} live ids")
        return cls(offsets, data, order)


class _Postings:
    """The inverted lists ``(field, value) -> labels`` of a table, as one int64 array and a small span
    map: memory-mappable like :class:`_IdTable`."""

    def __init__(self, spans: Mapping[str, Mapping[str, Sequence[int]]], labels: np.ndarray) -> None:
        self.spans = {name: dict(values) for name, values in spans.items()}
        self.labels = labels

    @classmethod
    def build(cls, lists: Mapping[tuple[str, str], np.ndarray]) -> "_Postings":
        spans: dict[str, dict[str, list[int]]] = {name: {} for name in ATTRIBUTE_FIELDS}
        parts, start = [], 0
        for (name, value), labels in sorted(lists.items()):
            if len(labels):
                parts.append(np.asarray(labels, dtype=np.int64))
                spans[name][value] = [start, start + len(labels)]
                start += len(labels)
        return cls(spans, np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64))

    def get(self, name: str, value: str) -> np.ndarray | None:
        span = self.spans.get(name, {}).get(value)
        return None if span is None else self.labels[span[0] : span[1]]

    def items(self) -> Iterator[tuple[tuple[str, str], np.ndarray]]:
        for name, values in self.spans.items():
            for value, (start, stop) in values.items():
                yield (name, value), self.labels[start:stop]

    def save(self, directory: Path, kind: str) -> None:
        np.save(directory / f"{kind}.postings.npy", np.ascontiguousarray(self.labels), allow_pickle=False)
        _write_json(directory / f"{kind}.postings.json", self.spans)

    @classmethod
    def load(cls, directory: Path, kind: str, mmap: bool, labels: int) -> "_Postings":
        where = f"{directory}: {kind} postings"
        array = _load_array(directory / f"{kind}.postings.npy", mmap, f"{kind} postings")
        try:
            spans = json.loads((directory / f"{kind}.postings.json").read_text(encoding="utf-8"))
            ok = isinstance(spans, dict) and all(
                name in ATTRIBUTE_FIELDS and isinstance(values, dict)
                and all(isinstance(v, str) and v and isinstance(s, list) and len(s) == 2
                        and all(isinstance(x, int) for x in s) and 0 <= s[0] <= s[1] <= len(array)
                        for v, s in values.items())
                for name, values in spans.items())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexCorruptedError(f"{where} cannot be read: {exc}") from exc
        if not ok or array.dtype != np.int64 or array.ndim != 1:
            raise IndexCorruptedError(f"{where} are malformed")
        if len(array) and (int(array.min()) < 0 or int(array.max()) >= labels):
            raise IndexCorruptedError(f"{where} name labels beyond the {labels} stored")
        return cls(spans, array)


class _KindIndex:
    """The vectors of one kind: a faiss *base* index, a numpy *delta*, and the id and attribute maps.

    Every vector ever added has an int64 *label*: base row ``r`` has label ``r`` (faiss numbers rows in
    insertion order) and delta row ``r`` has label ``base.ntotal + r``. Labels below ``table_size`` (those
    of the last build or load) have their ids in an :class:`_IdTable` and their attributes in
    :class:`_Postings`, flat arrays that may be memory-mapped; labels added since are in small Python
    structures. A label is *live* while its id maps to it (``live`` mask); replaced and deleted labels
    are tombstones until the next rebuild renumbers them. Inverted lists may name tombstones: every
    use intersects them with ``live``.
    """

    def __init__(self, kind: str, dimension: int, tuning: FaissTuning) -> None:
        self.kind = kind
        self.dimension = dimension
        self.tuning = tuning
        self.base = _faiss().IndexFlatIP(dimension)
        self.base_type = "flat"
        self.read_only = False  # True for a memory-mapped base: faiss would abort on add()
        self.trained_count = 0  # vectors an IVF base was trained on
        self.deferred = False  # FaissBackend.bulk(): no maintenance until it ends
        self.delta = _RowBuffer(dimension)
        self.table = _IdTable.build([])
        self.postings = _Postings.build({})
        self.extra_ids: list[str] = []  # ids of labels table_size, table_size + 1, ...
        self.extra_label_of: dict[str, int] = {}
        self.extra_postings: dict[tuple[str, str], list[int]] = {}
        self._extra_arrays: dict[tuple[str, str], np.ndarray] = {}
        self.live = np.zeros(0, dtype=bool)
        self.live_count = 0

    # ---- sizes and ids -----------------------------------------------------------------------------

    @property
    def table_size(self) -> int:
        return len(self.table)

    @property
    def labels(self) -> int:
        return self.table_size + len(self.extra_ids)

    @property
    def base_rows(self) -> int:
        return int(self.base.ntotal)

    @property
    def dead_count(self) -> int:
        return self.labels - self.live_count

    def label(self, item: str) -> int | None:
        """The live label of ``item``, or None."""
        found = self.extra_label_of.get(item)
        if found is not None:
            return found
        found = self.table.find(item)
        return found if found is not None and self.live[found] else None

    def id_of(self, label: int) -> str:
        return self.table.id(label) if label < self.table_size else self.extra_ids[label - self.table_size]  # type: ignore[return-value]

    # ---- writes ------------------------------------------------------------------------------------

    def upsert(self, ids: list[str], vectors: np.ndarray, attrs: list[DocAttributes]) -> None:
        for item in ids:
            old = self.label(item)
            if old is not None:
                self._kill(old)
        first = self.labels
        if not self.read_only and len(self.delta) == 0:
            self.base.add(vectors)
        else:
            self.delta.append(vectors)
        self.live = np.concatenate([self.live, np.ones(len(ids), dtype=bool)])
        self.live_count += len(ids)
        for offset, (item, attr) in enumerate(zip(ids, attrs)):
            label = first + offset
            self.extra_ids.append(item)
            self.extra_label_of[item] = label
            for name in ATTRIBUTE_FIELDS:
                for value in getattr(attr, name):
                    self.extra_postings.setdefault((name, value), []).append(label)
                    self._extra_arrays.pop((name, value), None)
        self._maintain()

    def delete(self, ids: Iterable[str]) -> int:
        removed = 0
        for item in dict.fromkeys(ids):
            label = self.label(item)
            if label is not None:
                self._kill(label)
                removed += 1
        if removed:
            self._maintain()
        return removed

    def _kill(self, label: int) -> None:
        if not self.live[label]:
            return
        self.live[label] = False
        self.live_count -= 1
        if label >= self.table_size:
            item = self.extra_ids[label - self.table_size]
            if self.extra_label_of.get(item) == label:
                del self.extra_label_of[item]

    def _maintain(self) -> None:
        """Switch index type at the threshold, retrain a grown IVF, drop tombstones past the ratio, fold
        a large delta; nothing while deferred (``FaissBackend.bulk``)."""
        if self.deferred:
            return
        t = self.tuning
        if self.base_type == "flat" and t.index_type_for(self.live_count) != "flat":
            self.rebuild()
        elif self.dead_count > 0 and self.dead_count > t.max_tombstone_ratio * self.labels:
            self.rebuild()
        elif self.base_type == "ivf" and self.live_count >= t.ivf_retrain_growth * max(self.trained_count, 1):
            self.rebuild()
        elif len(self.delta) > t.max_delta:
            self.fold_delta()

    def settle(self) -> None:
        """After deferred writes: rebuild unless the kind is already what a rebuild would make."""
        self.deferred = False
        if (self.dead_count or len(self.delta) or self.extra_ids
                or self.base_type != self.tuning.index_type_for(self.live_count)):
            self.rebuild()

    def fold_delta(self) -> None:
        """Move the delta rows into the base (labels are unchanged). A read-only base is copied first."""
        if len(self.delta) == 0:
            return
        if self.read_only:
            faiss = _faiss()
            logger.info("copying the memory-mapped %s index to memory to add %d rows", self.kind, len(self.delta))
            self.base = faiss.deserialize_index(faiss.serialize_index(self.base))
            self.read_only = False
        self.base.add(np.ascontiguousarray(self.delta.rows))
        self.delta = _RowBuffer(self.dimension)

    def live_postings(self) -> dict[tuple[str, str], np.ndarray]:
        """Every inverted list over live labels only (table and added labels merged)."""
        out: dict[tuple[str, str], np.ndarray] = {}
        for key, labels in self.postings.items():
            out[key] = np.asarray(labels)
        for key, labels in self.extra_postings.items():
            added = np.asarray(labels, dtype=np.int64)
            out[key] = np.concatenate([out[key], added]) if key in out else added
        return {key: labels[self.live[labels]] for key, labels in out.items()}

    def rebuild(self) -> None:
        """Renumber the live vectors densely into a new in-memory base (type chosen by live count)."""
        live_labels = np.flatnonzero(self.live).astype(np.int64)
        vectors = self.vectors_of(live_labels)
        if not self.extra_ids and not self.dead_count:
            table = self.table  # already dense: keep it (and its memory map)
            postings = self.postings
        else:
            table = _IdTable.build([self.id_of(int(label)) for label in live_labels])
            renumber = np.full(self.labels, -1, dtype=np.int64)
            renumber[live_labels] = np.arange(len(live_labels), dtype=np.int64)
            postings = _Postings.build({key: np.sort(renumber[labels]) for key, labels in self.live_postings().items()})
        self.base = self._new_base(vectors)
        self.read_only = False
        self.delta = _RowBuffer(self.dimension)
        self.table, self.postings = table, postings
        self.extra_ids, self.extra_label_of, self.extra_postings, self._extra_arrays = [], {}, {}, {}
        self.live = np.ones(len(live_labels), dtype=bool)
        self.live_count = len(live_labels)
        logger.info("rebuilt %s index: %d vectors, %s", self.kind, self.live_count, self.base_type)

    def _new_base(self, vectors: np.ndarray):
        faiss = _faiss()
        t = self.tuning
        n = len(vectors)
        self.base_type = t.index_type_for(n)
        if self.base_type == "ivf":
            lists = t.lists_for(n)
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dimension), self.dimension, lists,
                                       faiss.METRIC_INNER_PRODUCT)
            index.cp.min_points_per_centroid = 1  # lists_for keeps >= 39 per list; faiss would warn below that
            sample = vectors
            if n > lists * 256:  # what faiss's k-means samples anyway; seeded here so a build is repeatable
                rows = np.sort(np.random.default_rng(0).choice(n, lists * 256, replace=False))
                sample = vectors[rows]
            index.train(np.ascontiguousarray(sample))
            index.make_direct_map()  # reconstruct() by label: exact scans of a filter, get(), rebuilds
            index.nprobe = t.nprobe
            self.trained_count = n
        elif self.base_type == "hnsw":
            index = faiss.IndexHNSWFlat(self.dimension, t.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = t.ef_construction
            index.hnsw.efSearch = t.ef_search
        else:
            index = faiss.IndexFlatIP(self.dimension)
        if n:
            index.add(np.ascontiguousarray(vectors))
        return index

    # ---- reads -------------------------------------------------------------------------------------

    def vectors_of(self, labels: np.ndarray) -> np.ndarray:
        """The stored vectors of these labels (base and delta), shape (len(labels), dimension)."""
        out = np.empty((len(labels), self.dimension), dtype=np.float32)
        nb = self.base_rows
        in_base = labels < nb
        if in_base.any():
            out[in_base] = self.base.reconstruct_batch(np.ascontiguousarray(labels[in_base]))
        if (~in_base).any():
            out[~in_base] = self.delta.rows[labels[~in_base] - nb]
        return out

    def _extra_posting(self, name: str, value: str) -> np.ndarray | None:
        key = (name, value)
        cached = self._extra_arrays.get(key)
        if cached is None:
            labels = self.extra_postings.get(key)
            if labels is None:
                return None
            cached = self._extra_arrays[key] = np.asarray(labels, dtype=np.int64)
        return cached

    def candidate_mask(self, flt: VectorFilter | None) -> np.ndarray | None:
        """A bool mask over labels of the searchable vectors, or None when every label is (live and)
        searchable. Built from the inverted lists: no document is scanned."""
        constraints = flt.constraints if flt is not None else {}
        excluded = flt.exclude_ids if flt is not None else ()
        if not constraints and not excluded and self.dead_count == 0:
            return None
        mask = self.live.copy()
        for name, values in constraints.items():
            field_mask = np.zeros(self.labels, dtype=bool)
            for value in values:
                for posting in (self.postings.get(name, value), self._extra_posting(name, value)):
                    if posting is not None:
                        field_mask[posting] = True
            mask &= field_mask
        for item in excluded:
            label = self.label(item)
            if label is not None:
                mask[label] = False
        return mask

    def search(self, query: np.ndarray, k: int, flt: VectorFilter | None) -> list[Hit]:
        if k <= 0 or self.live_count == 0:
            return []
        k = min(k, self.live_count)
        q = query.reshape(1, -1)
        nb = self.base_rows
        mask = self.candidate_mask(flt)
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        if mask is None:
            if nb:
                parts.append(self._search_base(q, k, None, nb))
            if len(self.delta):
                parts.append(self._scan_delta(query, k, np.arange(len(self.delta))))
        else:
            base_mask = mask[:nb]
            in_base = int(np.count_nonzero(base_mask))
            if in_base and in_base <= self.tuning.exact_filter_limit:
                parts.append(self._scan_base(q, k, np.flatnonzero(base_mask)))
            elif in_base:
                parts.append(self._search_base(q, k, base_mask, in_base))
            delta_rows = np.flatnonzero(mask[nb:])
            if len(delta_rows):
                parts.append(self._scan_delta(query, k, delta_rows))
        if not parts:
            return []
        scores = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        keep = labels >= 0
        scores, labels = top_k(scores[keep], labels[keep], k)
        return [Hit(self.id_of(int(label)), float(score)) for score, label in zip(scores, labels)]

    def _search_base(
        self, q: np.ndarray, k: int, mask: np.ndarray | None, candidates: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """faiss search of the base, the filter pushed in as an IDSelectorBitmap over base labels."""
        faiss = _faiss()
        selector = bitmap = None
        if mask is not None:
            bitmap = np.packbits(mask, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmap))
        share = candidates / max(self.base_rows, 1)
        if self.base_type == "hnsw":
            params = faiss.SearchParametersHNSW()
            params.efSearch = self._widen(self.tuning.ef_search, self.tuning.max_ef_search, share, k)
        elif self.base_type == "ivf":
            params = faiss.SearchParametersIVF()
            params.nprobe = min(self._widen(self.tuning.nprobe, self.tuning.max_nprobe, share, 1), self.base.nlist)
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        scores, labels = self.base.search(q, k, params=params)
        del selector, bitmap  # kept alive until faiss has returned
        return scores[0], labels[0]

    @staticmethod
    def _widen(value: int, cap: int, share: float, floor: int) -> int:
        """efSearch or nprobe for a query: the tuned value, raised for a filter that keeps a small share
        of the base (the search then meets many non-members), capped."""
        if share < 0.5:
            value = math.ceil(value * math.sqrt(0.5 / share))
        return int(min(max(value, floor), max(cap, floor)))

    def _scan_base(self, q: np.ndarray, k: int, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores of only these base rows (flat storage: compute_distance_subset, no copy)."""
        faiss = _faiss()
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        if self.base_type == "ivf":
            scores = (self.base.reconstruct_batch(labels) @ q[0]).astype(np.float32)
            return top_k(scores, labels, k)
        flat = self.base if self.base_type == "flat" else faiss.downcast_index(self.base.storage)
        scores = np.empty(len(labels), dtype=np.float32)
        flat.compute_distance_subset(1, faiss.swig_ptr(q), len(labels), faiss.swig_ptr(scores), faiss.swig_ptr(labels))
        return top_k(scores, labels, k)

    def _scan_delta(self, query: np.ndarray, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = self.delta.rows[rows] @ query
        return top_k(scores.astype(np.float32), rows.astype(np.int64) + self.base_rows, k)


class FaissBackend:
    """In-process vector backend: one faiss index per kind, exact below a size threshold, IVF above.

    **Index type.** A kind with fewer than ``ann_threshold`` live vectors (default 20,000) is an exact
    ``IndexFlatIP``. When an upsert takes it to the threshold it is rebuilt as the ``approximate`` type:
    by default ``IndexIVFFlat`` (inner product, ``round(2 * sqrt(n))`` lists trained by k-means on the
    live vectors, ``nprobe=48``), retrained when it has grown ``ivf_retrain_growth`` times (4x) past
    what it was trained on; or ``IndexHNSWFlat`` (``approximate="hnsw"``, ``M=32``, ``efSearch=128``).
    IVF is the default because it holds recall on clustered data where HNSW does not: on the 1M
    benchmark's 500k near-duplicate-heavy vectors per kind, HNSW M=32/efSearch=128 reached recall@10
    0.62 (some queries 0), IVF 1414 lists / nprobe 48 0.985 in 2 ms, and it trains and adds in 10 s
    where HNSW took minutes. String ids map to faiss's own sequential row numbers (no ``IndexIDMap2``):
    the row number *is* the int64 label every selector uses.

    **Deletion and replacement.** Neither faiss index is asked to remove vectors: a deleted or replaced
    id leaves a *tombstone* (its label leaves the live mask). Tombstones never reach a result, not by
    over-fetching but because any search over a kind that has tombstones passes the live mask as its
    ID selector. When tombstones exceed ``max_tombstone_ratio`` (default 25%) of a kind's rows, that
    kind is rebuilt from its live vectors inside the write call (call :meth:`compact` off-peak to
    choose the moment). :meth:`bulk` defers all of this to the end of a large load.

    **Filters** are pushed into faiss, never applied to results afterwards. Each kind keeps inverted
    lists ``(field, value) -> labels``; a filter becomes a bool mask over labels (unions within a field,
    intersections across fields, minus ``exclude_ids`` and tombstones). Then, by candidate count: at
    most ``exact_filter_limit`` (default 5,000) candidates are scored exactly (no graph walk or list
    scan: exact and faster than either for a selective filter); more go to ``index.search`` with an
    ``IDSelectorBitmap`` in ``SearchParameters`` / ``SearchParametersIVF`` / ``SearchParametersHNSW``,
    nprobe or efSearch raised as the kept share falls (the search meets many non-members), capped by
    ``max_nprobe`` / ``max_ef_search``.

    **Files and memory mapping.** :meth:`save` writes a directory: ``manifest.json`` (format,
    dimension, tuning, per-kind index type and counts, sha256 of every file), ``<kind>.faiss``; the ids
    by label as ``<kind>.id_offsets.npy`` / ``<kind>.id_bytes.npy`` (UTF-8, empty for a tombstone) and
    ``<kind>.id_order.npy`` (live labels sorted by id, for lookups); the attribute inverted lists as
    ``<kind>.postings.npy`` (labels) and ``<kind>.postings.json`` (field -> value -> span); and, if a
    kind has buffered rows, ``<kind>.delta.npy``. No pickle and no Python object per document: a
    loaded kind of 500k documents costs a few MB of private memory beyond the mapped files, and opens
    in milliseconds. (Format 1 kept ids and attributes as JSON; it is still read, into memory.)
    :meth:`load` checks every checksum before faiss reads a byte (faiss loads a corrupted file
    silently), unless told the caller verified them. With ``mmap=True`` it reads faiss files with
    ``IO_FLAG_MMAP_IFC | IO_FLAG_READ_ONLY`` (in faiss 1.15 that maps ``IndexFlatIP``, ``IndexIVFFlat``
    lists and ``IndexHNSWFlat`` ``MAP_SHARED`` read-only) and the .npy files with ``mmap_mode="r"``,
    so worker processes share the page cache. A mapped index is read-only (``add`` on it aborts the
    process inside faiss), so new vectors go to an in-memory *delta* (exact numpy scan, merged into
    every search); past ``max_delta`` rows, or on a rebuild, the kind is copied to private memory and
    the delta folded in. Never overwrite a mapped file in place (SIGBUS): :meth:`save` writes a new
    directory and renames it.

    **Threads.** One lock serialises calls on one backend. faiss's OpenMP thread count is the
    caller's business (``faiss.omp_set_num_threads(1)`` per worker); nothing here sets it.
    """

    def __init__(self, dimension: int, *, kinds: Sequence[str] = KINDS, **tuning: Any) -> None:
        """``tuning``: any field of :class:`FaissTuning` (``approximate``, ``ann_threshold``, ``nprobe``...)."""
        if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension <= 0:
            raise InvalidInputError(f"dimension must be a positive integer, got {dimension!r}")
        unknown = sorted(set(tuning) - {f.name for f in fields(FaissTuning)})
        if unknown:
            raise InvalidInputError(f"unknown FaissBackend setting(s) {unknown}")
        self.dimension = dimension
        self.tuning = FaissTuning(**tuning)
        self.kinds = tuple(kinds)
        for kind in self.kinds:
            if not kind.isidentifier():
                raise InvalidInputError(f"kind names must be identifiers, got {kind!r}")
        self._kinds = {kind: _KindIndex(kind, dimension, self.tuning) for kind in self.kinds}
        self._lock = threading.RLock()

    def _kind(self, kind: str) -> _KindIndex:
        return self._kinds[check_kind(kind, self.kinds)]

    # ---- VectorBackend -----------------------------------------------------------------------------

    def upsert(
        self, kind: str, ids: Sequence[str], vectors: np.ndarray, attributes: Sequence[Mapping[str, Any]]
    ) -> None:
        index = self._kind(kind)
        id_list = check_ids(ids)
        if not id_list:
            return
        array = check_vectors(vectors, self.dimension, len(id_list))
        attrs = check_attributes(attributes, len(id_list))
        with self._lock:
            index.upsert(id_list, array, attrs)

    def delete(self, kind: str, ids: Sequence[str]) -> int:
        index = self._kind(kind)
        id_list = check_ids(ids, unique=False)
        with self._lock:
            return index.delete(id_list)

    def get(self, kind: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        index = self._kind(kind)
        id_list = check_ids(ids, unique=False)
        with self._lock:
            found = [(item, label) for item in dict.fromkeys(id_list) if (label := index.label(item)) is not None]
            if not found:
                return {}
            vectors = index.vectors_of(np.array([label for _, label in found], dtype=np.int64))
        return {item: vectors[row] for row, (item, _) in enumerate(found)}

    def search(self, vector: np.ndarray, kind: str, k: int, filters: VectorFilter | None = None) -> list[Hit]:
        index = self._kind(kind)
        query = check_query(vector, self.dimension)
        k = check_k(k)
        if filters is not None and not isinstance(filters, VectorFilter):
            raise InvalidInputError(f"filters must be a VectorFilter, got {type(filters).__name__}")
        with self._lock:
            return index.search(query, k, filters)

    def count(self, kind: str) -> int:
        index = self._kind(kind)
        with self._lock:
            return index.live_count

    # ---- maintenance and introspection ---------------------------------------------------------------

    @contextlib.contextmanager
    def bulk(self) -> Iterator["FaissBackend"]:
        """Defer index maintenance (type switches, IVF training, tombstone rebuilds) while loading many
        vectors, then build each kind once, from all of them (an IVF is trained on the whole kind)."""
        with self._lock:
            for index in self._kinds.values():
                index.deferred = True
        try:
            yield self
        finally:
            with self._lock:
                for index in self._kinds.values():
                    index.settle()

    def compact(self, kind: str | None = None) -> None:
        """Rebuild (drop tombstones, fold the delta, pick the type by live count) one kind or all."""
        with self._lock:
            for name in [kind] if kind is not None else self.kinds:
                self._kind(name).rebuild()

    def set_search_breadth(self, *, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Change how widely unfiltered queries search (IVF lists visited, HNSW efSearch) from now on:
        recall for latency, without a rebuild. Caps rise with them when needed."""
        changes: dict[str, int] = {}
        if nprobe is not None:
            changes.update(nprobe=nprobe, max_nprobe=max(nprobe, self.tuning.max_nprobe))
        if ef_search is not None:
            changes.update(ef_search=ef_search, max_ef_search=max(ef_search, self.tuning.max_ef_search))
        tuning = dataclasses.replace(self.tuning, **changes)
        with self._lock:
            self.tuning = tuning
            for index in self._kinds.values():
                index.tuning = tuning

    def index_type(self, kind: str) -> str:
        """``"flat"``, ``"ivf"`` or ``"hnsw"``."""
        return self._kind(kind).base_type

    def stats(self, kind: str) -> dict[str, Any]:
        index = self._kind(kind)
        with self._lock:
            out = {
                "index_type": index.base_type,
                "count": index.live_count,
                "tombstones": index.dead_count,
                "base_rows": index.base_rows,
                "delta_rows": len(index.delta),
                "memory_mapped": index.read_only,
            }
            if index.base_type == "ivf":
                out.update(ivf_lists=int(index.base.nlist), trained_count=index.trained_count)
            return out

    # ---- files ---------------------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the backend to ``directory`` (see the class docstring): into a sibling temporary
        directory first, fsynced, then renamed into place. A directory already there is renamed aside
        and removed after the swap; open memory maps of it stay valid. For zero-downtime publishing
        save into a new versioned directory and swap a pointer (``IndexStore``)."""
        faiss = _faiss()
        target = Path(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            with self._lock:
                kinds: dict[str, Any] = {}
                for kind, index in self._kinds.items():
                    faiss.write_index(index.base, str(staging / f"{kind}.faiss"))
                    if len(index.delta):
                        np.save(staging / f"{kind}.delta.npy", index.delta.rows, allow_pickle=False)
                    if index.extra_ids or index.dead_count:  # labels kept as they are, tombstones as ""
                        table = _IdTable.build([index.id_of(label) if index.live[label] else None
                                                for label in range(index.labels)])
                        postings = _Postings.build(index.live_postings())
                    else:
                        table, postings = index.table, index.postings
                    table.save(staging, kind)
                    postings.save(staging, kind)
                    kinds[kind] = {
                        "index_type": index.base_type,
                        "count": index.live_count,
                        "labels": index.labels,
                        "base_rows": index.base_rows,
                        "delta_rows": len(index.delta),
                        "trained_count": index.trained_count,
                    }
                manifest = {
                    "format": FORMAT,
                    "dimension": self.dimension,
                    "metric": "inner_product",
                    "tuning": self.tuning.to_dict(),
                    "kinds": kinds,
                    "files": {p.name: _sha256(p) for p in sorted(staging.iterdir())},
                }
            _write_json(staging / MANIFEST, manifest, indent=2)
            for path in staging.iterdir():
                _fsync(path)
            _fsync(staging)
            _publish_directory(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        logger.info("saved vector backend to %s", target)

    @classmethod
    def load(cls, directory: Path, mmap: bool = True, verify: bool = True) -> "FaissBackend":
        """Load a directory written by :meth:`save`, verifying every checksum first (``verify=False``
        when the caller verified the files once at publish, as ``IndexStore`` does)."""
        faiss = _faiss()
        directory = Path(directory)
        manifest = _read_manifest(directory)
        try:
            dimension = int(manifest["dimension"])
            tuning = FaissTuning.from_dict(manifest.get("tuning", {}))
            kinds_info: dict[str, Any] = manifest["kinds"]
            files: dict[str, str] = manifest["files"]
        except (KeyError, TypeError, ValueError, InvalidInputError) as exc:
            raise IndexCorruptedError(f"{directory}: manifest lacks {exc}") from exc
        for name, expected in files.items():
            path = directory / name
            if Path(name).name != name or not path.is_file():
                raise IndexCorruptedError(f"{directory}: file {name!r} listed in the manifest is missing")
            if verify and _sha256(path) != expected:
                raise IndexCorruptedError(f"{directory}: checksum mismatch for {name}; the file is corrupted")
        try:
            backend = cls(dimension, kinds=tuple(kinds_info), **tuning.to_dict())
        except InvalidInputError as exc:
            raise IndexCorruptedError(f"{directory}: manifest is invalid: {exc}") from exc
        legacy = manifest["format"] != FORMAT
        flags = (faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY) if mmap else 0
        for kind, info in kinds_info.items():
            needed = ([f"{kind}.ids.json", f"{kind}.attributes.json"] if legacy else
                      [f"{kind}.{name}.npy" for name in _IdTable.FILES] + [f"{kind}.postings.npy", f"{kind}.postings.json"])
            for name in [f"{kind}.faiss", *needed]:
                if name not in files:
                    raise IndexCorruptedError(f"{directory}: manifest has no checksum for {name}")
            try:
                labels, count = int(info["labels"]), int(info["count"])
            except (KeyError, TypeError, ValueError) as exc:
                raise IndexCorruptedError(f"{directory}: manifest lacks the {kind} counts") from exc
            index = backend._kinds[kind]
            base = faiss.read_index(str(directory / f"{kind}.faiss"), flags)
            delta_name = f"{kind}.delta.npy"
            delta = np.load(directory / delta_name, allow_pickle=False) if delta_name in files else None
            delta_rows = 0 if delta is None else delta.shape[0]
            if base.d != dimension or (delta is not None and delta.shape[1:] != (dimension,)):
                raise IndexCorruptedError(f"{directory}: {kind} vectors do not have dimension {dimension}")
            if base.ntotal + delta_rows != labels:
                raise IndexCorruptedError(
                    f"{directory}: {kind} has {base.ntotal}+{delta_rows} vectors, manifest says {labels} labels")
            if legacy:
                index.table, index.postings = _read_format_1(directory, kind, labels)
            else:
                index.table = _IdTable.load(directory, kind, mmap, labels, count)
                index.postings = _Postings.load(directory, kind, mmap, labels)
            index.base = base
            index.base_type = ("hnsw" if isinstance(base, faiss.IndexHNSW) else
                               "ivf" if isinstance(base, faiss.IndexIVF) else "flat")
            if index.base_type != info.get("index_type"):
                raise IndexCorruptedError(f"{directory}: {kind} index is {index.base_type}, manifest says {info}")
            if index.base_type == "ivf":
                if base.direct_map.type == faiss.DirectMap.NoMap:
                    base.make_direct_map()
                index.trained_count = int(info.get("trained_count") or base.ntotal)
            index.read_only = bool(mmap)
            if delta is not None:
                index.delta = _RowBuffer(dimension, delta)
            index.live = index.table.present()
            index.live_count = int(np.count_nonzero(index.live))
            if index.live_count != count or len(index.table.order) != count:
                raise IndexCorruptedError(f"{directory}: {kind} has {index.live_count} live ids, manifest says {count}")
            if not mmap:
                index.fold_delta()
        logger.info("loaded vector backend from %s (mmap=%s)", directory, mmap)
        return backend


def _read_format_1(directory: Path, kind: str, labels: int) -> tuple[_IdTable, _Postings]:
    """Ids and attributes of a format-1 directory (JSON lists by label, ``null`` for a tombstone)."""
    try:
        ids = json.loads((directory / f"{kind}.ids.json").read_text(encoding="utf-8"))
        attrs_raw = json.loads((directory / f"{kind}.attributes.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorruptedError(f"{directory}: {kind} ids or attributes cannot be read: {exc}") from exc
    if not (isinstance(ids, list) and isinstance(attrs_raw, list) and len(ids) == len(attrs_raw) == labels):
        raise IndexCorruptedError(f"{directory}: {kind} has {labels} vectors but not as many ids and attribute rows")
    lists: dict[tuple[str, str], list[int]] = {}
    for label, (item, raw) in enumerate(zip(ids, attrs_raw)):
        if (item is None) != (raw is None) or (item is not None and (not isinstance(item, str) or not item)):
            raise IndexCorruptedError(f"{directory}: {kind} label {label} has an id xor attributes")
        if raw is not None:
            attr = DocAttributes.from_mapping(raw)
            for name in ATTRIBUTE_FIELDS:
                for value in getattr(attr, name):
                    lists.setdefault((name, value), []).append(label)
    present = [item for item in ids if item is not None]
    if len(set(present)) != len(present):
        raise IndexCorruptedError(f"{directory}: {kind} ids are duplicated")
    return _IdTable.build(ids), _Postings.build({key: np.asarray(v, dtype=np.int64) for key, v in lists.items()})


# --------------------------------------------------------------------------------------------------
# file helpers
# --------------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, value: Any, indent: int | None = None) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=indent), encoding="utf-8")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish_directory(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``; an existing ``target`` is renamed aside, then removed."""
    aside: Path | None = None
    if target.exists():
        aside = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(target, aside)
    try:
        os.replace(staging, target)
    except BaseException:
        if aside is not None:
            os.rename(aside, target)
        raise
    _fsync(target.parent)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.is_file():
        raise IndexNotFoundError(f"no vector backend at {directory}: {MANIFEST} is missing")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexCorruptedError(f"{path} is not valid JSON") from exc
    found = manifest.get("format") if isinstance(manifest, dict) else None
    if found not in READABLE_FORMATS:
        raise IndexCorruptedError(f"{path}: unknown format {found!r}, expected one of {list(READABLE_FORMATS)}")
    return manifest
