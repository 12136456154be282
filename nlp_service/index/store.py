"""Versioned index directories with an atomic pointer swap.

Layout of ``index_dir``::

    CURRENT                      # the published version's name; replaced atomically (os.replace)
    versions/<version>/          # one complete, immutable index per version
        manifest.json            # model, dimension, taxonomy version, counts, corpus hash, checksums
        documents.jsonl          # id, kind, text, metadata and tags of every document
        volunteer/vectors.faiss  volunteer/ids.json
        request/vectors.faiss    request/ids.json
    .staging-<version>/          # a build in progress; renamed into versions/ only when complete

A build that fails or is killed leaves only a staging folder behind: CURRENT still names the old version.
Publishing keeps the previous version until the next publish, so readers that opened it can finish.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from nlp_service.corpus import KINDS, Document
from nlp_service.errors import IndexCorruptedError, IndexNotFoundError, NlpServiceError
from nlp_service.index.vector_index import FaissIndex

logger = logging.getLogger(__name__)

FORMAT = "nlp-service-index/1"
FORMATS = ("nlp-service-index/1", "nlp-service-index/2")
BIG_FILE = 16 * 1024 * 1024
POINTER = "CURRENT"
VERSIONS = "versions"
MANIFEST = "manifest.json"
DOCUMENTS = "documents.jsonl"
LOCK = ".rebuild.lock"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class IndexedDocument:
    document: Document
    tags: tuple[dict[str, Any], ...]
    needs: dict[str, Any] | None = None
    lang: str = "en"
    tag_objs: tuple[Any, ...] = ()  # the tags as nlp_service.extract.tagger.Tag
    needs_obj: Any = None  # nlp_service.extract.needs.Needs
    # (offered/needed, declined, context) concept ids
    role_concepts: tuple[frozenset[str], frozenset[str], frozenset[str]] | None = None

    @classmethod
    def from_row(cls, document: Document, tags: Sequence[dict[str, Any]], needs: dict[str, Any] | None,
                 lang: str | None) -> "IndexedDocument":
        from nlp_service.extract.needs import Needs
        from nlp_service.extract.segment import detect_language

        needs_obj = Needs.from_dict(needs) if needs else Needs()
        return cls.from_parts(document, tags, needs_obj, lang or detect_language(document.text), needs)

    @classmethod
    def from_parts(cls, document: Document, tags: Sequence[dict[str, Any]], needs_obj: Any, lang: str,
                   needs: dict[str, Any] | None = None) -> "IndexedDocument":
        """From parsed needs (``needs``: their dict form, made when not given)."""
        from nlp_service.extract.roles import MATCHING_ROLES
        from nlp_service.extract.tagger import Tag

        tag_objs = tuple(Tag.from_dict(t) for t in tags)
        role_concepts = (frozenset(t.concept_id for t in tag_objs if t.role in MATCHING_ROLES),
                         frozenset(t.concept_id for t in tag_objs if t.role == "declined"),
                         frozenset(t.concept_id for t in tag_objs if t.role == "context"))
        return cls(document, tuple(tags), needs if needs is not None else needs_obj.to_dict(), lang, tag_objs,
                   needs_obj, role_concepts)

    @property
    def concept_ids(self) -> frozenset[str]:
        """Concepts the document offers or needs."""
        return frozenset(t["concept_id"] for t in self.tags if t.get("role", "offered") in ("offered", "needed"))


@dataclass
class LoadedIndex:
    """A published index, verified against its manifest, ready for search."""

    version: str
    path: Path
    manifest: dict[str, Any]
    vectors: dict[str, FaissIndex]
    documents: dict[str, IndexedDocument] = field(default_factory=dict)

    @property
    def document_count(self) -> int:
        return len(self.documents)


class IndexStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def versions_dir(self) -> Path:
        return self.root / VERSIONS

    def current_version(self) -> str | None:
        try:
            name = (self.root / POINTER).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def version_path(self, version: str) -> Path:
        return self.versions_dir / version

    def list_versions(self) -> list[str]:
        if not self.versions_dir.is_dir():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if p.is_dir())

    @contextlib.contextmanager
    def rebuild_lock(self) -> Iterator[None]:
        """One rebuild at a time per index folder (an advisory lock the OS drops if the process dies)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise NlpServiceError(f"another rebuild is running on {self.root}") from exc
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def write_version(self, write: Callable[[Path], dict[str, Any]], *, locked: bool = False) -> str:
        """Run ``write(staging_dir)`` (which returns the manifest body), checksum, rename, publish.

        ``locked=True``: the caller already holds :meth:`rebuild_lock` for its whole rebuild.
        """
        with (contextlib.nullcontext() if locked else self.rebuild_lock()):
            self._remove_stale_staging()
            version = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
            staging = self.root / f".staging-{version}"
            staging.mkdir(parents=True)
            try:
                manifest = write(staging)
                paths = [p for p in sorted(staging.rglob("*")) if p.is_file()]
                files = {str(p.relative_to(staging)): sha256_file(p) for p in paths}
                # Big files are verified here, once, and by size and mtime when a worker loads them.
                stats = {str(p.relative_to(staging)): [p.stat().st_size, p.stat().st_mtime_ns]
                         for p in paths if p.stat().st_size > BIG_FILE}
                manifest = {"format": manifest.pop("format", FORMAT), "version": version, **manifest, "files": files,
                            "file_stats": stats}
                _write_json_atomic(staging / MANIFEST, manifest)
                _fsync_tree(staging)
                self.versions_dir.mkdir(parents=True, exist_ok=True)
                os.rename(staging, self.version_path(version))
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            previous = self.current_version()
            self._publish(version)
            self._prune(keep={version, previous})
            logger.info("published index version %s (previous: %s)", version, previous)
            return version

    def publish_existing(self, version: str) -> None:
        """Point CURRENT at a version already on disk (a rollback), after verifying it loads cleanly."""
        with self.rebuild_lock():
            if version not in self.list_versions():
                raise IndexNotFoundError(f"no index version {version!r} in {self.versions_dir}")
            self.verified_manifest(version)
            self._publish(version)
            logger.info("published existing index version %s", version)

    def _publish(self, version: str) -> None:
        tmp = self.root / f".{POINTER}.{uuid.uuid4().hex}"
        tmp.write_text(version + "\n", encoding="utf-8")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, self.root / POINTER)
        _fsync_dir(self.root)

    def _prune(self, keep: set[str | None]) -> None:
        for name in self.list_versions():
            if name not in keep:
                shutil.rmtree(self.version_path(name), ignore_errors=True)

    def _remove_stale_staging(self) -> None:
        for path in self.root.glob(".staging-*"):
            shutil.rmtree(path, ignore_errors=True)

    def verified_manifest(self, version: str | None = None) -> tuple[str, Path, dict[str, Any]]:
        """(version, path, manifest) of a version whose files check out: small files by sha256, files over
        ``BIG_FILE`` bytes by the size and mtime recorded when their checksum was computed at publish."""
        version = version or self.current_version()
        if version is None:
            raise IndexNotFoundError(f"no index is published in {self.root}; run 'nlp-service rebuild'")
        path = self.version_path(version)
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise IndexCorruptedError(f"index version {version} has no manifest at {manifest_path}")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise IndexCorruptedError(f"index version {version}: manifest is not valid JSON") from exc
        except OSError as exc:
            raise IndexCorruptedError(f"index version {version}: manifest cannot be read: {exc}") from exc
        if not isinstance(manifest, dict) or manifest.get("format") not in FORMATS:
            found = manifest.get("format") if isinstance(manifest, dict) else None
            raise IndexCorruptedError(f"index version {version}: unknown format {found!r}")
        stats = manifest.get("file_stats", {}) if isinstance(manifest.get("file_stats"), dict) else {}
        files = manifest.get("files", {})
        if not isinstance(files, dict):
            raise IndexCorruptedError(f"index version {version}: manifest 'files' is not an object")
        for name, expected in files.items():
            file_path = path / name
            if not file_path.is_file():
                raise IndexCorruptedError(f"index version {version}: file {name} is missing")
            recorded = stats.get(name)
            if recorded is not None:
                st = file_path.stat()
                if [st.st_size, st.st_mtime_ns] != list(recorded):
                    raise IndexCorruptedError(f"index version {version}: {name} changed after publish")
                continue
            if sha256_file(file_path) != expected:
                raise IndexCorruptedError(f"index version {version}: checksum mismatch for {name}")
        return version, path, manifest

    def load(self, version: str | None = None) -> LoadedIndex:
        """Load and verify a format-1 version (default: the published one)."""
        version, path, manifest = self.verified_manifest(version)
        if manifest.get("format") != FORMAT:
            raise IndexCorruptedError(f"index version {version} is {manifest.get('format')}: open it with Services")
        vectors = {kind: FaissIndex.load(path / kind) for kind in KINDS}
        documents: dict[str, IndexedDocument] = {}
        for line in (path / DOCUMENTS).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            raw = json.loads(line)
            meta = raw.get("meta", {})
            doc = Document(raw["id"], raw["kind"], raw["text"], meta)
            documents[doc.id] = IndexedDocument.from_row(doc, raw.get("tags", []), raw.get("needs"), raw.get("lang"))
        return LoadedIndex(version, path, manifest, vectors, documents)


def write_documents(path: Path, documents: list[Document], tags: list[list[dict[str, Any]]],
                    needs: list[dict[str, Any] | None] | None = None, langs: list[str] | None = None) -> None:
    needs = needs or [None] * len(documents)
    langs = langs or [None] * len(documents)  # type: ignore[list-item]
    with open(path, "w", encoding="utf-8") as handle:
        for document, doc_tags, doc_needs, lang in zip(documents, tags, needs, langs):
            row = {"id": document.id, "kind": document.kind, "text": document.text, "meta": document.meta,
                   "lang": lang, "tags": doc_tags, "needs": doc_needs}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_kind_vectors(directory: Path, documents: list[Document], vectors: np.ndarray) -> dict[str, int]:
    counts = {}
    dimension = vectors.shape[1]
    for kind in KINDS:
        rows = [i for i, d in enumerate(documents) if d.kind == kind]
        index = FaissIndex(dimension)
        if rows:
            index.add([documents[i].id for i in rows], vectors[rows])
        index.save(directory / kind)
        counts[kind] = len(rows)
    return counts


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
