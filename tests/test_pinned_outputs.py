"""Segmentation and tagging outputs pinned as data (tests/data/pinned_outputs.json).

A change to the dictionary, taxonomy or tagger shows up here as a diff; regenerate with
tests/tools/pin_outputs.py and review it.
"""

from __future__ import annotations

import json

import pytest

from conftest import DATA

PINS = json.loads((DATA / "pinned_outputs.json").read_text(encoding="utf-8"))


def test_enough_texts_in_each_language():
    langs = [p["lang"] for p in PINS.values()]
    assert len(PINS) >= 30
    assert {"zh", "en", "mixed"} <= set(langs)


@pytest.mark.parametrize("pin_id", sorted(PINS))
def test_segmentation_is_pinned(services, pin_id):
    pin = PINS[pin_id]
    tokens = services.segmenter.segment(pin["text"])
    assert [t.text for t in tokens] == pin["tokens"]
    for token in tokens:
        assert pin["text"][token.start : token.end] == token.text


@pytest.mark.parametrize("pin_id", sorted(PINS))
def test_tagging_is_pinned(services, pin_id):
    pin = PINS[pin_id]
    tagged = services.tagger.tag(pin["text"])
    assert tagged.lang == pin["lang"]
    assert [[t.concept_id, t.surface, t.method] for t in tagged.tags] == pin["tags"]
    for tag in tagged.tags:
        assert pin["text"][tag.start : tag.end] == tag.surface
    # one tag per mention, in text order; two mentions of a concept never overlap
    assert [t.start for t in tagged.tags] == sorted(t.start for t in tagged.tags)
    for a, b in zip(tagged.tags, tagged.tags[1:]):
        assert not (a.concept_id == b.concept_id and b.start < a.end)
