"""A durable embedded document store on SQLite: documents, a change feed and an analysis cache.

One file (plus SQLite's ``-wal`` and ``-shm`` beside it) holds::

    schema_version     (version, applied_at)           one row per applied schema version
    counters           (name, value)                    'seq': the last sequence number handed out
    documents          (id, kind, text, meta, content_hash, seq, updated_at)
    changes            (seq, doc_id, kind, op)          the latest change of each id, tombstones included
    analyses           (content_hash, model_fingerprint, taxonomy_version, tags, needs, dim, vector)
    document_concepts  (concept_id, doc_id, role)       concepts of a document's *current* content

**Sequence numbers.** Every write that changes a document (create, update, delete) takes the next
``seq``. ``changes`` keeps one row per id, at its latest seq (a delete leaves a tombstone row), so the
feed is bounded by the number of ids ever stored and ``changes_since(s)`` names every id whose state
differs from what a reader saw at ``s``. Writers are serialised, so seqs become visible in order: a
reader never sees seq 10 committed while seq 9 is not. To build an index without holding a
transaction: read ``s = last_seq()``, stream ``iter_documents()``, then apply ``changes_since(s)``.

**Content hash.** ``content_hash(document)`` covers what analysis depends on: the text and
``meta["title"]``. Changing other metadata (``hours_per_week``...) is an update with a new seq, but the
document keeps its hash, its cached analysis and its concepts.

**Analysis cache.** Tags, needs and vector of one content under one model and one taxonomy version,
keyed by ``AnalysisKey``; documents with the same content share one row. ``documents_needing_analysis``
lists the ids whose current content has no row for a model and taxonomy.

**Concepts.** ``document_concepts`` is filled explicitly by ``attach_concepts(doc_id, content_hash,
concepts)``, which writes only if ``content_hash`` is still the document's current hash (a worker that
analysed an old text cannot attach stale concepts). A content change clears the document's concepts;
a metadata-only change keeps them; a delete removes them (foreign key, ``ON DELETE CASCADE``). The
store does not choose between taxonomies: the caller attaches the concepts of the taxonomy it serves.
``list(concept_id=...)`` then reads the ``(concept_id, doc_id)`` primary key, an indexed range scan.

**Durability and concurrency.** A write method returns only after ``COMMIT``. The database runs in WAL
mode. With ``synchronous="NORMAL"`` (the default) a committed write survives the process being killed
(the WAL frames are in the OS page cache when ``COMMIT`` returns) but the last commits may be lost on
power loss or an OS crash; ``synchronous="FULL"`` fsyncs the WAL on every commit and survives those
too, at the cost of one fsync per write call. Writes take the lock up front (``BEGIN IMMEDIATE``) and
wait up to ``busy_timeout`` seconds for another writer, so several processes can write one file. Each
instance owns one connection, guarded by a lock so threads may share it; a store must not cross a
``fork()`` (open a new one in the child).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Sequence

import numpy as np

from nlp_service.corpus import KINDS, Document
from nlp_service.errors import InvalidInputError, ModelError, NlpServiceError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MAX_PAGE = 10_000
MAX_CHANGES = 100_000
IMPORT_BATCH = 1_000
# A cached analysis row (a 512-d float32 vector is 2 KB, plus tags) is 2-4 KB: 4 KB pages hold one such
# row each and left 44% of the analyses table empty; 16 KB pages pack 4-7 (measured: file 17-45% smaller,
# same get latency, single-document commit ~90 -> ~150 us).
PAGE_SIZE = 16_384
_CHUNK = 500  # ids per "IN (...)" clause, well under SQLite's variable limit
_CONTENT_FORMAT = "nlp-service-content/1"

WriteStatus = Literal["created", "updated", "unchanged"]
ChangeOp = Literal["upsert", "delete"]
Synchronous = Literal["NORMAL", "FULL"]


class StoreError(NlpServiceError):
    """The document store cannot be opened, is corrupt, is busy beyond its timeout, or the disk failed."""

    code = "store_unavailable"


# --------------------------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A document as stored: the document itself, the hash of its analysed content, its seq and time."""

    document: Document
    content_hash: str
    seq: int
    updated_at: dt.datetime

    @property
    def id(self) -> str:
        return self.document.id

    @property
    def kind(self) -> str:
        return self.document.kind


