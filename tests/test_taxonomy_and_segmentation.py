"""The shipped taxonomy's size and mapping, and the segmenter's language and boundary rules."""

from __future__ import annotations

import pytest

from nlp_service.extract.segment import detect_language, script_runs


def test_taxonomy_is_big_bilingual_and_mostly_esco_mapped(taxonomy):
    assert len(taxonomy) >= 300
    assert len(taxonomy.categories) >= 15
    assert taxonomy.problems() == []
    for category in taxonomy.categories:
        assert len(taxonomy.concepts_in(category)) >= 15, category
    mapped = [c for c in taxonomy if c.esco_uri]
    assert len(mapped) / len(taxonomy) > 0.6
    assert all(c.label_en and c.label_zh for c in taxonomy)


@pytest.mark.parametrize(
    "text,lang",
    [
        ("我会做账", "zh"),
        ("熟悉PS和Excel，可以做海报和公众号排版", "zh"),
        ("I can do bookkeeping", "en"),
        ("本人做UX research五年，熟悉Figma和usability testing", "mixed"),
        ("Need a 会计 to help with our 年度审计 before March", "mixed"),
        ("目前在四大做data analytics consultant，日常就是SQL取数、做报表", "mixed"),
        ("Java开发十年，周末可远程帮忙修bug、看看系统哪里卡", "zh"),
        ("12345 !!!", "en"),
    ],
)
def test_detect_language(text, lang):
    assert detect_language(text) == lang


def test_shipped_corpus_language_mix(services):
    from collections import Counter

    from nlp_service.corpus import load_corpus

    docs = load_corpus(services.settings.corpus_dir)
    counts = Counter(detect_language(d.text) for d in docs)
    assert sum(1 for d in docs if d.kind == "volunteer") >= 150
    assert sum(1 for d in docs if d.kind == "request") >= 150
    assert 0.4 <= counts["zh"] / len(docs) <= 0.6
    assert 0.25 <= counts["en"] / len(docs) <= 0.4
    assert counts["mixed"] / len(docs) >= 0.1


def test_script_runs_cover_the_text():
    text = "熟悉Figma和usability testing。OK"
    runs = script_runs(text)
    assert "".join(text[s:e] for s, e, _ in runs) == text
    assert [lang for _, _, lang in runs] == ["zh", "en", "zh", "en", "zh", "en"]


@pytest.mark.parametrize(
    "text,absent",
    [
        ("Cisco routers and React apps", {"data.r"}),
        ("Our R&D team and the C-suite", {"data.r"}),
        ("I excel at teamwork", set()),
        ("ps: we cover travel costs", {"design.photoshop"}),
    ],
)
def test_short_labels_only_fire_on_word_boundaries_and_in_capitals(services, text, absent):
    tags = services.tagger.lexical.tag_tokens(text, services.segmenter.segment(text))
    assert not absent & {t.concept_id for t in tags}


def test_offsets_hold_for_every_tag_in_the_corpus(services):
    index = services.current_index()
    for entry in index.documents.values():
        for tag in entry.tags:
            assert entry.document.text[tag["start"] : tag["end"]] == tag["surface"]


def test_lemmas_and_case_do_not_matter_for_english(services):
    for text in ("We need GRANT PROPOSALS written", "she wrote a grant proposal"):
        tags = services.tagger.lexical.tag_tokens(text, services.segmenter.segment(text))
        assert "fundraising.grant_writing" in {t.concept_id for t in tags}, text


@pytest.mark.parametrize(
    "text,concept,expected",
    [("会ps修图", "design.photoshop", True), ("做ppt", "design.presentation", True),
     ("ps: thanks", "design.photoshop", False), ("a nice meal", "research.monitoring_evaluation", False)],
)
def test_lower_case_acronyms_count_only_beside_chinese(services, text, concept, expected):
    tags = services.tagger.lexical.tag_tokens(text, services.segmenter.segment(text))
    assert (concept in {t.concept_id for t in tags}) is expected


def test_corpus_covers_every_category(services, taxonomy):
    index = services.current_index()
    covered = {tag["category"] for entry in index.documents.values() for tag in entry.tags}
    assert covered == set(taxonomy.categories)
    for kind in ("volunteer", "request"):
        kind_covered = {t["category"] for e in index.documents.values() if e.document.kind == kind for t in e.tags}
        assert kind_covered == set(taxonomy.categories), kind


def test_long_runs_without_spaces_take_the_linear_path(services):
    """spaCy's tokenizer is quadratic on long unspaced runs (20,000 × "$" took 64 s): they are split by a regex."""
    segmenter = services.segmenter
    tokens = segmenter.segment("$" * 20_000)
    assert [(t.start, t.end) for t in tokens] == [(0, 20_000)]
    mixed = segmenter.segment("Python " + "ab$" * 100 + " Excel")
    assert mixed[0].text == "Python" and mixed[-1].text == "Excel"
    assert all(mixed_text == t.text for t in mixed for mixed_text in [("Python " + "ab$" * 100 + " Excel")[t.start:t.end]])


def test_hostile_texts_get_answers(client):
    for text in ["$" * 20_000, "a" * 20_000, "中" * 20_000, ("ab$" * 7000)[:20_000]]:
        response = client.post("/v1/extract", json={"text": text})
        assert response.status_code == 200
