"""The coordinator pages through Flask's client: rendering, escaping, languages and bad input (never a 500)."""

from __future__ import annotations

import logging
import re

import pytest

from nlp_service.browse import DocumentFilter, browse_documents
from nlp_service.errors import InvalidInputError
from nlp_service.web.highlight import highlight
from nlp_service.web.i18n import STRINGS

REQUEST = "我们需要一位志愿者帮忙做账、整理财务报表，每周3小时，线上。不需要做审计。"


def test_every_ui_string_exists_in_both_languages():
    assert set(STRINGS["zh"]) == set(STRINGS["en"])
    assert all(STRINGS["zh"][k].strip() and STRINGS["en"][k].strip() for k in STRINGS["en"])


def test_highlight_pieces_rebuild_the_text_and_skip_overlaps():
    text = "做账和报税"
    tags = [{"start": 0, "end": 2, "role": "offered"}, {"start": 1, "end": 3, "role": "needed"},
            {"start": 3, "end": 5, "role": "declined"}, {"start": 4, "end": 99, "role": "offered"}]
    pieces = highlight(text, tags)
    assert "".join(p.text for p in pieces) == text
    assert [(p.text, p.tag["role"] if p.tag else None) for p in pieces] == [
        ("做账", "offered"), ("和", None), ("报税", "declined")]


def test_a_label_tag_inside_a_clause_long_learned_tag_is_highlighted_first():
    text = "想找人把账理顺，再做一张海报。"
    learned = {"start": 0, "end": 7, "role": "needed", "method": "learned"}
    poster = {"start": 10, "end": 14, "role": "needed", "method": "lexical"}
    clause = {"start": 8, "end": 14, "role": "needed", "method": "learned"}
    pieces = highlight(text, [learned, clause, poster])
    assert "".join(p.text for p in pieces) == text
    assert [(p.text, p.tag and p.tag["method"]) for p in pieces] == [
        ("想找人把账理顺", "learned"), ("，再做", None), ("一张海报", "lexical"), ("。", None)]


