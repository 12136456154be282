"""Durable embedded storage: the SQLite document store (``nlp_service.store.documents``)."""

from nlp_service.store.documents import (
    Analysis,
    AnalysisKey,
    Change,
    DocumentStore,
    ImportReport,
    Page,
    StoredDocument,
    StoreError,
    WriteResult,
    content_hash,
    import_documents,
    model_fingerprint,
)

__all__ = [
    "Analysis",
    "AnalysisKey",
    "Change",
    "DocumentStore",
    "ImportReport",
    "Page",
    "StoredDocument",
    "StoreError",
    "WriteResult",
    "content_hash",
    "import_documents",
    "model_fingerprint",
]
