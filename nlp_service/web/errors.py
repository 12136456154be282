"""Domain errors and HTTP errors become one JSON shape: {"error": {"code", "message"}}."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from nlp_service import errors

logger = logging.getLogger(__name__)

STATUS = {
    errors.RequestTimeoutError: 408,
    errors.InputTooLargeError: 413,
    errors.InvalidInputError: 400,
    errors.DocumentNotFoundError: 404,
    errors.IndexNotFoundError: 503,
    errors.IndexCorruptedError: 503,
    errors.ModelError: 503,
    errors.AuthenticationError: 401,
    errors.PermissionDeniedError: 403,
}

HTTP_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
              415: "unsupported_media_type"}


def error_response(status: int, code: str, message: str):
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(errors.NlpServiceError)
    def domain_error(exc: errors.NlpServiceError):
        from nlp_service.store.documents import StoreError

        status = 503 if isinstance(exc, StoreError) else next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 500)
        if status >= 500:
            logger.error("%s: %s", type(exc).__name__, exc)
        response = error_response(status, exc.code, str(exc))
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="nlp-service writes"'
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            message = f"request body is larger than {app.config.get('MAX_CONTENT_LENGTH')} bytes"
        response = error_response(status, HTTP_CODES.get(status, exc.name.lower().replace(" ", "_")), message)
        if status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        logger.exception("unexpected error")
        return error_response(500, "internal_error", "internal error; see the service log")