def test_match_page_highlights_by_role_and_explains_matches(client, caplog):
    caplog.set_level(logging.INFO)
    response = client.post("/?lang=en", data={"text": REQUEST, "kind": "request", "top_k": "3"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert re.search(r'<mark class="tag role-needed method-\w+"', html)
    assert html.count('<article class="match') == 3
    assert "Shared skills" in html and 'name="outcome_1" value="accepted"' in html
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "<script" not in html
    assert REQUEST[:12] not in caplog.text


def test_everything_is_escaped(client):
    evil = '<script>alert(1)</script><img src=x onerror=alert(2)> 需要会计做账'
    html = client.post("/", data={"text": evil, "kind": "request"}).get_data(as_text=True)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    html = client.get("/documents?q=%3Cscript%3Ex%3C/script%3E").get_data(as_text=True)
    assert "<script>x" not in html


def test_language_switch_is_remembered_in_a_cookie(client):
    response = client.get("/?lang=en")
    assert "ui_lang=en" in response.headers["Set-Cookie"]
    assert '<html lang="en">' in response.get_data(as_text=True)
    assert '<html lang="en">' in client.get("/status").get_data(as_text=True)  # the cookie, no parameter
    zh = client.get("/documents?lang=zh").get_data(as_text=True)
    assert '<html lang="zh-CN">' in zh and "已索引的文档" in zh
    assert "不支持的界面语言" in client.get("/?lang=fr").get_data(as_text=True)


@pytest.mark.parametrize("method,url,data,status,fragment", [
    ("post", "/", {"text": "  ", "kind": "request"}, 400, "Please paste a text"),
    ("post", "/", {"text": "会计", "kind": "donor"}, 400, "Please choose what the text is"),
    ("post", "/", {"text": "会计", "kind": "request", "top_k": "99"}, 400, "from 1 to 50"),
    ("post", "/", {"text": "会计", "kind": "request", "top_k": "²"}, 400, "from 1 to 50"),
    ("post", "/", {"text": "会" * 20_001, "kind": "request"}, 413, "limit is 20000"),
    ("post", "/", {}, 400, "Please paste a text"),
    ("post", "/feedback", {"text": REQUEST, "kind": "request", "record": "1"}, 400, "Choose an outcome"),
    ("post", "/feedback", {"text": REQUEST, "kind": "request", "record": "1", "outcome_1": "accepted",
                           "band_1": "strong"}, 400, "match_id"),
    ("post", "/feedback", {"query_id": "no-such-doc", "record": "1"}, 404, "no-such-doc"),
    ("post", "/feedback", {"text": REQUEST, "kind": "request", "record": "1", "outcome_1": "declined",
                           "match_id_1": "vol-1", "band_1": "weak", "reason_1": "x" * 501}, 400, "500"),
    ("get", "/documents?page=0", None, 400, "positive whole number"),
    ("get", "/documents?page=abc", None, 400, "positive whole number"),
    ("get", "/documents?page=999", None, 400, "page 999 does not exist"),
    ("get", "/documents?kind=donor", None, 400, "kind"),
    ("get", "/documents?concept=no.such.concept", None, 400, "unknown concept"),
    ("get", "/documents/nope", None, 404, "nope"),
    ("get", "/documents/nope/matches", None, 404, "nope"),
    ("get", "/documents/vol-2001/matches?top_k=0", None, 400, "from 1 to 50"),
])
def test_bad_input_gives_the_same_page_with_a_message(client, method, url, data, status, fragment):
    response = getattr(client, method)(url + ("&" if "?" in url else "?") + "lang=en", data=data)
    assert response.status_code == status
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert 'role="alert"' in html and fragment in html, html[:2000]


def test_a_too_large_form_gets_the_page_not_a_json_error(client, app):
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 10)
    response = client.post("/?lang=en", data={"text": big, "kind": "request"})
    assert response.status_code == 413 and response.mimetype == "text/html"
    assert "too large" in response.get_data(as_text=True)


def test_feedback_form_records_and_shows_the_results_again(client, services):
    before = services.feedback.count()
    page = client.post("/", data={"text": REQUEST, "kind": "request"}).get_data(as_text=True)
    match_id = re.search(r'name="match_id_2" value="([^"]+)"', page).group(1)
    band = re.search(r'name="band_2" value="([^"]+)"', page).group(1)
    response = client.post("/feedback?lang=en", data={
        "text": REQUEST, "kind": "request", "top_k": "10", "record": "2", "match_id_2": match_id, "band_2": band,
        "outcome_2": "declined", "reason_2": "只在周末有空", "index_version": "v1"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f"Feedback recorded for rank 2 ({match_id}): declined" in html and 'id="saved-2"' in html
    assert services.feedback.count() == before + 1
    last = services.feedback.records()[-1].entry
    assert (last.rank, last.match_id, last.outcome, last.reason, last.query_id) == (2, match_id, "declined",
                                                                                   "只在周末有空", None)


def test_document_pages_and_their_matches(client):
    html = client.get("/documents/vol-2005?lang=en").get_data(as_text=True)
    assert "See this document&#39;s matches" in html and '<mark class="tag role-' in html
    matches = client.get("/documents/vol-2005/matches?top_k=3").get_data(as_text=True)
    assert matches.count('<article class="match') == 3 and 'name="query_id" value="vol-2005"' in matches


def test_status_page_lists_versions(client, services):
    html = client.get("/status?lang=en").get_data(as_text=True)
    assert services.store.current_version() in html and "Versions kept on disk" in html


def test_browse_library_filters_and_pages(services):
    index = services.current_index()
    query = DocumentFilter.build("volunteer", "bookkeeping", None, services.taxonomy)  # a label, not an id
    assert query.concept_id == "finance.bookkeeping"
    page = browse_documents(index, query, 1, 5)
    assert page.total >= 1 and all(e.document.kind == "volunteer" for e in page.entries)
    assert all(any(t["concept_id"] == "finance.bookkeeping" for t in e.tags) for e in page.entries)
    everything = browse_documents(index, DocumentFilter(), 1, 100)
    assert everything.total == len(index.documents) and everything.pages == -(-everything.total // 100)
    with pytest.raises(InvalidInputError):
        browse_documents(index, DocumentFilter(), everything.pages + 1, 100)


@pytest.mark.parametrize("url", ["/documents/vol-2005?document_id=x", "/documents?_scheme=javascript&_external=0",
                                 "/status?_anchor=x&_method=POST", "/documents?page=99999999999999999999999"])
def test_odd_query_strings_never_fail(client, url):
    response = client.get(url)
    assert response.status_code in (200, 400) and response.mimetype == "text/html"
