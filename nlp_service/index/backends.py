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
from typing import Any, Iterable, Mapping, Protocol, Sequence

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

FORMAT = "nlp-service-vector-backend/1"
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


@dataclass(frozen=True, slots=True)
class FaissTuning:
    """The numbers that shape a :class:`FaissBackend` (saved in its manifest)."""

    hnsw_threshold: int = 20_000  # a kind with at least this many live vectors is (re)built as HNSW
    hnsw_m: int = 32
    ef_construction: int = 100
    ef_search: int = 128  # unfiltered queries; filtered ones scale it up (see FaissBackend)
    max_ef_search: int = 1024
    exact_filter_limit: int = 5_000  # a filter keeping at most this many vectors is scanned exactly
    max_tombstone_ratio: float = 0.25  # rebuild a kind when this share of its rows is dead
    max_delta: int = 5_000  # rows a read-only (memory-mapped) kind buffers before it is copied to memory

    def __post_init__(self) -> None:
        for name in ("hnsw_threshold", "exact_filter_limit", "max_delta"):
            if getattr(self, name) < 0:
                raise InvalidInputError(f"{name} must be >= 0")
        if self.hnsw_m < 4:
            raise InvalidInputError("hnsw_m must be >= 4")
        if self.ef_construction < self.hnsw_m or self.ef_search < 1 or self.max_ef_search < self.ef_search:
            raise InvalidInputError("need ef_construction >= hnsw_m and 1 <= ef_search <= max_ef_search")
        if not 0.0 < self.max_tombstone_ratio <= 1.0:
            raise InvalidInputError("max_tombstone_ratio must be in (0, 1]")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "FaissTuning":
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in raw.items() if key in known})


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