@dataclass(frozen=True, slots=True)
class WriteResult:
    id: str
    status: WriteStatus
    seq: int  # the document's seq after the call (its old one when unchanged)


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    id: str
    kind: str  # the kind at that change (for a delete: the kind the document had)
    op: ChangeOp


@dataclass(frozen=True, slots=True)
class Page:
    items: tuple[StoredDocument, ...]
    next_cursor: str | None  # None on the last page


@dataclass(frozen=True, slots=True)
class ImportReport:
    created: int
    updated: int
    unchanged: int
    last_seq: int


@dataclass(frozen=True, slots=True)
class AnalysisKey:
    """What an analysis depends on: the content, the model's files and the taxonomy version."""

    content_hash: str
    model_fingerprint: str
    taxonomy_version: str

    def __post_init__(self) -> None:
        for name in ("content_hash", "model_fingerprint", "taxonomy_version"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise InvalidInputError(f"AnalysisKey.{name} must be a non-empty string, got {value!r}")
            _check_unicode(value, f"AnalysisKey.{name}")


@dataclass(frozen=True, slots=True, eq=False)
class Analysis:
    """Tags (``Tag.to_dict()`` rows), needs and the embedding of one content. ``vector`` is a read-only
    1-D float32 array. Compared by identity (numpy arrays have no single truth value)."""

    tags: list[dict[str, Any]]
    needs: dict[str, Any]
    vector: np.ndarray

    def __post_init__(self) -> None:
        if not isinstance(self.tags, list) or not all(isinstance(t, dict) for t in self.tags):
            raise InvalidInputError("Analysis.tags must be a list of objects")
        if not isinstance(self.needs, dict):
            raise InvalidInputError("Analysis.needs must be an object")
        vector = self.vector
        if not (isinstance(vector, np.ndarray) and vector.dtype == np.float32 and not vector.flags.writeable):
            try:
                vector = np.array(vector, dtype=np.float32)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"Analysis.vector must be numeric: {exc}") from exc
            vector.setflags(write=False)
        if vector.ndim != 1 or vector.size == 0:
            raise InvalidInputError(f"Analysis.vector must be a non-empty 1-D array, got shape {vector.shape}")
        if not np.isfinite(vector).all():
            raise InvalidInputError("Analysis.vector contains NaN or infinity")
        object.__setattr__(self, "vector", vector)

    @property
    def concept_ids(self) -> frozenset[str]:
        return frozenset(t["concept_id"] for t in self.tags if isinstance(t.get("concept_id"), str))


# ------------------------------------------------------------------------------------------- hashing


def content_hash(document: Document) -> str:
    """sha256 over what analysis reads: the text and ``meta["title"]`` (the embedded text is title + text)."""
    title = document.meta.get("title")
    title_part = "s" + title if isinstance(title, str) else "j" + json.dumps(title, ensure_ascii=False, sort_keys=True)
    digest = hashlib.sha256(_CONTENT_FORMAT.encode("utf-8"))
    for part in (title_part.encode("utf-8"), document.text.encode("utf-8")):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def model_fingerprint(model_dir: Path) -> str:
    """sha256 over the sorted relative paths, sizes and contents of the files of a model folder.

    Hidden files and folders (``.cache/``, ``.gitattributes``, lock files) are skipped; symlinks are
    followed. The result is memoised per folder and per (path, size, mtime) of every file, so a call
    costs one ``stat`` per file unless something changed.
    """
    root = Path(model_dir)
    if not root.is_dir():
        raise ModelError(f"model folder {root} does not exist or is not a folder")
    files: list[tuple[str, int, int]] = []
    for folder, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                continue
            path = Path(folder) / name
            stat = path.stat()
            files.append((path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns))
    if not files:
        raise ModelError(f"model folder {root} holds no files")
    return _hash_model_files(str(root.resolve()), tuple(sorted(files)))


