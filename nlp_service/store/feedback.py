"""Coordinators' feedback on matches, stored durably in one SQLite table.

One file (plus SQLite's ``-wal`` and ``-shm`` beside it) holds one table::

    feedback (id, created_at, query_sha256, query_id, kind, match_id, rank, band, outcome, reason,
              index_version)

and the schema version in ``PRAGMA user_version``. The query *text* is never stored: only its SHA-256
(``query_sha256``), or the id of an indexed document that was the query (``query_id``). ``record``
returns only after ``COMMIT`` with ``synchronous=FULL`` in WAL mode, so an acknowledged entry survives
a killed process and a power loss. Each call opens its own short connection, so one store may be shared
by threads and survives a ``fork()``; nothing touches the disk before the first call.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from nlp_service.corpus import KINDS
from nlp_service.errors import InvalidInputError
from nlp_service.store.documents import StoreError, set_wal

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
OUTCOMES: tuple[str, ...] = ("contacted", "accepted", "declined")
BANDS: tuple[str, ...] = ("strong", "possible", "weak")  # nlp_service.matching.BANDS
MAX_RANK = 50  # nlp_service.matching.MAX_TOP_K
MAX_REASON_CHARS = 500
MAX_ID_CHARS = 200
FIELDS = ("query_text", "query_id", "kind", "match_id", "rank", "band", "outcome", "reason", "index_version")

_SCHEMA = """
CREATE TABLE feedback (
    id            INTEGER PRIMARY KEY,
    created_at    TEXT    NOT NULL,
    query_sha256  TEXT    CHECK (query_sha256 IS NULL OR length(query_sha256) = 64),
    query_id      TEXT,
    kind          TEXT    NOT NULL CHECK (kind IN ('volunteer', 'request')),
    match_id      TEXT    NOT NULL,
    rank          INTEGER NOT NULL CHECK (rank >= 1),
    band          TEXT    NOT NULL CHECK (band IN ('strong', 'possible', 'weak')),
    outcome       TEXT    NOT NULL CHECK (outcome IN ('contacted', 'accepted', 'declined')),
    reason        TEXT,
    index_version TEXT,
    CHECK ((query_sha256 IS NULL) <> (query_id IS NULL))
)
"""


def query_hash(text: str) -> str:
    """SHA-256 (hex) of a query text's UTF-8 bytes: what the store keeps instead of the text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class FeedbackEntry:
    """One outcome a coordinator recorded for the match at ``rank`` of a query. Build with :meth:`build`."""

    kind: str  # the kind of the query; the match is of the other kind
    match_id: str
    rank: int
    band: str
    outcome: str
    query_sha256: str | None = None
    query_id: str | None = None
    reason: str | None = None
    index_version: str | None = None

    @classmethod
    def build(cls, *, query_text: Any = None, query_id: Any = None, kind: Any = None, match_id: Any = None,
              rank: Any = None, band: Any = None, outcome: Any = None, reason: Any = None,
              index_version: Any = None, max_query_chars: int = 20_000) -> "FeedbackEntry":
        """Check every field (values may come straight from JSON) and hash the query text."""
        if (query_text is None) == (query_id is None):
            raise InvalidInputError("give exactly one of 'query_text' (the text that was matched) or 'query_id' "
                                    "(the id of the indexed document that was matched)")
        digest = query_hash(_text("query_text", query_text, max_query_chars)) if query_text is not None else None
        return cls(
            kind=_choice("kind", kind, KINDS),
            match_id=_text("match_id", match_id, MAX_ID_CHARS).strip(),
            rank=_rank(rank),
            band=_choice("band", band, BANDS),
            outcome=_choice("outcome", outcome, OUTCOMES),
            query_sha256=digest,
            query_id=_text("query_id", query_id, MAX_ID_CHARS).strip() if query_id is not None else None,
            reason=_reason(reason),
            index_version=_text("index_version", index_version, 100).strip() if index_version is not None else None,
        )

    @property
    def query_key(self) -> str:
        """What identifies the query: ``sha256:<hex>`` or ``id:<document id>``."""
        return f"sha256:{self.query_sha256}" if self.query_sha256 else f"id:{self.query_id}"


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """A stored entry with its row id and UTC creation time."""

    id: int
    created_at: str
    entry: FeedbackEntry

    def to_dict(self) -> dict[str, Any]:
        e = self.entry
        return {"id": self.id, "created_at": self.created_at, "query_sha256": e.query_sha256,
                "query_id": e.query_id, "kind": e.kind, "match_id": e.match_id, "rank": e.rank, "band": e.band,
                "outcome": e.outcome, "reason": e.reason, "index_version": e.index_version}