class _KindIndex:
    """The vectors of one kind: a faiss *base* index, a numpy *delta*, and the id/attribute maps.

    Every vector ever added has an int64 *label*: base row ``r`` has label ``r`` (faiss numbers rows in
    insertion order) and delta row ``r`` has label ``base.ntotal + r``. A label is *live* while its id
    maps to it; replaced and deleted labels are tombstones until the next rebuild renumbers them.
    """

    def __init__(self, kind: str, dimension: int, tuning: FaissTuning) -> None:
        self.kind = kind
        self.dimension = dimension
        self.tuning = tuning
        self.base = _faiss().IndexFlatIP(dimension)
        self.base_type = "flat"
        self.read_only = False  # True for a memory-mapped base: faiss would abort on add()
        self.delta = _RowBuffer(dimension)
        self.ids: list[str | None] = []  # by label; None for a tombstone
        self.attrs: list[DocAttributes | None] = []
        self.label_of: dict[str, int] = {}
        self.live = np.zeros(0, dtype=bool)
        self.postings: dict[str, dict[str, set[int]]] = {name: {} for name in ATTRIBUTE_FIELDS}
        self._posting_arrays: dict[tuple[str, str], np.ndarray] = {}

    # ---- sizes -------------------------------------------------------------------------------------

    @property
    def labels(self) -> int:
        return len(self.ids)

    @property
    def base_rows(self) -> int:
        return int(self.base.ntotal)

    @property
    def live_count(self) -> int:
        return len(self.label_of)

    @property
    def dead_count(self) -> int:
        return self.labels - self.live_count

    # ---- writes ------------------------------------------------------------------------------------

    def upsert(self, ids: list[str], vectors: np.ndarray, attrs: list[DocAttributes]) -> None:
        for item in ids:
            old = self.label_of.get(item)
            if old is not None:
                self._kill(old)
        first = self.labels
        if not self.read_only and len(self.delta) == 0:
            self.base.add(vectors)
        else:
            self.delta.append(vectors)
        self.live = np.concatenate([self.live, np.ones(len(ids), dtype=bool)])
        for offset, (item, attr) in enumerate(zip(ids, attrs)):
            label = first + offset
            self.ids.append(item)
            self.attrs.append(attr)
            self.label_of[item] = label
            self._post(label, attr)
        self._maintain()

    def delete(self, ids: Iterable[str]) -> int:
        removed = 0
        for item in dict.fromkeys(ids):
            label = self.label_of.get(item)
            if label is not None:
                self._kill(label)
                removed += 1
        if removed:
            self._maintain()
        return removed

    def _kill(self, label: int) -> None:
        item, attr = self.ids[label], self.attrs[label]
        if item is None or attr is None:
            return  # already a tombstone
        del self.label_of[item]
        self.ids[label] = None
        self.attrs[label] = None
        self.live[label] = False
        for name in ATTRIBUTE_FIELDS:
            for value in getattr(attr, name):
                bucket = self.postings[name][value]
                bucket.discard(label)
                self._posting_arrays.pop((name, value), None)
                if not bucket:
                    del self.postings[name][value]

    def _post(self, label: int, attr: DocAttributes) -> None:
        for name in ATTRIBUTE_FIELDS:
            for value in getattr(attr, name):
                self.postings[name].setdefault(value, set()).add(label)
                self._posting_arrays.pop((name, value), None)

    def _maintain(self) -> None:
        """Switch flat -> HNSW at the threshold, drop tombstones past the ratio, fold a large delta."""
        t = self.tuning
        if self.base_type == "flat" and self.live_count >= max(t.hnsw_threshold, 1):
            self.rebuild()
        elif self.dead_count > 0 and self.dead_count > t.max_tombstone_ratio * self.labels:
            self.rebuild()
        elif len(self.delta) > t.max_delta:
            self.fold_delta()

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

    def rebuild(self) -> None:
        """Renumber the live vectors densely into a new in-memory base (flat or HNSW by live count)."""
        live_labels = np.flatnonzero(self.live).astype(np.int64)
        vectors = self.vectors_of(live_labels)
        ids = [self.ids[int(label)] for label in live_labels]
        attrs = [self.attrs[int(label)] for label in live_labels]
        self.base = self._new_base(len(live_labels))
        if len(live_labels):
            self.base.add(vectors)
        self.read_only = False
        self.delta = _RowBuffer(self.dimension)
        self.ids, self.attrs = list(ids), list(attrs)
        self.label_of = {item: label for label, item in enumerate(ids)}  # type: ignore[misc]
        self.live = np.ones(len(ids), dtype=bool)
        self.postings = {name: {} for name in ATTRIBUTE_FIELDS}
        self._posting_arrays = {}
        for label, attr in enumerate(attrs):
            self._post(label, attr)  # type: ignore[arg-type]
        logger.info("rebuilt %s index: %d vectors, %s", self.kind, len(ids), self.base_type)

    def _new_base(self, size: int):
        faiss = _faiss()
        t = self.tuning
        if size >= max(t.hnsw_threshold, 1):
            index = faiss.IndexHNSWFlat(self.dimension, t.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = t.ef_construction
            index.hnsw.efSearch = t.ef_search
            self.base_type = "hnsw"
        else:
            index = faiss.IndexFlatIP(self.dimension)
            self.base_type = "flat"
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

    def _posting_array(self, name: str, value: str) -> np.ndarray | None:
        key = (name, value)
        cached = self._posting_arrays.get(key)
        if cached is None:
            bucket = self.postings[name].get(value)
            if bucket is None:
                return None
            cached = np.fromiter(bucket, dtype=np.int64, count=len(bucket))
            self._posting_arrays[key] = cached
        return cached

    def candidate_mask(self, flt: VectorFilter | None) -> np.ndarray | None:
        """A bool mask over labels of the searchable vectors, or None when every label is (live and)
        searchable. Built from the inverted lists: no document is scanned."""
        constraints = flt.constraints if flt is not None else {}
        excluded = flt.exclude_ids if flt is not None else ()
        if not constraints and not excluded and self.dead_count == 0:
            return None
        mask = self.live.copy()  # inverted lists hold live labels only; this also starts the AND
        for name, values in constraints.items():
            field_mask = np.zeros(self.labels, dtype=bool)
            for value in values:
                posting = self._posting_array(name, value)
                if posting is not None:
                    field_mask[posting] = True
            mask &= field_mask
        for item in excluded:
            label = self.label_of.get(item)
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
        return [Hit(self.ids[int(label)], float(score)) for score, label in zip(scores, labels)]  # type: ignore[arg-type]

    def _search_base(
        self, q: np.ndarray, k: int, mask: np.ndarray | None, candidates: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """faiss search of the base, the filter pushed in as an IDSelectorBitmap over base labels."""
        faiss = _faiss()
        selector = bitmap = None
        if mask is not None:
            bitmap = np.packbits(mask, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmap))
        if self.base_type == "hnsw":
            params = faiss.SearchParametersHNSW()
            params.efSearch = self._ef_for(k, candidates)
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        scores, labels = self.base.search(q, k, params=params)
        del selector, bitmap  # kept alive until faiss has returned
        return scores[0], labels[0]

    def _ef_for(self, k: int, candidates: int) -> int:
        """efSearch for an HNSW query: the tuned value, raised for a filter that keeps a small share of
        the base (the graph walk then meets many non-members), capped by ``max_ef_search``."""
        t = self.tuning
        share = candidates / max(self.base_rows, 1)
        ef = t.ef_search if share >= 0.5 else math.ceil(t.ef_search * math.sqrt(0.5 / share))
        return int(min(max(ef, k), max(t.max_ef_search, k)))

    def _scan_base(self, q: np.ndarray, k: int, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores of only these base rows (IndexFlat.compute_distance_subset: no copy)."""
        faiss = _faiss()
        flat = self.base if self.base_type == "flat" else faiss.downcast_index(self.base.storage)
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        scores = np.empty(len(labels), dtype=np.float32)
        flat.compute_distance_subset(1, faiss.swig_ptr(q), len(labels), faiss.swig_ptr(scores), faiss.swig_ptr(labels))
        return top_k(scores, labels, k)

    def _scan_delta(self, query: np.ndarray, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = self.delta.rows[rows] @ query
        return top_k(scores.astype(np.float32), rows.astype(np.int64) + self.base_rows, k)


class FaissBackend:
    """In-process vector backend: one faiss index per kind, exact below a size threshold, HNSW above.

    **Index type.** A kind with fewer than ``hnsw_threshold`` live vectors (default 20,000) is an exact
    ``IndexFlatIP``; when an upsert takes it to the threshold it is rebuilt as ``IndexHNSWFlat``
    (inner product, ``M=32``, ``efConstruction=100``, ``efSearch=128``), and stays HNSW until its next
    rebuild picks the type again by live count. String ids map to faiss's own sequential row numbers
    (no ``IndexIDMap2``): the row number *is* the int64 label every selector uses.

    **Deletion and replacement.** faiss HNSW cannot remove vectors, so neither index type is asked
    to: a deleted or replaced id leaves a *tombstone* (its label leaves the live mask and every
    inverted list). Tombstones never reach a result, not by over-fetching but because any search
    over a kind that has tombstones passes the live mask as its ID selector. When tombstones exceed
    ``max_tombstone_ratio`` (default 25%) of a kind's rows, that kind is rebuilt from its live vectors
    inside the write call: cheap for a flat index, a full HNSW build for a large one (about a minute
    for 100k x 512-d on one thread; call :meth:`compact` off-peak to choose the moment).

    **Filters** are pushed into faiss, never applied to results afterwards. Each kind keeps an
    inverted map ``(field, value) -> labels``; a filter becomes a bool mask over labels (unions within
    a field, intersections across fields, minus ``exclude_ids`` and tombstones). Then, by candidate
    count: at most ``exact_filter_limit`` (default 5,000) candidates are scored exactly with
    ``IndexFlat.compute_distance_subset`` (no copy, no graph walk, exact and faster than HNSW for a
    selective filter); more go to ``index.search`` with an ``IDSelectorBitmap`` in ``SearchParameters``
    / ``SearchParametersHNSW``, the latter with efSearch raised as the kept share falls (an HNSW walk
    under a selector meets many non-members), up to ``max_ef_search``.

    **Files and memory mapping.** :meth:`save` writes a directory: ``manifest.json`` (format,
    dimension, tuning, per-kind index type and counts, sha256 of every file), ``<kind>.faiss``,
    ``<kind>.ids.json`` and ``<kind>.attributes.json`` by label (``null`` for a tombstone) and, if a
    kind has buffered rows, ``<kind>.delta.npy`` (``allow_pickle=False``). No pickle anywhere.
    :meth:`load` checks every checksum before faiss reads a byte (faiss loads a corrupted file
    silently). With ``mmap=True`` it reads with ``IO_FLAG_MMAP_IFC | IO_FLAG_READ_ONLY``: in faiss 1.15
    that maps the whole file ``MAP_SHARED`` read-only for ``IndexFlatIP`` *and* ``IndexHNSWFlat`` (vectors
    and graph), so worker processes share the page cache. faiss's older ``IO_FLAG_MMAP`` only concerns
    IVF inverted lists: on flat and HNSW indexes it reads everything into private memory. A mapped
    index is read-only (``add`` on it aborts the process inside faiss), so new vectors go to an
    in-memory *delta* (exact numpy scan, merged into every search); past ``max_delta`` rows, or on a
    rebuild, the kind is copied to private memory and the delta folded in. Never overwrite a mapped
    file in place (SIGBUS): :meth:`save` writes a new directory and renames it.

    **Threads.** One lock serialises calls on one backend. faiss's OpenMP thread count is the
    caller's business (``faiss.omp_set_num_threads(1)`` per worker); nothing here sets it.
    """

    def __init__(
        self,
        dimension: int,
        *,
        kinds: Sequence[str] = KINDS,
        hnsw_threshold: int = 20_000,
        hnsw_m: int = 32,
        ef_construction: int = 100,
        ef_search: int = 128,
        max_ef_search: int = 1024,
        exact_filter_limit: int = 5_000,
        max_tombstone_ratio: float = 0.25,
        max_delta: int = 5_000,
    ) -> None:
        if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension <= 0:
            raise InvalidInputError(f"dimension must be a positive integer, got {dimension!r}")
        self.dimension = dimension
        self.tuning = FaissTuning(
            hnsw_threshold=hnsw_threshold,
            hnsw_m=hnsw_m,
            ef_construction=ef_construction,
            ef_search=ef_search,
            max_ef_search=max_ef_search,
            exact_filter_limit=exact_filter_limit,
            max_tombstone_ratio=max_tombstone_ratio,
            max_delta=max_delta,
        )
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
            found = [(item, index.label_of[item]) for item in dict.fromkeys(id_list) if item in index.label_of]
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

    def compact(self, kind: str | None = None) -> None:
        """Rebuild (drop tombstones, fold the delta, pick flat/HNSW by live count) one kind or all."""
        with self._lock:
            for name in [kind] if kind is not None else self.kinds:
                self._kind(name).rebuild()

    def index_type(self, kind: str) -> str:
        """``"flat"`` or ``"hnsw"``."""
        return self._kind(kind).base_type

    def stats(self, kind: str) -> dict[str, Any]:
        index = self._kind(kind)
        with self._lock:
            return {
                "index_type": index.base_type,
                "count": index.live_count,
                "tombstones": index.dead_count,
                "base_rows": index.base_rows,
                "delta_rows": len(index.delta),
                "memory_mapped": index.read_only,
            }

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
                    _write_json(staging / f"{kind}.ids.json", index.ids)
                    _write_json(
                        staging / f"{kind}.attributes.json",
                        [None if a is None else a.to_dict() for a in index.attrs],
                    )
                    kinds[kind] = {
                        "index_type": index.base_type,
                        "count": index.live_count,
                        "labels": index.labels,
                        "base_rows": index.base_rows,
                        "delta_rows": len(index.delta),
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
        flags = (faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY) if mmap else 0
        for kind, info in kinds_info.items():
            for name in (f"{kind}.faiss", f"{kind}.ids.json", f"{kind}.attributes.json"):
                if name not in files:
                    raise IndexCorruptedError(f"{directory}: manifest has no checksum for {name}")
            index = backend._kinds[kind]
            base = faiss.read_index(str(directory / f"{kind}.faiss"), flags)
            ids = json.loads((directory / f"{kind}.ids.json").read_text(encoding="utf-8"))
            attrs_raw = json.loads((directory / f"{kind}.attributes.json").read_text(encoding="utf-8"))
            delta_name = f"{kind}.delta.npy"
            delta = np.load(directory / delta_name, allow_pickle=False) if delta_name in files else None
            delta_rows = 0 if delta is None else delta.shape[0]
            if base.d != dimension or (delta is not None and delta.shape[1:] != (dimension,)):
                raise IndexCorruptedError(f"{directory}: {kind} vectors do not have dimension {dimension}")
            if not (len(ids) == len(attrs_raw) == base.ntotal + delta_rows == info.get("labels")):
                raise IndexCorruptedError(
                    f"{directory}: {kind} has {base.ntotal}+{delta_rows} vectors, {len(ids)} ids, "
                    f"{len(attrs_raw)} attribute rows, manifest says {info.get('labels')}"
                )
            index.base = base
            index.base_type = "hnsw" if isinstance(base, faiss.IndexHNSW) else "flat"
            if index.base_type != info.get("index_type"):
                raise IndexCorruptedError(f"{directory}: {kind} index is {index.base_type}, manifest says {info}")
            index.read_only = bool(mmap)
            if delta is not None:
                index.delta = _RowBuffer(dimension, delta)
            index.ids = [None if item is None else str(item) for item in ids]
            index.attrs = [None if a is None else DocAttributes.from_mapping(a) for a in attrs_raw]
            index.live = np.array([item is not None for item in index.ids], dtype=bool)
            index.label_of = {item: label for label, item in enumerate(index.ids) if item is not None}
            if len(index.label_of) != int(index.live.sum()) or len(index.label_of) != info.get("count"):
                raise IndexCorruptedError(f"{directory}: {kind} ids are duplicated or the count is wrong")
            for label, attr in enumerate(index.attrs):
                if (attr is None) != (index.ids[label] is None):
                    raise IndexCorruptedError(f"{directory}: {kind} label {label} has an id xor attributes")
                if attr is not None:
                    index._post(label, attr)
            if not mmap:
                index.fold_delta()
        logger.info("loaded vector backend from %s (mmap=%s)", directory, mmap)
        return backend


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
    if found != FORMAT:
        raise IndexCorruptedError(f"{path}: unknown format {found!r}, expected {FORMAT!r}")
    return manifest
