"""The coordinator pages: server-rendered HTML (Jinja, autoescaped, no JavaScript) over the same library
the JSON API calls. Bad input re-renders the same page with a message and a 4xx status, never a 500.

    GET  /                          paste a text; POST / shows its tags, needs and explained matches
    POST /feedback                  a match's feedback form (contacted / accepted / declined + reason)
    GET  /documents                 browse and search the published index
    GET  /documents/<id>            one document: tags, needs, a link to its matches
    GET  /documents/<id>/matches    that document's explained matches, with feedback forms
    GET  /status                    the published index and the versions kept on disk

The UI language is ``?lang=zh|en``, remembered in a cookie.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, current_app, g, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from nlp_service.browse import DocumentFilter, browse_documents, index_versions
from nlp_service.corpus import KINDS
from nlp_service.errors import DocumentNotFoundError, InputTooLargeError, NlpServiceError
from nlp_service.matching import MAX_TOP_K, MatchResult, match_result_to_dict
from nlp_service.services import Services
from nlp_service.store.documents import StoreError
from nlp_service.store.feedback import OUTCOMES, FeedbackEntry
from nlp_service.web.errors import STATUS
from nlp_service.web.highlight import highlight
from nlp_service.web.i18n import DEFAULT_LANGUAGE, LANGUAGES, fit_note, translate

logger = logging.getLogger(__name__)
bp = Blueprint("pages", __name__, template_folder="templates", static_folder="static",
               static_url_path="/ui/static")

LANG_COOKIE = "ui_lang"
PER_PAGE = 20
PAGE_QUERY = frozenset({"kind", "concept", "q", "page", "top_k"})  # what the GET pages read from the query
ROLES = ("offered", "needed", "declined", "context")
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")


def services() -> Services:
    return current_app.extensions["nlp_service"]


def t(key: str, **values: object) -> str:
    return translate(g.get("lang", DEFAULT_LANGUAGE), key, **values)


class PageError(Exception):
    """Bad input found by a view: shown on the same page as ``message`` with ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# -- request plumbing -----------------------------------------------------------------------------------

@bp.before_request
def choose_language() -> None:
    g.started = time.perf_counter()
    asked = request.args.get("lang")
    g.lang_notice = asked is not None and asked not in LANGUAGES
    if asked in LANGUAGES:
        g.lang = asked
    else:
        cookie = request.cookies.get(LANG_COOKIE)
        g.lang = cookie if cookie in LANGUAGES else (request.accept_languages.best_match(LANGUAGES)
                                                     or DEFAULT_LANGUAGE)


@bp.after_request
def finish(response):
    asked = request.args.get("lang")
    if asked in LANGUAGES and request.cookies.get(LANG_COOKIE) != asked:
        response.set_cookie(LANG_COOKIE, asked, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
    elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
    logger.info("%s %s -> %s in %.1f ms", request.method, request.path, response.status_code, elapsed)  # no text
    return response


@bp.app_template_global()
def lang_url(lang: str) -> str:
    """This page in another UI language (a GET page keeps its query; a POST result goes back to the form)."""
    if request.method == "GET" and request.endpoint and request.endpoint != "pages.static":
        view_args = request.view_args or {}
        # keep only the page's own query: "_scheme", "_external"... steer url_for, a path name would clash
        args = {k: v for k, v in request.args.items() if k in PAGE_QUERY and k not in view_args}
        return url_for(request.endpoint, **view_args, **args, lang=lang)
    return url_for("pages.index", lang=lang)


@bp.context_processor
def template_helpers() -> dict[str, Any]:
    taxonomy = services().taxonomy

    def label(concept: dict | str) -> str:
        if isinstance(concept, str):
            c = taxonomy.concepts.get(concept)
            concept = {"label_en": c.label_en, "label_zh": c.label_zh} if c else {"label_en": concept}
        return (concept.get("label_zh") if g.lang == "zh" else None) or concept.get("label_en") or "?"

    lang = g.get("lang", DEFAULT_LANGUAGE)
    return {"t": t, "lang": lang, "label": label, "roles": ROLES, "fit_note": lambda note: fit_note(lang, str(note)),
            "outcomes": OUTCOMES, "kinds": KINDS, "max_top_k": MAX_TOP_K,
            "lang_notice": t("unknown_ui_language") if g.get("lang_notice") else None}


def _render(template: str, status: int = 200, **context: Any):
    return render_template(template, **context), status


def _form() -> Any:
    try:
        return request.form
    except RequestEntityTooLarge as exc:
        raise PageError(t("form_too_large"), 413) from exc


def _status_of(exc: NlpServiceError) -> int:
    if isinstance(exc, StoreError):
        return 503
    return next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 500)


