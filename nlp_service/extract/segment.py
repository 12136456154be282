"""Mixed-script segmentation: Chinese runs through spaCy ``zh`` with our own jieba tokenizer,
everything else through spaCy ``en`` with lookup lemmas. Every token keeps offsets into the original text."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal, Protocol

logger = logging.getLogger(__name__)

Lang = Literal["zh", "en", "mixed"]

# Han ideographs plus CJK punctuation and full-width forms: the "Chinese" script runs.
_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]+")
_HAN_CHAR = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9+#.'\-]*")


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    start: int
    end: int
    lang: Literal["zh", "en"]
    lemma: str
    is_punct: bool = False

    @property
    def key(self) -> str:
        """What lexical matching compares: the lower-cased lemma for English, the segment for Chinese."""
        return self.lemma


class Segmenter(Protocol):
    def segment(self, text: str) -> list[Token]: ...


def detect_language(text: str) -> Lang:
    """``zh``, ``en`` or ``mixed``.

    Two Han characters count as one word. Over 90% English words: ``en``. From 30%: ``mixed``. Below that, a
    Chinese text is ``mixed`` when it switches into ordinary lower-case English words ("做data analytics",
    "写proposal的budget"), and stays ``zh`` when its Latin words are only names and acronyms ("会用PS和Excel").
    """
    han = len(_HAN_CHAR.findall(text))
    words = _LATIN_WORD.findall(text)
    if han == 0:
        return "en"
    if not words:
        return "zh"
    share_en = len(words) / (len(words) + han / 2.0)
    if share_en > 0.9:
        return "en"
    if share_en >= 0.3:
        return "mixed"
    ordinary = [w for w in words if w.islower() and len(w) > 1]
    return "mixed" if len(ordinary) >= 2 else "zh"


def script_runs(text: str) -> list[tuple[int, int, Literal["zh", "en"]]]:
    """Split text into maximal Chinese runs and the stretches between them."""
    runs: list[tuple[int, int, Literal["zh", "en"]]] = []
    position = 0
    for match in _HAN_RUN.finditer(text):
        if match.start() > position:
            runs.append((position, match.start(), "en"))
        runs.append((match.start(), match.end(), "zh"))
        position = match.end()
    if position < len(text):
        runs.append((position, len(text), "en"))
    return runs


class BilingualSegmenter:
    """Owns one jieba tokenizer and two blank spaCy pipelines. Build once, share across requests."""

    def __init__(self, extra_words: Iterable[str] = (), cache_dir: Path | None = None) -> None:
        import jieba
        import spacy
        from spacy.lang.zh import Segmenter as SpacySegmenter

        logging.getLogger("jieba").setLevel(logging.WARNING)
        self._jieba = jieba.Tokenizer()
        if cache_dir is not None:
            cache_dir = Path(cache_dir)
            cache_dir.mkdir(parents=True, exist_ok=True)
            self._jieba.tmp_dir = str(cache_dir)
        self._jieba.initialize()
        added = 0
        for word in extra_words:
            word = word.strip()
            if word and _HAN_CHAR.search(word) and " " not in word:
                # A high frequency makes jieba keep a taxonomy label as one segment.
                self._jieba.add_word(word, freq=max(self._jieba.suggest_freq(word, tune=False), 50_000))
                added += 1
        logger.debug("jieba tokenizer ready with %s taxonomy words", added)

        self._zh = spacy.blank("zh")
        self._zh.tokenizer.segmenter = SpacySegmenter.jieba.value
        self._zh.tokenizer.jieba_seg = self._jieba
        self._en = spacy.blank("en")
        lemmatizer = self._en.add_pipe("lemmatizer", config={"mode": "lookup"})
        self._en.initialize()
        # spaCy's lookup table is case-sensitive ("PROPOSALS" stays as is); we look lower-cased forms up.
        self._lemma_table = lemmatizer.lookups.get_table("lemma_lookup")

    def word_frequencies(self) -> dict[str, int]:
        """jieba's dictionary frequencies (used to pick the everyday name among a place's Chinese names)."""
        return self._jieba.FREQ

    def word_tags(self) -> dict[str, str]:
        """jieba's dictionary part-of-speech tags ("ns" marks place names)."""
        tags: dict[str, str] = {}
        with self._jieba.get_dict_file() as handle:
            for raw in handle:
                parts = raw.decode("utf-8").split()
                if len(parts) == 3:
                    tags[parts[0]] = parts[2]
        return tags

    def segment(self, text: str) -> list[Token]:
        tokens: list[Token] = []
        for start, end, script in script_runs(text):
            chunk = text[start:end]
            if not chunk.strip():
                continue
            if script == "zh":
                # jieba's HMM pass is slow on long runs of unknown characters (20,000 took 1.8 s): segment a
                # long run in pieces of at most _MAX_HAN_PIECE, cut after punctuation where there is some.
                for piece_start, piece_end in _pieces(chunk, _MAX_HAN_PIECE):
                    doc = self._zh(chunk[piece_start:piece_end])
                    for tok in doc:
                        if tok.is_space:
                            continue
                        begin = start + piece_start + tok.idx
                        tokens.append(
                            Token(tok.text, begin, begin + len(tok.text), "zh", tok.text.lower(), tok.is_punct)
                        )
            else:
                tokens.extend(self._segment_latin(chunk, start))
        return tokens

    def _segment_latin(self, chunk: str, offset: int) -> list[Token]:
        """spaCy for ordinary text; runs without spaces longer than ``_LONG_RUN`` get a linear regex split,
        because spaCy's tokenizer is quadratic on them (20,000 × "$" took 64 s)."""
        tokens: list[Token] = []
        position = 0
        for long_run in _LONG_RUN.finditer(chunk):
            tokens.extend(self._spacy_latin(chunk[position : long_run.start()], offset + position))
            for piece in _SIMPLE_TOKEN.finditer(long_run.group(0)):
                begin = offset + long_run.start() + piece.start()
                text = piece.group(0)
                lower = text.lower()
                punct = not any(ch.isalnum() for ch in text)
                tokens.append(Token(text, begin, begin + len(text), "en", self._lemma_table.get(lower, lower), punct))
            position = long_run.end()
        tokens.extend(self._spacy_latin(chunk[position:], offset + position))
        return tokens

    def _spacy_latin(self, chunk: str, offset: int) -> list[Token]:
        tokens: list[Token] = []
        if not chunk.strip():
            return tokens
        for tok in self._en.make_doc(chunk):
            if tok.is_space:
                continue
            begin = offset + tok.idx
            lower = tok.text.lower()
            lemma = self._lemma_table.get(lower, lower)
            tokens.append(Token(tok.text, begin, begin + len(tok.text), "en", lemma, tok.is_punct))
        return tokens

    def sentences(self, text: str) -> list[tuple[int, int]]:
        """Clause spans for semantic tagging: split on sentence punctuation, Chinese commas, line breaks."""
        spans: list[tuple[int, int]] = []
        position = 0
        for match in _CLAUSE_BREAK.finditer(text + "\n"):
            _add_clause(text, position, match.start(), spans)
            position = match.end()
        return spans


_LONG_RUN = re.compile(r"\S{65,}")
_MAX_HAN_PIECE = 400
_PIECE_BREAK = re.compile(r"[。！？；，、\u3000]")


def _pieces(chunk: str, limit: int) -> list[tuple[int, int]]:
    """(start, end) pieces of at most ``limit`` characters, ending after punctuation when possible."""
    if len(chunk) <= limit:
        return [(0, len(chunk))]
    pieces = []
    start = 0
    while start < len(chunk):
        end = min(len(chunk), start + limit)
        if end < len(chunk):
            breaks = [m.end() for m in _PIECE_BREAK.finditer(chunk, start + limit // 2, end)]
            if breaks:
                end = breaks[-1]
        pieces.append((start, end))
        start = end
    return pieces
_SIMPLE_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9+#.'\-]*|\d+|([^\sA-Za-z0-9])\1*")
_CLAUSE_BREAK = re.compile(r"[。！？；，;!?\n\r•]|\.(?=\s)|\.$")


def _add_clause(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    piece = text[start:end]
    stripped = piece.strip(" \t-*·:：、,")
    if len(stripped) < 3:
        return
    offset = start + piece.index(stripped)
    spans.append((offset, offset + len(stripped)))
