"""Parse and check JSON bodies by hand: every wrong input becomes an InvalidInputError (400/413)."""

from __future__ import annotations

import json
from typing import Any

from flask import Request
from werkzeug.exceptions import ClientDisconnected

from nlp_service.errors import InputTooLargeError, InvalidInputError, RequestTimeoutError
from nlp_service.extract.needs import Gazetteer
from nlp_service.matching import MatchFilters


def json_object(request: Request, max_bytes: int) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > max_bytes:
        raise InputTooLargeError(f"request body is larger than {max_bytes} bytes")
    try:
        raw = request.get_data(cache=False)
    except (OSError, ClientDisconnected) as exc:  # the socket timeout set per request by the WSGI entry point (slow or stalled bodies)
        raise RequestTimeoutError("the request body did not arrive in time") from exc
    if request.content_length is not None and len(raw) < request.content_length:
        # the server's reader gave up on a body that stopped arriving (socket timeout)
        raise RequestTimeoutError(f"the request body stopped after {len(raw)} of {request.content_length} bytes")
    if len(raw) > max_bytes:
        raise InputTooLargeError(f"request body is larger than {max_bytes} bytes")
    if not raw.strip():
        raise InvalidInputError("request body is empty; send a JSON object such as {\"text\": \"...\"}")
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidInputError("request body is not valid UTF-8") from exc
    except RecursionError as exc:
        raise InvalidInputError("request body is nested too deeply") from exc
    except ValueError as exc:
        raise InvalidInputError(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidInputError(f"request body must be a JSON object, got {_json_type(body)}")
    return body


def text_field(body: dict[str, Any], max_chars: int, name: str = "text") -> str:
    if name not in body:
        raise InvalidInputError(f"'{name}' is required")
    value = body[name]
    if not isinstance(value, str):
        raise InvalidInputError(f"'{name}' must be a string, got {_json_type(value)}")
    if not value.strip():
        raise InvalidInputError(f"'{name}' is empty or only whitespace")
    if len(value) > max_chars:
        raise InputTooLargeError(f"'{name}' has {len(value)} characters; the limit is {max_chars}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"'{name}' contains an unpaired surrogate (invalid Unicode)") from exc
    return value


def choice_field(body: dict[str, Any], name: str, choices: tuple[str, ...]) -> str:
    if name not in body:
        raise InvalidInputError(f"'{name}' is required: one of {', '.join(choices)}")
    value = body[name]
    if not isinstance(value, str) or value not in choices:
        raise InvalidInputError(f"'{name}' must be one of {', '.join(choices)}")
    return value


def optional_choice_field(body: dict[str, Any], name: str, choices: tuple[str, ...]) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or value not in choices:
        raise InvalidInputError(f"'{name}' must be one of {', '.join(choices)} (or left out)")
    return value


def int_field(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"'{name}' must be an integer between {low} and {high}")
    if not low <= value <= high:
        raise InvalidInputError(f"'{name}' must be between {low} and {high}, got {value}")
    return value


def filters_field(body: dict[str, Any], gazetteer: Gazetteer | None = None) -> MatchFilters | None:
    """``"filters": {"remote": bool, "languages": [str], "location": str}``, every key optional."""
    raw = body.get("filters")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidInputError(f"'filters' must be an object, got {_json_type(raw)}")
    unknown = set(raw) - {"remote", "languages", "location"}
    if unknown:
        names = ", ".join(sorted(repr(_printable(k)) for k in unknown))
        raise InvalidInputError(f"unknown filter(s): {names}; use remote, languages, location")
    remote = raw.get("remote")
    if remote is not None and not isinstance(remote, bool):
        raise InvalidInputError("'filters.remote' must be true or false")
    languages = raw.get("languages", [])
    if not isinstance(languages, list) or not all(isinstance(x, str) and x.strip() for x in languages):
        raise InvalidInputError("'filters.languages' must be a list of language codes such as [\"zh\", \"en\"]")
    location = raw.get("location")
    if location is not None and (not isinstance(location, str) or not location.strip() or len(location) > 100):
        raise InvalidInputError("'filters.location' must be a non-empty string of at most 100 characters")
    for value in [*languages, location or ""]:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInputError("'filters' contains an unpaired surrogate (invalid Unicode)") from exc
    return MatchFilters.build(remote, tuple(x.strip() for x in languages), location.strip() if location else None,
                              gazetteer)


def query_filters(args: Any, gazetteer: Gazetteer | None = None) -> MatchFilters | None:
    """Filters from a query string: ``?remote=true&languages=zh,en&location=上海`` (``language`` repeatable)."""
    remote_raw = args.get("remote")
    remote = None
    if remote_raw is not None:
        lowered = remote_raw.strip().lower()
        if lowered not in {"true", "false", "1", "0", "yes", "no"}:
            raise InvalidInputError("'remote' must be true or false")
        remote = lowered in {"true", "1", "yes"}
    languages = [x for value in args.getlist("languages") + args.getlist("language") for x in value.split(",")]
    languages = [x.strip() for x in languages if x.strip()]
    location = args.get("location")
    if location is not None and (not location.strip() or len(location) > 100):
        raise InvalidInputError("'location' must be a non-empty string of at most 100 characters")
    if remote is None and not languages and not location:
        return None
    for value in [*languages, location or ""]:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInputError("a filter contains an unpaired surrogate (invalid Unicode)") from exc
    return MatchFilters.build(remote, tuple(languages), location.strip() if location else None, gazetteer)


def _printable(value: str) -> str:
    """A key safe to echo back: unpaired surrogates replaced."""
    return value.encode("utf-8", "replace").decode("utf-8")


def query_int(args: Any, name: str, default: int, low: int, high: int) -> int:
    """An integer query-string parameter such as ``?top_k=5``."""
    raw = args.get(name)
    if raw is None:
        return default
    if not (raw.strip().isascii() and raw.strip().isdigit()):  # "²".isdigit() is True, int("²") fails
        raise InvalidInputError(f"'{name}' must be an integer between {low} and {high}")
    value = int(raw)
    if not low <= value <= high:
        raise InvalidInputError(f"'{name}' must be between {low} and {high}, got {value}")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