def _top_k(raw: str | None) -> int:
    raw = (raw or "").strip()
    if not raw:
        return 10
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_TOP_K:
        raise PageError(t("top_k_invalid"))
    return int(raw)


def _query_text(form: Any) -> tuple[str, str]:
    text, kind = form.get("text", ""), form.get("kind", "")
    if not text.strip():
        raise PageError(t("text_required"))
    if len(text) > services().settings.max_text_chars:
        raise PageError(str(InputTooLargeError(f"the text has {len(text)} characters; the limit is "
                                               f"{services().settings.max_text_chars}")), 413)
    if kind not in KINDS:
        raise PageError(t("kind_required"))
    return text, kind


# -- presenting a match result ------------------------------------------------------------------------

def _needs_rows(needs: dict[str, Any] | None) -> list[tuple[str, str, str | None]]:
    """(label, value, evidence) rows for the needs block, in the UI language."""
    if not needs:
        return []
    zh = g.lang == "zh"
    causes = {c.id: (c.label_zh if zh else c.label_en) for c in services().needs.causes}

    def span(item: Any) -> str | None:
        return item.get("span", {}).get("surface") if isinstance(item, dict) and item.get("span") else None

    rows: list[tuple[str, str, str | None]] = []
    if loc := needs.get("location"):
        rows.append((t("need_location"), (loc.get("name_zh") if zh else None) or loc.get("name_en") or "?", span(loc)))
    if mode := needs.get("mode"):
        rows.append((t("need_mode"), t(f"mode_{mode.get('value')}"), span(mode)))
    for key in ("hours_per_week", "total_hours"):
        if item := needs.get(key):
            rows.append((t(f"need_{key}"), f"{item.get('value'):g} {t('hours_unit')}", span(item)))
    if item := needs.get("duration"):
        unit = f"unit_{item.get('unit')}" + ("_one" if item.get("value") == 1 else "")
        rows.append((t("need_duration"), f"{item.get('value'):g} {t(unit)}", span(item)))
    if item := needs.get("deadline"):
        rows.append((t("need_deadline"), str(item.get("date")), span(item)))
    if items := needs.get("dates"):
        rows.append((t("need_dates"), ", ".join(str(d.get("date")) for d in items), None))
    if items := needs.get("languages"):
        rows.append((t("need_languages"), ", ".join(str(d.get("code")) for d in items),
                     " / ".join(filter(None, (span(d) for d in items))) or None))
    if items := needs.get("causes"):
        rows.append((t("need_causes"), ", ".join(causes.get(d.get("id"), str(d.get("id"))) for d in items),
                     " / ".join(filter(None, (span(d) for d in items))) or None))
    if item := needs.get("deliverable"):
        rows.append((t("need_deliverable"), span(item) or "", None))
    return rows


def _result_context(result: MatchResult, text: str) -> dict[str, Any]:
    data = match_result_to_dict(result, services().taxonomy)
    query = data["query"]
    return {"result": data, "query_text": text, "pieces": highlight(text, query["tags"]), "tags": query["tags"],
            "needs_rows": _needs_rows(query.get("needs")), "query_lang": query.get("lang")}


def _run_text(text: str, kind: str, top_k: int) -> dict[str, Any]:
    svc = services()
    result = svc.matcher.match(svc.current_index(), text, kind, top_k)
    return {**_result_context(result, text), "text": text, "kind": kind, "top_k": top_k}


def _run_document(document_id: str, top_k: int) -> dict[str, Any]:
    svc = services()
    index = svc.current_index()
    entry = index.documents.get(document_id)
    if entry is None:
        raise DocumentNotFoundError(f"no document {document_id!r} in index {index.version}")
    result = svc.matcher.match_document(index, document_id, top_k)
    return {**_result_context(result, entry.document.text), "document": entry.document, "query_id": document_id,
            "kind": entry.document.kind, "top_k": top_k}


# -- views ----------------------------------------------------------------------------------------------

@bp.get("/")
def index():
    return _render("match.html", kind="request", top_k=10)


@bp.post("/")
def analyse():
    form: Any = {}
    try:
        form = _form()
        text, kind = _query_text(form)
        return _render("match.html", **_run_text(text, kind, _top_k(form.get("top_k"))))
    except (PageError, NlpServiceError) as exc:
        message, status = _problem(exc)
        return _render("match.html", status, error=message, **_form_echo(form))


@bp.post("/feedback")
def feedback():
    """One form per results page; the pressed button (``record=<rank>``) says which match. The results are
    computed again (the form carries the text, or the id of the indexed document that was matched)."""
    form: Any = {}
    try:
        form = _form()
        context = _rerun(form)
    except (PageError, NlpServiceError) as exc:
        message, status = _problem(exc)
        return _render("match.html", status, error=message, query_id=form.get("query_id"), **_form_echo(form))
    try:
        entry = _feedback_entry(form, context)
        services().feedback.record(entry)
    except (PageError, NlpServiceError) as exc:
        message, status = _problem(exc)
        return _render("match.html", status, **{**context, "error": t("feedback_invalid", message=message)})
    notice = t("feedback_saved", rank=entry.rank, match_id=entry.match_id, outcome=t(f"outcome_{entry.outcome}"))
    return _render("match.html", **context, notice=notice, saved_rank=entry.rank)