class FeedbackStore:
    """The feedback table in one SQLite file. Cheap to build: the file is opened (and created) on first use."""

    def __init__(self, path: Path, *, create: bool = True, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.create = create
        self.busy_timeout = busy_timeout
        self._ready = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FeedbackStore({str(self.path)!r})"

    def record(self, entry: FeedbackEntry) -> FeedbackRecord:
        """Insert one entry; returns after the transaction is committed (and fsynced)."""
        created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        with self._connect() as conn:
            cursor = conn.execute(
                "INSERT INTO feedback (created_at, query_sha256, query_id, kind, match_id, rank, band, outcome, "
                "reason, index_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (created, entry.query_sha256, entry.query_id, entry.kind, entry.match_id, entry.rank, entry.band,
                 entry.outcome, entry.reason, entry.index_version),
            )
            conn.commit()
            row_id = int(cursor.lastrowid or 0)
        logger.info("recorded feedback %s: %s at rank %s (%s)", row_id, entry.outcome, entry.rank, entry.band)
        return FeedbackRecord(row_id, created, entry)

    def count(self) -> int:
        with self._connect() as conn:
            return int(conn.execute("SELECT count(*) FROM feedback").fetchone()[0])

    def records(self) -> list[FeedbackRecord]:
        """Every entry, oldest first."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, created_at, query_sha256, query_id, kind, match_id, rank, band, outcome, reason, "
                "index_version FROM feedback ORDER BY id").fetchall()
        return [FeedbackRecord(r[0], r[1], FeedbackEntry(kind=r[4], match_id=r[5], rank=r[6], band=r[7], outcome=r[8],
                                                          query_sha256=r[2], query_id=r[3], reason=r[9],
                                                          index_version=r[10])) for r in rows]

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self.create and not self.path.is_file():
            raise StoreError(f"no feedback database at {self.path}; record feedback first or pass --feedback-db")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open feedback database {self.path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA synchronous = FULL")
            if not self._ready:
                with self._lock:
                    if not self._ready:
                        self._ensure_schema(conn)
                        self._ready = True
            yield conn
        except sqlite3.Error as exc:
            conn.rollback()
            raise StoreError(f"feedback database {self.path}: {exc}") from exc
        finally:
            conn.close()

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        mode = set_wal(conn, self.busy_timeout)
        if str(mode).lower() != "wal":
            raise StoreError(f"feedback database {self.path}: WAL mode is unavailable (journal_mode is {mode!r})")
        conn.execute("BEGIN IMMEDIATE")  # two processes creating one new file: the second waits, then sees it
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version == SCHEMA_VERSION and "feedback" in tables:
            conn.rollback()
            return
        if version > SCHEMA_VERSION:
            conn.rollback()
            raise StoreError(f"feedback database {self.path} has schema version {version}; this code reads "
                             f"version {SCHEMA_VERSION}. Upgrade nlp-service or use another file")
        if tables:
            conn.rollback()
            raise StoreError(f"{self.path} is an SQLite database but not a feedback store (tables: {sorted(tables)})")
        conn.execute(_SCHEMA)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.commit()
        logger.info("created feedback database %s (schema version %s)", self.path, SCHEMA_VERSION)


def entry_from_mapping(body: Mapping[str, Any], *, max_query_chars: int = 20_000) -> FeedbackEntry:
    """A JSON object's fields -> :class:`FeedbackEntry`; unknown fields are rejected (they are usually typos)."""
    unknown = [k for k in body if k not in FIELDS]
    if unknown:
        names = ", ".join(repr(k.encode("utf-8", "replace").decode("utf-8")) for k in sorted(unknown)[:5])
        raise InvalidInputError(f"unknown field(s): {names}; use {', '.join(FIELDS)}")
    return FeedbackEntry.build(**{k: body[k] for k in FIELDS if k in body}, max_query_chars=max_query_chars)


def _text(name: str, value: Any, max_chars: int) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"'{name}' must be a string")
    if not value.strip():
        raise InvalidInputError(f"'{name}' is empty or only whitespace")
    if len(value) > max_chars:
        raise InvalidInputError(f"'{name}' has {len(value)} characters; the limit is {max_chars}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"'{name}' contains an unpaired surrogate (invalid Unicode)") from exc
    if "\x00" in value:
        raise InvalidInputError(f"'{name}' contains a NUL character")
    return value


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InvalidInputError(f"'{name}' is required: one of {', '.join(choices)}")
    return value


def _rank(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RANK:
        raise InvalidInputError(f"'rank' is required: the match's position, an integer between 1 and {MAX_RANK}")
    return value


def _reason(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError("'reason' must be a string (or left out)")
    if len(value) > MAX_REASON_CHARS:
        raise InvalidInputError(f"'reason' has {len(value)} characters; the limit is {MAX_REASON_CHARS}")
    value = " ".join(value.split())
    if not value:
        return None
    return _text("reason", value, MAX_REASON_CHARS)