@functools.lru_cache(maxsize=16)
def _hash_model_files(root: str, files: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for relative, size, _mtime in files:
        digest.update(f"{relative}\0{size}\0".encode("utf-8"))
        with open(Path(root) / relative, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------- schema

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    applied_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO counters (name, value) VALUES ('seq', 0);
CREATE TABLE IF NOT EXISTS documents (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('volunteer', 'request')),
    text          TEXT NOT NULL,
    meta          TEXT NOT NULL,          -- JSON object, keys sorted
    content_hash  TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    updated_at    TEXT NOT NULL           -- ISO 8601, UTC
);
CREATE INDEX IF NOT EXISTS documents_kind_id ON documents (kind, id);
CREATE TABLE IF NOT EXISTS changes (
    seq     INTEGER PRIMARY KEY,
    doc_id  TEXT NOT NULL UNIQUE,
    kind    TEXT NOT NULL,
    op      TEXT NOT NULL CHECK (op IN ('upsert', 'delete'))
);
CREATE TABLE IF NOT EXISTS analyses (
    content_hash       TEXT NOT NULL,
    model_fingerprint  TEXT NOT NULL,
    taxonomy_version   TEXT NOT NULL,
    tags               TEXT NOT NULL,     -- JSON array
    needs              TEXT NOT NULL,     -- JSON object
    dim                INTEGER NOT NULL CHECK (dim > 0),
    vector             BLOB NOT NULL CHECK (length(vector) = 4 * dim),   -- little-endian float32
    created_at         TEXT NOT NULL,
    UNIQUE (content_hash, model_fingerprint, taxonomy_version)
);
CREATE TABLE IF NOT EXISTS document_concepts (
    concept_id  TEXT NOT NULL,
    doc_id      TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    PRIMARY KEY (concept_id, doc_id, role)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS document_concepts_doc ON document_concepts (doc_id);
"""

_DOC_COLUMNS = "d.id, d.kind, d.text, d.meta, d.content_hash, d.seq, d.updated_at"


# ----------------------------------------------------------------------------------------------- store


class DocumentStore:
    """Documents, their change feed and their analysis cache in one SQLite file. Build with ``open``."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._conn = connection
        self.path = path
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._closed = False

    @classmethod
    def open(cls, path: Path, *, synchronous: Synchronous = "NORMAL", busy_timeout: float = 30.0) -> DocumentStore:
        """Open (creating if needed) the store at ``path``: WAL mode, foreign keys, the schema.

        ``synchronous="NORMAL"`` survives a killed process; ``"FULL"`` also survives power loss.
        ``busy_timeout`` is how many seconds a call waits for another process's write to finish.
        """
        if synchronous not in ("NORMAL", "FULL"):
            raise InvalidInputError(f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)) or not busy_timeout >= 0:
            raise InvalidInputError(f"busy_timeout must be a number of seconds >= 0, got {busy_timeout!r}")
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of document store {path}: {exc}") from exc
        try:
            conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open document store {path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # takes effect only when the file is created
            mode = set_wal(conn, busy_timeout)
            if str(mode).lower() != "wal":
                raise StoreError(f"document store {path}: WAL mode is unavailable (journal_mode is {mode!r})")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            _ensure_schema(conn, path)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot open document store {path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        logger.debug("opened document store %s (synchronous=%s)", path, synchronous)
        return cls(conn, path)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA optimize")
            self._conn.close()

    def __enter__(self) -> DocumentStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DocumentStore({str(self.path)!r})"

    # ------------------------------------------------------------------------------------- documents

    def upsert(self, documents: Sequence[Document]) -> list[WriteResult]:
        """Create or replace documents in one transaction; one result per document, in input order.

        A document equal to the stored one (kind, text and metadata) is ``unchanged`` and keeps its seq.
        Ids must be unique within one call.
        """
        rows = _prepare_documents(documents)
        if not rows:
            return []
        now = _now()
        with self._write() as conn:
            existing = {
                r[0]: r
                for chunk in _chunks([row[0] for row in rows])
                for r in conn.execute(
                    f"SELECT id, kind, content_hash, meta, seq FROM documents WHERE id IN ({_marks(chunk)})",
                    chunk,
                )
            }
            seq = _current_seq(conn)
            results: list[WriteResult] = []
            writes: list[tuple[Any, ...]] = []
            changes: list[tuple[Any, ...]] = []
            stale: list[tuple[str]] = []
            for doc_id, kind, text, meta, digest in rows:
                old = existing.get(doc_id)
                if old is not None and old[1:4] == (kind, digest, meta):  # the hash stands for text and title
                    results.append(WriteResult(doc_id, "unchanged", old[4]))
                    continue
                seq += 1
                writes.append((doc_id, kind, text, meta, digest, seq, now))
                changes.append((seq, doc_id, kind, "upsert"))
                if old is not None and old[2] != digest:
                    stale.append((doc_id,))
                results.append(WriteResult(doc_id, "created" if old is None else "updated", seq))
            if writes:
                conn.executemany(
                    "INSERT INTO documents (id, kind, text, meta, content_hash, seq, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, "
                    "text = excluded.text, meta = excluded.meta, content_hash = excluded.content_hash, "
                    "seq = excluded.seq, updated_at = excluded.updated_at",
                    writes,
                )
                conn.executemany("DELETE FROM document_concepts WHERE doc_id = ?", stale)
                _record_changes(conn, changes, seq)
        return results

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Delete documents in one transaction; returns the ids that existed. Each leaves a tombstone."""
        wanted = list(dict.fromkeys(_check_ids(ids, "ids")))
        if not wanted:
            return []
        with self._write() as conn:
            kinds = {
                r[0]: r[1]
                for chunk in _chunks(wanted)
                for r in conn.execute(f"SELECT id, kind FROM documents WHERE id IN ({_marks(chunk)})", chunk)
            }
            deleted = [doc_id for doc_id in wanted if doc_id in kinds]
            if deleted:
                seq = _current_seq(conn)
                changes = [(seq + n, doc_id, kinds[doc_id], "delete") for n, doc_id in enumerate(deleted, 1)]
                conn.executemany("DELETE FROM documents WHERE id = ?", [(doc_id,) for doc_id in deleted])
                _record_changes(conn, changes, seq + len(deleted))
        return deleted

    def get(self, doc_id: str) -> StoredDocument | None:
        _check_id(doc_id, "doc_id")
        with self._read() as conn:
            row = conn.execute(f"SELECT {_DOC_COLUMNS} FROM documents AS d WHERE d.id = ?", (doc_id,)).fetchone()
        return None if row is None else _stored(row)

    def get_many(self, ids: Sequence[str]) -> dict[str, StoredDocument]:
        """The stored documents among ``ids`` (missing ones absent), in a query per 500 ids."""
        wanted = list(dict.fromkeys(_check_ids(ids, "ids")))
        found: dict[str, StoredDocument] = {}
        with self._read() as conn:
            for chunk in _chunks(wanted):
                for row in conn.execute(f"SELECT {_DOC_COLUMNS} FROM documents AS d WHERE d.id IN ({_marks(chunk)})",
                                        chunk):
                    item = _stored(row)
                    found[item.id] = item
        return found

    def count(self, kind: str | None = None) -> int:
        _check_kind(kind)
        with self._read() as conn:
            if kind is None:
                return int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])
            return int(conn.execute("SELECT count(*) FROM documents WHERE kind = ?", (kind,)).fetchone()[0])

    def iter_documents(self, kind: str | None = None, batch: int = 1000) -> Iterator[StoredDocument]:
        """Every document (of ``kind``) in id order, ``batch`` rows per query, without a long transaction.

        Documents written while iterating may or may not appear; pair with ``last_seq`` before and
        ``changes_since`` after to catch up.
        """
        _check_kind(kind)
        _check_limit(batch, "batch", MAX_PAGE)
        return self._iter_documents(kind, batch)  # validated now, not at the first next()

    def _iter_documents(self, kind: str | None, batch: int) -> Iterator[StoredDocument]:
        after: str | None = None
        while True:
            rows = self._page_rows(kind, None, after, batch)
            yield from (_stored(row) for row in rows)
            if len(rows) < batch:
                return
            after = rows[-1][0]

    # ----------------------------------------------------------------------------------- change feed

    def last_seq(self) -> int:
        with self._read() as conn:
            return _current_seq(conn)

    def changes_since(self, seq: int, limit: int = 10_000) -> list[Change]:
        """Changes with a seq above ``seq``, in seq order: the latest change of each id, deletes included."""
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise InvalidInputError(f"seq must be an integer >= 0, got {seq!r}")
        _check_limit(limit, "limit", MAX_CHANGES)
        with self._read() as conn:
            rows = conn.execute(
                "SELECT seq, doc_id, kind, op FROM changes WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
            ).fetchall()
        return [Change(int(s), doc_id, kind, op) for s, doc_id, kind, op in rows]

    # ---------------------------------------------------------------------------------------- concepts

    def attach_concepts(self, doc_id: str, content_hash: str, concepts: Iterable[tuple[str, str]]) -> bool:
        """Replace a document's ``(concept_id, role)`` rows, computed from the content ``content_hash``.

        Returns False, writing nothing, when the document is gone or its content has changed since.
        """
        _check_id(doc_id, "doc_id")
        if not isinstance(content_hash, str) or not content_hash:
            raise InvalidInputError(f"content_hash must be a non-empty string, got {content_hash!r}")
        _check_unicode(content_hash, "content_hash")
        pairs: list[tuple[str, str, str]] = []
        for n, pair in enumerate(concepts):
            if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(p, str) and p for p in pair)):
                raise InvalidInputError(f"concepts[{n}] must be a (concept_id, role) pair of non-empty strings")
            _check_unicode(pair[0] + pair[1], f"concepts[{n}]")
            pairs.append((pair[0], doc_id, pair[1]))
        with self._write() as conn:
            row = conn.execute("SELECT content_hash FROM documents WHERE id = ?", (doc_id,)).fetchone()
            if row is None or row[0] != content_hash:
                return False
            conn.execute("DELETE FROM document_concepts WHERE doc_id = ?", (doc_id,))
            conn.executemany(
                "INSERT OR IGNORE INTO document_concepts (concept_id, doc_id, role) VALUES (?, ?, ?)", pairs
            )
        return True

    def concepts(self, doc_id: str) -> list[tuple[str, str]]:
        """The ``(concept_id, role)`` rows attached to a document, sorted."""
        _check_id(doc_id, "doc_id")
        with self._read() as conn:
            rows = conn.execute(
                "SELECT concept_id, role FROM document_concepts WHERE doc_id = ? ORDER BY concept_id, role",
                (doc_id,),
            ).fetchall()
        return [(c, r) for c, r in rows]

    # ---------------------------------------------------------------------------------- analysis cache

    def get_analyses(self, keys: Sequence[AnalysisKey]) -> dict[AnalysisKey, Analysis]:
        """The cached analyses among ``keys`` (misses are absent from the result)."""
        if isinstance(keys, (str, bytes)) or not isinstance(keys, Sequence):
            raise InvalidInputError("keys must be a sequence of AnalysisKey")
        groups: dict[tuple[str, str], list[str]] = {}
        for n, key in enumerate(keys):
            if not isinstance(key, AnalysisKey):
                raise InvalidInputError(f"keys[{n}] must be an AnalysisKey, got {type(key).__name__}")
            groups.setdefault((key.model_fingerprint, key.taxonomy_version), []).append(key.content_hash)
        found: dict[AnalysisKey, Analysis] = {}
        with self._read() as conn:
            for (model, taxonomy), hashes in groups.items():
                for chunk in _chunks(list(dict.fromkeys(hashes))):
                    for digest, tags, needs, dim, blob in conn.execute(
                        "SELECT content_hash, tags, needs, dim, vector FROM analyses WHERE model_fingerprint = ? "
                        f"AND taxonomy_version = ? AND content_hash IN ({_marks(chunk)})",
                        (model, taxonomy, *chunk),
                    ):
                        found[AnalysisKey(digest, model, taxonomy)] = _analysis(tags, needs, dim, blob)
        return found

    def put_analyses(self, items: Sequence[tuple[AnalysisKey, Analysis]]) -> None:
        """Store analyses in one transaction; an existing row for the same key is replaced."""
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
            raise InvalidInputError("items must be a sequence of (AnalysisKey, Analysis) pairs")
        rows: list[tuple[Any, ...]] = []
        now = _now()
        for n, item in enumerate(items):
            if not (isinstance(item, tuple) and len(item) == 2):
                raise InvalidInputError(f"items[{n}] must be an (AnalysisKey, Analysis) pair")
            key, analysis = item
            if not isinstance(key, AnalysisKey):
                raise InvalidInputError(f"items[{n}][0] must be an AnalysisKey, got {type(key).__name__}")
            if not isinstance(analysis, Analysis):
                raise InvalidInputError(f"items[{n}][1] must be an Analysis, got {type(analysis).__name__}")
            tags = _json(analysis.tags, f"items[{n}].tags")
            needs = _json(analysis.needs, f"items[{n}].needs")
            vector = analysis.vector.astype("<f4", copy=False).tobytes()
            rows.append((key.content_hash, key.model_fingerprint, key.taxonomy_version, tags, needs,
                         int(analysis.vector.size), vector, now))
        if not rows:
            return
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO analyses (content_hash, model_fingerprint, taxonomy_version, tags, needs, dim, vector, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (content_hash, model_fingerprint, taxonomy_version) DO UPDATE SET "
                "tags = excluded.tags, needs = excluded.needs, dim = excluded.dim, vector = excluded.vector, "
                "created_at = excluded.created_at",
                rows,
            )

    def documents_needing_analysis(
        self, model_fingerprint: str, taxonomy_version: str, kind: str | None = None
    ) -> list[str]:
        """Ids (sorted) whose current content has no cached analysis for this model and taxonomy."""
        AnalysisKey("-", model_fingerprint, taxonomy_version)  # validates both names
        _check_kind(kind)
        sql = (
            "SELECT d.id FROM documents AS d WHERE NOT EXISTS (SELECT 1 FROM analyses AS a WHERE "
            "a.content_hash = d.content_hash AND a.model_fingerprint = ? AND a.taxonomy_version = ?)"
        )
        params: tuple[Any, ...] = (model_fingerprint, taxonomy_version)
        if kind is not None:
            sql += " AND d.kind = ?"
            params += (kind,)
        with self._read() as conn:
            return [r[0] for r in conn.execute(sql + " ORDER BY d.id", params)]

    def prune_analyses(self) -> int:
        """Delete cached analyses whose content no current document has; returns how many."""
        with self._write() as conn:
            # NOT IN builds one temporary index of the current hashes: no permanent index to maintain
            cursor = conn.execute("DELETE FROM analyses WHERE content_hash NOT IN (SELECT content_hash FROM documents)")
            return int(cursor.rowcount)

    # ----------------------------------------------------------------------------------- maintenance

    def integrity_check(self) -> list[str]:
        """``PRAGMA integrity_check`` and ``foreign_key_check``: the problems found (empty when sound)."""
        with self._read() as conn:
            problems = [r[0] for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
            for table, rowid, *_ in conn.execute("PRAGMA foreign_key_check"):
                problems.append(f"foreign key violation in {table} row {rowid}")
        return problems

    # -------------------------------------------------------------------------------------- listing

    def list(
        self,
        *,
        kind: str | None = None,
        concept_id: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """One page of documents in id order, optionally of one kind and/or tagged with one concept.

        Pass the page's ``next_cursor`` back (with the same filters) for the next page. Keyset
        pagination: a page costs the same however deep it is, and concurrent writes never make a
        document appear twice or be skipped unless it was created or deleted meanwhile.
        """
        _check_kind(kind)
        if concept_id is not None and (not isinstance(concept_id, str) or not concept_id):
            raise InvalidInputError(f"concept_id must be a non-empty string, got {concept_id!r}")
        if concept_id is not None:
            _check_unicode(concept_id, "concept_id")
        _check_limit(limit, "limit", MAX_PAGE)
        after = None if cursor is None else _decode_cursor(cursor, kind, concept_id)
        rows = self._page_rows(kind, concept_id, after, limit + 1)
        items = tuple(_stored(row) for row in rows[:limit])
        next_cursor = _encode_cursor(items[-1].id, kind, concept_id) if len(rows) > limit else None
        return Page(items, next_cursor)

    # ------------------------------------------------------------------------------------- internals

    # (annotations below say Sequence: in this class body, after ``def list``, "list" names the method)
    def _page_rows(
        self, kind: str | None, concept_id: str | None, after: str | None, limit: int
    ) -> Sequence[tuple[Any, ...]]:
        where: list[str] = []
        params: list[Any] = []
        if concept_id is not None:
            # CROSS JOIN fixes the join order in SQLite: walk the (concept_id, doc_id) key in id order and
            # look each document up. Left to itself, the planner (no statistics) scanned every document of
            # the kind instead: 17-50 ms instead of ~1 ms per page at 100k documents.
            source = "document_concepts AS c CROSS JOIN documents AS d ON d.id = c.doc_id"
            key = "c.doc_id"
            where.append("c.concept_id = ?")
            params.append(concept_id)
        else:
            source, key = "documents AS d", "d.id"
        if kind is not None:
            where.append("d.kind = ?")
            params.append(kind)
        if after is not None:
            where.append(f"{key} > ?")
            params.append(after)
        sql = f"SELECT {_DOC_COLUMNS} FROM {source}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if concept_id is not None:
            sql += f" GROUP BY {key}"  # one row per document whatever its roles
        sql += f" ORDER BY {key} LIMIT ?"
        params.append(limit)
        with self._read() as conn:
            return conn.execute(sql, params).fetchall()

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _translate(self.path):
            self._check_process()
            yield self._conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed on exit, rolled back on any exception."""
        with self._lock, _translate(self.path):
            self._check_process()
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise

    def _check_process(self) -> None:
        if self._closed:
            raise StoreError(f"document store {self.path} is closed")
        if os.getpid() != self._pid:
            raise StoreError(f"document store {self.path} was opened in another process; open a new one after fork")


def import_documents(
    store: DocumentStore, documents: Iterable[Document], batch_size: int = IMPORT_BATCH
) -> ImportReport:
    """Upsert ``documents`` in transactions of ``batch_size``. A crash keeps the batches already
    committed; running the import again is cheap (unchanged documents are not rewritten)."""
    _check_limit(batch_size, "batch_size", MAX_PAGE)
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    batch: list[Document] = []

    def flush() -> None:
        for result in store.upsert(batch):
            counts[result.status] += 1
        batch.clear()

    for document in documents:
        batch.append(document)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return ImportReport(counts["created"], counts["updated"], counts["unchanged"], store.last_seq())


# ------------------------------------------------------------------------------------------ helpers


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    if _schema_version(conn) == SCHEMA_VERSION:
        return  # the common case: a read, no write lock
    conn.execute("BEGIN IMMEDIATE")  # two processes creating one new file: the second waits, then sees it
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "schema_version" in tables:
            version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
            if version is None or version > SCHEMA_VERSION:
                raise StoreError(
                    f"document store {path} has schema version {version}; this code reads version "
                    f"{SCHEMA_VERSION}. Upgrade nlp-service or use another file"
                )
            # migrations from older versions go here when SCHEMA_VERSION grows
        elif tables:
            raise StoreError(f"{path} is an SQLite database but not a document store (tables: {sorted(tables)})")
        else:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (SCHEMA_VERSION, _now()))
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def _schema_version(conn: sqlite3.Connection) -> int | None:
    try:
        version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    except sqlite3.OperationalError:  # no such table (yet)
        return None
    return None if version is None else int(version)


@contextlib.contextmanager
def _translate(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreError(
                f"document store {path} is busy: another process held the write lock longer than busy_timeout ({exc})"
            ) from exc
        raise StoreError(f"document store {path}: {exc}") from exc
    except sqlite3.Error as exc:
        raise StoreError(f"document store {path} is unreadable or corrupt: {exc}") from exc


def _current_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()[0])


def _record_changes(conn: sqlite3.Connection, changes: list[tuple[Any, ...]], last_seq: int) -> None:
    conn.executemany(
        "INSERT INTO changes (seq, doc_id, kind, op) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (doc_id) DO UPDATE SET seq = excluded.seq, kind = excluded.kind, op = excluded.op",
        changes,
    )
    conn.execute("UPDATE counters SET value = ? WHERE name = 'seq'", (last_seq,))


def _prepare_documents(documents: Sequence[Document]) -> list[tuple[str, str, str, str, str]]:
    if isinstance(documents, (str, bytes, Document)) or not isinstance(documents, Sequence):
        raise InvalidInputError("documents must be a sequence of Document")
    rows: list[tuple[str, str, str, str, str]] = []
    seen: set[str] = set()
    for n, document in enumerate(documents):
        where = f"documents[{n}]"
        if not isinstance(document, Document):
            raise InvalidInputError(f"{where} must be a Document, got {type(document).__name__}")
        _check_id(document.id, f"{where}.id")
        if document.id in seen:
            raise InvalidInputError(f"{where}.id: {document.id!r} appears twice in one call")
        seen.add(document.id)
        if document.kind not in KINDS:
            raise InvalidInputError(f"{where}.kind must be 'volunteer' or 'request', got {document.kind!r}")
        if not isinstance(document.text, str) or not document.text.strip():
            raise InvalidInputError(f"{where}.text must be a non-empty string")
        _check_unicode(document.text, f"{where}.text")
        if not isinstance(document.meta, dict):
            raise InvalidInputError(f"{where}.meta must be an object, got {type(document.meta).__name__}")
        meta = _json(document.meta, f"{where}.meta")
        rows.append((document.id, document.kind, document.text, meta, content_hash(document)))
    return rows


def _json(value: Any, where: str) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where} must be JSON-serialisable: {exc}") from exc
    _check_unicode(text, where)
    return text


def _check_unicode(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{where} contains an unpaired surrogate (invalid Unicode)") from exc


def _check_id(doc_id: Any, where: str) -> None:
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise InvalidInputError(f"{where} must be a non-empty string, got {doc_id!r}")
    if doc_id != doc_id.strip():
        raise InvalidInputError(f"{where} must not start or end with whitespace, got {doc_id!r}")
    _check_unicode(doc_id, where)


def _check_ids(ids: Sequence[str], where: str) -> list[str]:
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
        raise InvalidInputError(f"{where} must be a sequence of ids, not {type(ids).__name__}")
    for n, doc_id in enumerate(ids):
        _check_id(doc_id, f"{where}[{n}]")
    return list(ids)


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise InvalidInputError(f"kind must be 'volunteer' or 'request', got {kind!r}")


def _check_limit(value: Any, name: str, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidInputError(f"{name} must be an integer from 1 to {maximum}, got {value!r}")


def _encode_cursor(after: str, kind: str | None, concept_id: str | None) -> str:
    raw = json.dumps({"v": 1, "after": after, "kind": kind, "concept_id": concept_id}, ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def _decode_cursor(cursor: Any, kind: str | None, concept_id: str | None) -> str:
    problem = "cursor is not one returned by list()"
    if not isinstance(cursor, str) or not cursor or len(cursor) > 4096:
        raise InvalidInputError(problem)
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8"))
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError(problem) from exc
    if not isinstance(raw, dict) or raw.get("v") != 1 or not isinstance(raw.get("after"), str):
        raise InvalidInputError(problem)
    if raw.get("kind") != kind or raw.get("concept_id") != concept_id:
        raise InvalidInputError("cursor was issued for other filters: pass the same kind and concept_id")
    after: str = raw["after"]
    return after


def _stored(row: tuple[Any, ...]) -> StoredDocument:
    doc_id, kind, text, meta, digest, seq, updated_at = row
    return StoredDocument(Document(doc_id, kind, text, json.loads(meta)), digest, int(seq),
                          dt.datetime.fromisoformat(updated_at))


def _analysis(tags: str, needs: str, dim: int, blob: bytes) -> Analysis:
    vector = np.frombuffer(blob, dtype="<f4")
    if vector.size != dim:
        raise StoreError(f"a cached vector has {vector.size} values, its row says {dim}")
    return Analysis(json.loads(tags), json.loads(needs), vector.astype(np.float32, copy=False))


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _marks(items: Sequence[object]) -> str:
    return ", ".join("?" * len(items))


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()



def set_wal(conn: sqlite3.Connection, busy_timeout: float) -> str:
    """``PRAGMA journal_mode = WAL``, retried for up to ``busy_timeout`` seconds: while another process creates
    the file or switches it to WAL, SQLite answers "database is locked" at once, without waiting in its busy
    handler (two writers opening a new store together hit this)."""
    deadline = time.monotonic() + busy_timeout
    pause = 0.005
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)
