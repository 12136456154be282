"""Text embedders: the real one goes through sentence-transformers; a hashing one serves fast unit tests."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from nlp_service.errors import ModelError

logger = logging.getLogger(__name__)


class Embedder(Protocol):
    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""
        ...


class SentenceTransformerEmbedder:
    """Any local sentence-transformers model folder (default: the USE multilingual folder under models/)."""

    def __init__(self, model_path: Path, *, batch_size: int = 64, threads: int = 1) -> None:
        model_path = Path(model_path)
        if not (model_path / "modules.json").is_file():
            raise ModelError(
                f"no sentence-transformers model at {model_path}; run 'nlp-service prepare-model' "
                "(or point NLP_SERVICE_MODEL_PATH at a local model folder)"
            )
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(max(1, threads))
        try:
            self._model = SentenceTransformer(
                str(model_path), device="cpu", local_files_only=True, trust_remote_code=True
            )
        except Exception as exc:  # a broken folder can fail in many library-specific ways
            raise ModelError(f"cannot load the model at {model_path}: {exc}") from exc
        # A folder called "model" inside a package says little: name it after its parent then.
        generic = model_path.name.lower() in {"model", "models"}
        self.name = model_path.resolve().parent.name if generic else model_path.name
        self.path = model_path
        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            dimension = int(self._model.encode(["dimension probe"]).shape[1])
        self.dimension = int(dimension)
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


_WORD = re.compile(r"[a-z0-9]+|[\u4e00-\u9fff]")


class HashingEmbedder:
    """Deterministic bag of hashed words and Han-character bigrams. Cheap; no cross-lingual meaning.

    For unit tests of index plumbing only: end-to-end tests use the real model.
    """

    def __init__(self, dimension: int = 64) -> None:
        self.name = f"hashing-{dimension}"
        self.dimension = dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            pieces = _WORD.findall(text.lower())
            grams = pieces + [a + b for a, b in zip(pieces, pieces[1:])]
            for gram in grams:
                digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest()
                index = int.from_bytes(digest[:4], "little") % self.dimension
                sign = 1.0 if digest[4] & 1 else -1.0
                out[row, index] += sign
            norm = np.linalg.norm(out[row])
            if norm > 0:
                out[row] /= norm
            else:
                out[row, 0] = 1.0
        return out