def _problem(exc: Exception) -> tuple[str, int]:
    if isinstance(exc, PageError):
        return exc.message, exc.status
    return str(exc), _status_of(exc) if isinstance(exc, NlpServiceError) else 500


def _form_echo(form: Any) -> dict[str, Any]:
    kind = form.get("kind")
    return {"text": form.get("text", ""), "kind": kind if kind in KINDS else None, "top_k": form.get("top_k", 10)}


def _rerun(form: Any) -> dict[str, Any]:
    query_id = form.get("query_id", "").strip()
    top_k = _top_k(form.get("top_k"))
    if query_id:
        return _run_document(query_id, top_k)
    text, kind = _query_text(form)
    return _run_text(text, kind, top_k)


def _feedback_entry(form: Any, context: dict[str, Any]) -> FeedbackEntry:
    raw = form.get("record", "")
    rank = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 4 else 0
    if form.get(f"outcome_{rank}") not in OUTCOMES:
        raise PageError(t("outcome_required", rank=rank or "?"))
    return FeedbackEntry.build(
        query_text=None if context.get("query_id") else context["text"], query_id=context.get("query_id"),
        kind=context["kind"], match_id=form.get(f"match_id_{rank}"), rank=rank, band=form.get(f"band_{rank}"),
        outcome=form.get(f"outcome_{rank}"), reason=form.get(f"reason_{rank}") or None,
        index_version=form.get("index_version") or None, max_query_chars=services().settings.max_text_chars)


@bp.get("/documents")
def documents():
    svc = services()
    args = request.args
    context: dict[str, Any] = {"kind": args.get("kind", ""), "concept": args.get("concept", ""),
                               "q": args.get("q", ""), "categories": _concept_choices()}
    try:
        page_raw = args.get("page", "1").strip()
        if not (page_raw.isascii() and page_raw.isdigit()) or int(page_raw) < 1:
            raise PageError(t("page_invalid"))
        query = DocumentFilter.build(context["kind"], context["concept"], context["q"], svc.taxonomy)
        found = browse_documents(svc.current_index(), query, int(page_raw), PER_PAGE)
    except PageError as exc:
        return _render("documents.html", exc.status, error=exc.message, **context)
    except NlpServiceError as exc:
        return _render("documents.html", _status_of(exc), error=str(exc), **context)
    filters = {k: v for k, v in (("kind", query.kind), ("concept", query.concept_id), ("q", query.text)) if v}
    return _render("documents.html", found=found, filters=filters, concept=query.concept_id or "", **{
        k: v for k, v in context.items() if k != "concept"})


def _concept_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    taxonomy = services().taxonomy
    zh = g.lang == "zh"
    return [((c.label_zh if zh else c.label_en),
             [(concept.id, concept.label_zh if zh else concept.label_en) for concept in taxonomy.concepts_in(c.id)])
            for c in taxonomy.categories.values()]


@bp.get("/documents/<document_id>")
def document(document_id: str):
    try:
        index = services().current_index()
        entry = index.documents.get(document_id)
        if entry is None:
            raise DocumentNotFoundError(f"no document {document_id!r} in index {index.version}")
    except NlpServiceError as exc:
        return _render("document.html", _status_of(exc), error=str(exc), document_id=document_id)
    tags = list(entry.tags)
    return _render("document.html", document_id=document_id, entry=entry, tags=tags,
                   pieces=highlight(entry.document.text, tags), needs_rows=_needs_rows(entry.needs),
                   meta={k: v for k, v in entry.document.meta.items() if k != "title"}, index_version=index.version)


@bp.get("/documents/<document_id>/matches")
def document_matches(document_id: str):
    try:
        context = _run_document(document_id, _top_k(request.args.get("top_k")))
    except PageError as exc:
        return _render("match.html", exc.status, error=exc.message, query_id=document_id)
    except NlpServiceError as exc:
        return _render("match.html", _status_of(exc), error=str(exc), query_id=document_id)
    return _render("match.html", **context)


@bp.get("/status")
def status():
    svc = services()
    context: dict[str, Any] = {"versions": index_versions(svc.store), "service_taxonomy": svc.taxonomy.full_version}
    try:
        index = svc.current_index()
    except NlpServiceError as exc:
        return _render("status.html", _status_of(exc), error=str(exc), **context)
    return _render("status.html", index=index, manifest=index.manifest, **context)
