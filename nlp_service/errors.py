"""One error hierarchy for the package. The HTTP app and the CLI map these at the edge."""

from __future__ import annotations


class NlpServiceError(Exception):
    """Base class of every error this package raises on purpose."""

    code = "error"


class InvalidInputError(NlpServiceError):
    """The caller's input is wrong (empty text, wrong type, unknown kind...)."""

    code = "invalid_request"


class InputTooLargeError(InvalidInputError):
    code = "payload_too_large"


class DocumentNotFoundError(NlpServiceError):
    """No document with that id in the published index."""

    code = "document_not_found"


class TaxonomyError(NlpServiceError):
    """The taxonomy files are missing or break a rule (duplicates, missing labels...)."""

    code = "taxonomy_invalid"

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class CorpusError(NlpServiceError):
    """A corpus document is malformed."""

    code = "corpus_invalid"


class ModelError(NlpServiceError):
    """The embedding model folder is missing or cannot be loaded."""

    code = "model_unavailable"


class IndexNotFoundError(NlpServiceError):
    """No index has been published yet."""

    code = "index_unavailable"


class IndexCorruptedError(NlpServiceError):
    """A published index fails its checksum or manifest checks."""

    code = "index_corrupted"


class GoldDataError(NlpServiceError):
    """An evaluation gold file is malformed."""

    code = "gold_invalid"


class AuthenticationError(NlpServiceError):
    """A write came without a bearer token."""

    code = "unauthorized"


class PermissionDeniedError(NlpServiceError):
    """A write came with a token that is not accepted (or writes are not enabled)."""

    code = "forbidden"


class RequestTimeoutError(InvalidInputError):
    """The client announced a body and did not send it in time."""

    code = "request_timeout"
