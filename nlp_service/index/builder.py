"""Build an index from corpus documents: tag and embed in batches, then write a new version."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from nlp_service.corpus import Document, corpus_hash
from nlp_service.extract.tagger import TaxonomyTagger
from nlp_service.index.embedder import Embedder
from nlp_service.index.store import DOCUMENTS, IndexStore, write_documents, write_kind_vectors

logger = logging.getLogger(__name__)

Progress = Callable[[int], None]


def document_embedding_text(document: Document) -> str:
    title = document.meta.get("title")
    if isinstance(title, str) and title.strip():
        return f"{title.strip()}\n{document.text}"
    return document.text


class IndexBuilder:
    def __init__(self, tagger: TaxonomyTagger, embedder: Embedder, store: IndexStore, *, batch_size: int = 64):
        self.tagger = tagger
        self.embedder = embedder
        self.store = store
        self.batch_size = batch_size

    def build(self, documents: Sequence[Document], progress: Progress | None = None) -> str:
        """Tag and embed every document, write a new version, publish it; return the version name.

        ``progress(n)`` is called after each batch with the number of documents it finished.
        """
        documents = list(documents)
        if not documents:
            raise ValueError("cannot build an index from an empty corpus")
        tags: list[list[dict[str, Any]]] = []
        needs: list[dict[str, Any] | None] = []
        langs: list[str] = []
        blocks: list[np.ndarray] = []
        for start in range(0, len(documents), self.batch_size):
            batch = documents[start : start + self.batch_size]
            tagged = self.tagger.tag_many([d.text for d in batch], [d.kind for d in batch],
                                          metas=[d.meta for d in batch])
            tags.extend([t.to_dict() for t in result.tags] for result in tagged)
            needs.extend(result.needs.to_dict() if result.needs is not None else None for result in tagged)
            langs.extend(result.lang for result in tagged)
            blocks.append(self.embedder.embed([document_embedding_text(d) for d in batch]))
            if progress is not None:
                progress(len(batch))
        vectors = np.vstack(blocks)
        digest = corpus_hash(documents)
        semantic = self.tagger.semantic

        def write(staging: Path) -> dict[str, Any]:
            counts = write_kind_vectors(staging, documents, vectors)
            write_documents(staging / DOCUMENTS, documents, tags, needs, langs)
            return {
                "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "model": {
                    "name": self.embedder.name,
                    "path": str(getattr(self.embedder, "path", "")),
                    "dimension": self.embedder.dimension,
                },
                "taxonomy": {"name": self.tagger.taxonomy.name, "version": self.tagger.taxonomy.full_version},
                "documents": {"total": len(documents), **counts},
                "corpus_hash": digest,
                "format_features": ["roles", "needs"],
                "tagging": {
                    "semantic": semantic is not None,
                    "thresholds": semantic.thresholds if semantic is not None else None,
                },
            }

        version = self.store.write_version(write)
        logger.info("built index %s from %s documents", version, len(documents))
        return version
