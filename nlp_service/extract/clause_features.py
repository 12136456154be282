"""Features of a clause for the learned clause readers (the concept detector, the deliverable reader): its
sentence embedding beside its character 2-3-grams (hashed, l2-normalised), from its first ``CLAUSE_CHARS``
characters."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

HASH_FEATURES = 2**14
CLAUSE_CHARS = 400


def char_hashing():
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(analyzer="char_wb", ngram_range=(2, 3), n_features=HASH_FEATURES,
                             alternate_sign=False, norm="l2")


def clause_features(clauses: Sequence[str], embed: Callable[[Sequence[str]], np.ndarray], hashing=None):
    """A sparse (clauses x (embedding + HASH_FEATURES)) matrix; a clause repeated is embedded once."""
    from scipy import sparse

    texts = [c[:CLAUSE_CHARS] or "-" for c in clauses]
    unique = list(dict.fromkeys(texts))
    row = {text: n for n, text in enumerate(unique)}
    vectors = embed(unique)[[row[t] for t in texts]].astype(np.float32)
    return sparse.hstack([sparse.csr_matrix(vectors), (hashing or char_hashing()).transform(texts)]).tocsr()
