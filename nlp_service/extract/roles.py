"""Roles of tags: is a skill offered, needed, declined (negated) or only context in its text?

A text is cut into clauses (sentence punctuation, Chinese commas, contrast words such as "but" / 但是).
Inside a clause, cue phrases switch the role of the tags that follow them (pre-cues: "不需要", "we don't
need", "我们是一家", "we provide") or of the tags before them (post-cues: "……就不用了", "… isn't needed",
"……由我们提供", "… reimbursed"). A "need" or "offer" cue ("想找", "we need", "我可以", "happy to") turns the
role back to the text's base role, so "we're an autism charity and need a poster" keeps autism as context
and the poster as needed. The base role comes from the text's kind: volunteers offer, requests need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

Role = Literal["offered", "needed", "declined", "context"]
ROLES: tuple[str, ...] = ("offered", "needed", "declined", "context")
MATCHING_ROLES = frozenset({"offered", "needed"})
CueType = Literal["declined", "context", "base"]


def _en(*phrases: str) -> str:
    """An English alternation on word boundaries; spaces match any run of spaces."""
    body = "|".join(p.replace(" ", r"\s+") for p in sorted(phrases, key=len, reverse=True))
    return rf"(?<![A-Za-z])(?:{body})(?![A-Za-z])"


def _zh(*phrases: str) -> str:
    return "(?:" + "|".join(sorted(phrases, key=len, reverse=True)) + ")"


# --- pre-cues: change the role of the tags after them in the clause -------------------------------------
_DECLINE_PRE_ZH = _zh(
    "不需要", "不需", "无需", "毋须", "不用", "不必", "用不着", "不要", "不求", "暂不需要", "暂时不需要", "暂不",
    "暂时不", "目前不需要", "这次不需要", "已经不需要", "不再需要", "不会", "不太会", "完全不会", "不懂", "不太懂",
    "不擅长", "不熟悉", "不太熟悉", "不熟", "不能", "没法", "无法", "没办法", "不方便", "不接", "不做", "不再做",
    "不负责", "不包括", "不包含", "不涉及", "不考虑", "不含", "不找", "并不需要", "没学过", "没做过", "没接触过",
    "没有做过", "除了", "而不是", "而非", "不是找", "不招", "谢绝", "不是要", "要的不是", "我不是", "但不是", "并不是",
    "不是", "不打算", "不安排", "不碰", "别找我", "不接受", "不需要再", "不用再", "不需要額外", "不需要额外", "不需要", "不用", "我不會", "我不会", "不會", "暫時不需要", "暂时不考虑", "不考虑",
    # Cantonese and more colloquial refusals (written from the train files' misses)
    "唔需要", "唔使", "唔識", "唔会", "唔做", "唔接", "不缺", "别让我", "不修", "不代", "不写", "做不了", "接不了",
    "画不了", "帮不了",
)
_DECLINE_PRE_EN = _en(
    "not", "no", "don't", "do not", "doesn't", "does not", "didn't", "won't", "will not", "wouldn't", "can't",
    "cannot", "can not", "couldn't", "never", "unable to", "without", "except", "except for", "other than",
    "rather than", "instead of", "isn't", "is not", "aren't", "are not", "no need for", "no longer", "nor",
    "not looking for", "not seeking", "not after", "neither", "excluding", "apart from", "i'm not a", "i am not a",
    "not a", "none of",
)
_ORG_PRE_ZH = _zh(
    "我们是", "我们是一家", "我们是一个", "我们机构", "本机构", "我们这家", "我们这个", "我们中心", "我们学校",
    "我们社团", "我们协会", "我们基金会", "成立于", "致力于", "专注于", "关注", "服务对象", "服务于", "受益人", "受助",
    "一直在做", "长期开展", "成立", "业务", "扩展到", "我们在", "主要做", "主要服务", "去年", "前年",
    "之前", "以前", "上次", "曾经", "原本", "本来", "一直", "时被",
)
_HAS_PRE_ZH = _zh(
    "我们提供", "机构提供", "提供", "我们有", "我们已有", "已有", "已经有", "现有", "自有", "自己有", "配有", "配备",
    "聘请了", "原来的", "之前的", "以前的", "之前请过", "可报销", "可以报销", "来自", "能报销", "全额报销", "实报实销", "负责人是", "现场有", "现场已有", "请好了",
    "已请", "也请好了", "有人赞助", "有人包了", "有人负责", "已經有", "已有專職", "已有专职", "我們有", "公司本身就有", "本身就有",
    "都由", "由我们负责", "由我們負責",
)
# Staff an organisation (or a volunteer's workplace) already has: "驿站有两位持证社工和一名护士", "还有专职督导",
# "店里常驻一位手语翻译", "平时拍摄有合作的摄像师" (not "希望有一位…", "需要有…", "没有…")
_STAFF_PRE_ZH = (r"(?<![望要好想能果若没否])有(?:[一两二三四五六七八九十几\d]+\s*(?:位|名|个|個)|专职|全职|兼职|持证|注册|"
                 r"专业的|自己的|固定的|合作的|驻场|驻校|常驻|同事|志愿者在|志愿者负责)|常驻|配了|同事(?:会|能|在|负责)|"
                 r"外包给了?")
# In a request, someone the text already named does it: "她还会用剪映剪点视频", "现在用的 logo 也是她设计的"
_THIRD_PERSON_PRE_ZH = r"(?<![请找让])(?:她|他)们?(?:还|也|平时|已经|自己)?(?:会用|会|能|在|负责)"
# A request describing what the organisation does: "The Esperanza Legal Clinic provides free legal representation"
_ORG_DOES_EN = r"(?<![A-Za-z])(?<!you\s)(?<!who\s)(?<!to\s)(?:provides|offers|delivers)(?![A-Za-z])"
# An event the organisation holds, for which it needs helpers: "is holding a charity bazaar", "12月19日在南山办一场义卖"
_HOLDS_EVENT = re.compile(r"(?<!帮我们)(?<!帮忙)(?<!协助)(?<!帮)(?:要办|举办|办一场|将举办|承办)[^，。；,;]{0,6}$|"
                          r"(?<![A-Za-z])(?:is|are|we're|we\s+are)\s+(?:holding|hosting|running)\s+(?:[A-Za-z0-9'-]+\s+){0,3}$",
                          re.IGNORECASE)
EVENT_CATEGORY = "events"
_ORG_PRE_EN = _en(
    "we are a", "we're a", "we are an", "we're an", "our charity", "our organisation",
    "our organization", "our nonprofit", "our ngo", "our centre", "our center", "our school", "our clinic",
    "our mission", "we serve", "we support", "we work with", "we run", "who run", "which runs", "that runs",
    "founded", "dedicated to", "focused on", "focusing on", "working with", "works with", "serving",
    "for people with", "beneficiaries", "our clients", "last year", "previously", "used to", "we had",
    "we've had", "in the past", "mainly do", "mostly do",
)
# What the organisation runs and who in it already does what: "a small mental health charity running peer support
# groups", "one of our members is a keen photographer", "our chair has written plenty of these"
_ORG_RUNS_EN = (r"(?:(?<=charity\s)|(?<=nonprofit\s)|(?<=organisation\s)|(?<=organization\s)|(?<=ngo\s)|(?<=NGO\s)|"
                r"(?<=centre\s)|(?<=center\s)|(?<=clinic\s)|(?<=group\s)|(?<=network\s)|(?<=service\s)|(?<=trust\s))"
                r"(?:running|that\s+runs|which\s+runs|offering|providing|delivering)(?![A-Za-z])|"
                r"(?<![A-Za-z])(?:one\s+of\s+)?our\s+(?:own\s+)?(?:[a-z]+\s+)?(?:members?|volunteers?|staff|team|trustees?|"
                r"board|chair|director|founder|ceo|manager|coordinator|lead|officer)\s+(?:is|are|has|have|does|do|handles?|"
                r"runs?|covers?|writes?|already)(?![A-Za-z])|"
                r"(?<![A-Za-z])(?:partner|partners|contractor|agency|provider)(?:\s+[A-Za-z]+){0,4}?\s+(?:handles|runs|does|"
                r"covers|provides)(?![A-Za-z])")
# A volunteer's employer or day job is background, not the skill they offer ("在一家做认知症照护的社会企业负责员工培训").
_WORKPLACE_PRE_ZH = _zh("在一家", "在某", "目前在一家", "现在在一家", "就职于", "任职于")
_WORKPLACE_PRE_EN = _en("day job is", "day job", "my employer", "i work at", "i work for", "works at", "employed at",
                        "employed by", "at a company", "company that")
_HAS_PRE_EN = _en(
    "we provide", "we'll provide", "we will provide", "we can provide", "will be provided", "we have",
    "we've got", "we already have", "already have", "already has", "our own", "our staff", "our team",
    "in-house", "on staff", "we offer", "we cover", "reimbursed", "reimburse", "low-cost", "low cost",
    "i already volunteer", "already volunteer", "already work", "we already", "our agency", "by our agency",
)
# need / offer cues: back to the text's base role ("and need", "想找", "I can", "happy to")
_NEED_BASE_ZH = _zh(
    "需要", "急需", "想找", "想请", "寻找", "找一位", "找一个", "找人", "找个", "求", "招募", "招", "希望", "想要",
    "希望有", "请一位", "麻烦", "缺", "缺少", "缺的是", "帮我们", "帮忙", "协助", "想", "能否", "能不能", "有没有",
    "只需要", "只要", "而是", "真正缺的是", "需要的是", "缺的是", "需要", "誠徵", "徵求", "诚征", "征求", "想找", "需要一位",
)
_OFFER_BASE_ZH = _zh(
    "我可以", "我能", "可以", "能", "会", "擅长", "熟悉", "精通", "愿意", "乐意", "负责", "做过", "我是", "本人",
    "从事", "有经验", "主要是", "就是", "只做", "而是", "只会", "帮", "帮忙", "协助", "可以帮", "能帮", "做", "管", "当",
)
_NEED_BASE_EN = _en(
    "need", "needs", "we need", "need a", "looking for", "seeking", "we're after", "after someone",
    "want", "would like", "we'd like", "hoping", "hope", "help us", "help with", "to help", "recruiting",
    "wanted", "required", "requires", "asking for", "someone to", "someone who", "volunteer to", "volunteers to",
    "only", "just", "but", "instead", "what we need", "what we're missing", "missing",
)
_OFFER_BASE_EN = _en(
    "i can", "i could", "i'm able", "i am able", "i'd", "i'll", "i will", "happy to", "glad to", "able to",
    "can", "could", "available", "i am a", "i'm a", "i've", "i have", "experienced", "experience in",
    "specialise", "specialize", "skilled", "expert", "offer", "offering", "only", "just", "but", "instead",
    "help", "yes",
)
# --- post-cues: change the role of the tags before them in the clause ----------------------------------
_DECLINE_POST_ZH = _zh(
    "不需要", "不用", "不必", "就不用了", "就免了", "免了", "不要", "暂不需要", "暂时不需要", "不是重点", "不在范围",
    "不在此次范围", "不做要求", "不要求", "不会", "不太会", "不行", "不太行", "不在行", "一窍不通", "不擅长", "不熟",
    "不熟悉", "不是强项", "不是我的强项", "做得一般", "只会求和", "我们自己能做", "我们自己可以", "我们自己会",
    "自己能搞定", "自己搞定", "自己来", "不接", "不做", "不考虑", "不负责", "就算了", "算了", "完全不会", "更是完全不会",
    "生疏了", "生疏", "就不献丑了", "不献丑", "我不碰", "不碰", "别问我", "我不懂", "不懂", "不用操心", "不用管",
    "不是我的菜", "别找我", "也别找我", "不安排", "也不安排", "不打算", "不太行", "就不要了", "不需要了", "也不需要", "都不用", "都不需要", "不用我们", "暂不考虑",
    # the refusal said after the skill, with the speaker inside it ("文案我是真不行", "诉讼案子我接不了")
    "我是真不行", "是真不行", "真不行", "我不太熟", "不太熟", "我接不了", "接不了", "我做不了", "做不了", "我不太擅长",
    "不太擅长", "我不太懂", "不太懂", "吃不消", "我不掺和", "不掺和", "不是我的方向", "我暂时不想接", "暂时不想接",
    "不想接", "请找别人", "找别人", "另有安排", "帮不了", "不太能帮",
)
_DECLINE_POST_EN = _en(
    "not needed", "isn't needed", "is not needed", "aren't needed", "are not needed", "not required",
    "isn't required", "is not required", "not necessary", "isn't necessary", "unnecessary", "not a priority",
    "out of scope", "we can do ourselves", "we'll do ourselves", "we do ourselves", "isn't my thing",
    "is not my thing", "not my strength", "not my forte", "i don't do", "i can't do", "i won't do",
    "not really my thing", "isn't really my thing", "not my thing", "none of that", "none of those", "none of it",
    "not needed", "no thanks", "not required this time", "are sorted", "is sorted", "all sorted", "rusty",
    "i'd rather not", "i'll pass", "not something i do", "outside my lane", "we've got covered", "we have covered",
    "not something i take on", "best sent elsewhere", "better left to someone", "is better left", "are better left",
)
_HAS_POST_ZH = _zh(
    "由我们提供", "我们提供", "机构提供", "我们来提供", "已经有了", "已有", "已经有", "都有", "有专人",
    "可报销", "能报销", "全包", "包食宿", "有补贴", "我们负责", "机构负责", "已经做好", "做好了", "已完成", "搞定了",
    "已经设计好了", "设计好了", "已经写好了", "写好了", "已经约好了", "约好了", "已经定了", "定好了", "已经定好",
    "有同事在", "日常有同事", "有同事负责", "有人在做", "由我们承担", "我们承担", "已经做过", "做过了", "已經有",
    "已经请好", "请好了", "已经找好", "找好了", "已经安排好", "安排好了", "都安排好了", "已经搞定", "已经定稿", "定稿了", "已定稿",
    "都是自己做", "都是我们自己做", "都是自己做的", "外包给了", "外包给", "外包了", "已经外包", "交给了",
)
# someone else already does it: "配送由街道的车队负责", "文案和客服都是店长在做"
_HANDLED_POST_ZH = (r"由[^，。；,;]{1,12}?(?:负责|承担|提供|搞定|包了)|都是[^，。；,;]{1,12}?在(?:做|管|弄|负责)|"
                    r"有(?:同事|专人|全职|专职|人|合作的?|志愿者)[^，。；,;]{0,8}?(?:负责|在做|在运营|做|管|跟|包了)|"
                    r"有[^，。；,;]{1,10}?把关|(?:也|都)?是(?:她|他)们?(?:设计|做|写|拍|剪)的|(?:我们)?自己(?:能|会)?写")
_HAS_POST_EN = _en(
    "provided", "will be provided", "is provided", "are provided", "is covered", "are covered", "covered",
    "reimbursed", "is reimbursed", "are reimbursed", "in place", "already done", "taken care of",
    "is handled", "in-house", "on staff", "already designed", "already written", "already booked",
    "already sorted", "is already", "are already", "done by our", "handled by", "by our agency",
    "already track", "already tracks", "already handle", "already handles", "already cover", "already covers",
    "already run", "already runs", "already do", "already does", "already manage", "already manages",
    "have the coding covered", "have that covered", "have it covered", "covered in-house",
)
_ORG_POST_ZH = _zh("机构", "中心", "学校", "协会", "基金会", "社团", "工作室", "服务站", "公益组织", "社会组织", "组织",
                   "项目")
_ORG_POST_EN = _en(
    "charity", "organisation", "organization", "nonprofit", "non-profit", "ngo", "centre", "center", "clinic",
    "association", "foundation", "network", "society", "trust", "collective", "programme", "program",
)

# (cue type, pattern, which kinds of text it applies to: "request", "volunteer" or "any")
_PRE: tuple[tuple[CueType, re.Pattern[str], str], ...] = (
    ("declined", re.compile(_DECLINE_PRE_ZH), "any"),
    ("declined", re.compile(_DECLINE_PRE_EN, re.IGNORECASE), "any"),
    ("context", re.compile(_ORG_PRE_ZH), "request"),
    ("context", re.compile(_ORG_PRE_EN, re.IGNORECASE), "request"),
    ("context", re.compile(_WORKPLACE_PRE_ZH), "volunteer"),
    ("context", re.compile(_WORKPLACE_PRE_EN, re.IGNORECASE), "volunteer"),
    ("context", re.compile(_HAS_PRE_ZH), "any"),
    ("context", re.compile(_STAFF_PRE_ZH), "any"),
    ("context", re.compile(_THIRD_PERSON_PRE_ZH), "request"),
    ("context", re.compile(_ORG_DOES_EN, re.IGNORECASE), "request"),
    ("context", re.compile(_ORG_RUNS_EN, re.IGNORECASE), "request"),
    ("context", re.compile(_HAS_PRE_EN, re.IGNORECASE), "any"),
    ("base", re.compile(_NEED_BASE_ZH), "request"),
    ("base", re.compile(_NEED_BASE_EN, re.IGNORECASE), "request"),
    ("base", re.compile(_OFFER_BASE_ZH), "volunteer"),
    ("base", re.compile(_OFFER_BASE_EN, re.IGNORECASE), "volunteer"),
)
_POST: tuple[tuple[CueType, re.Pattern[str], str], ...] = (
    ("declined", re.compile(_DECLINE_POST_ZH), "any"),
    ("declined", re.compile(_DECLINE_POST_EN, re.IGNORECASE), "any"),
    ("context", re.compile(_HAS_POST_ZH), "any"),
    ("context", re.compile(_HANDLED_POST_ZH), "any"),
    ("context", re.compile(_HAS_POST_EN, re.IGNORECASE), "any"),
    ("context", re.compile(_ORG_POST_ZH), "request"),
    ("context", re.compile(_ORG_POST_EN, re.IGNORECASE), "request"),
)
# Phrases that look like negation but are not ("not only ... but also", "不仅", "不错", "no matter").
_NOT_NEGATION = re.compile(
    r"(?<![A-Za-z])(?:not[\s-]+for[\s-]+profit|not\s+only|not\s+just|no\s+matter|no\s+problem|not\s+sure|nothing\s+but|not\s+least|"
    r"no\s+more\s+than|no\s+later\s+than|no\s+less\s+than|not\s+later\s+than)(?![A-Za-z])|"
    r"是不是|不仅|不只|不光|不但|不错|不少|不断|不同|不定期|不限|不论|无论|不管|不妨|不足|不便宜|不贵|没问题|除了.{0,12}(?:还|也)",
    re.IGNORECASE,
)
# Clause boundaries: sentence punctuation, Chinese commas and semicolons, and contrast words.
_CLAUSE_BREAK = re.compile(
    r"[。！？；;!?\n\r•（]|[，,](?=\s*(?:但|但是|不过|可是|而是|只是|反而|却|所以|因此|我们|我|另外|此外|同时|also|but|however|"
    r"though|although|yet|we|i|i'm|i'd|our|they|and\s+we|and\s+i|so|which|who|plus)(?![A-Za-z]))|，|\.(?=\s|$)|"
    r"(?<![A-Za-z])(?:but|however|though|although|whereas|instead|yet)(?![A-Za-z])|(?<![A-Za-z])and(?=\s+our\s)|但是|但|不过|可是|而是|只是|反而",
    re.IGNORECASE,
)


# A volunteer's workplace, from its cue to the organisation noun: every tag inside is background, whatever
# offer cue sits in it ("在一家做认知症照护的社会企业", "在裕廊一家物流公司", "I work at a logistics company").
_WORKPLACE_SPAN = re.compile(
    r"(?:在|于)[^，。；！？,.;!?\n]{0,10}?一家(?P<zh>[^，。；！？,.;!?\n]{1,24}?)\s*(?:社会企业|公司|机构|企业|事务所|医院|学校|"
    r"工作室|agency|company|firm|startup|NGO)|"
    r"(?<![A-Za-z])(?:work|works|working|worked|employed|job)\s+(?:at|for|in|with)\s+an?\s+(?P<en>[A-Za-z0-9&/\- ]{1,40}?)\s+"
    r"(?:company|firm|agency|consultancy|startup|start-up|school|hospital|charity|nonprofit|ngo|organisation|"
    r"organization|bank|studio)(?![A-Za-z])",
    re.IGNORECASE,
)


def workplace_spans(text: str) -> list[tuple[int, int]]:
    """Where a volunteer names their employer's line of business (its tags are context)."""
    spans = []
    for match in _WORKPLACE_SPAN.finditer(text):
        group = "zh" if match.group("zh") is not None else "en"
        spans.append((match.start(group), match.end(group)))
    return spans


# People a skill is done *for* or *with* are background: "给【幼师】和家长讲", "为驻校【社工】做督导", "跟着【社工】上门",
# "supervision for your 【case managers】", "our 【accountant】 only does…". The tag must name a person (its surface,
# or the surface and the next word: "【community health】 workers") right after the recipient cue.
_AUDIENCE_BEFORE_ZH = re.compile(r"(?:给|为|替|跟着|跟|陪着|陪|向|带着|带领|面向|我们的|机构的|我们|咱们)"
                                 r"[^，。；！？,.;!?\n找招请聘需要缺当做是]{0,4}$")
_AUDIENCE_BEFORE_EN = re.compile(r"(?<![A-Za-z])(?:(?:(?<!looking\s)(?<!searching\s)(?<!asking\s)(?<!calling\s)(?<!hiring\s)"
                                 r"(?<!recruiting\s)(?<!appeal\s)(?<!call\s)(?<!search\s)(?<!ask\s)(?<!look\s)for|to|with|train|training|supervise|supervising|support|supporting|"
                                 r"coach|coaching|mentor|mentoring|alongside|from)\s+(?:your|our|the|their|its|a|an)|"
                                 r"(?:your|our|their))\s+(?:[A-Za-z-]+\s+){0,2}$", re.IGNORECASE)
_PERSON_ZH = re.compile(r"(?:社工|会计|师|员|士|者|家长|们|工人|志愿者|督导|护工|医生|律师|老师|儿童|孩子|老人|长者|青少年|"
                        r"学生|家庭|妇女|居民|患者|病人|人士)$")
_PERSON_EN = re.compile(r"(?:[a-z]{2,}(?:ers?|ors?|ists?|ants?|ees?|ians?|nurses?|workers?|staff|team|volunteers?|"
                        r"managers?|officers?|coordinators?|trustees?|carers?|children|kids|families|elders|patients|refugees|students|"
                        r"women|youth|seniors|adolescents|survivors))$", re.IGNORECASE)


def audience_tag(text: str, start: int, end: int) -> bool:
    """Whether the tag at start..end names the people a skill is done for or with (see above)."""
    surface = text[start:end]
    following = re.match(r"\s+([A-Za-z-]+)", text[end:end + 20])
    person = bool(_PERSON_ZH.search(surface) or _PERSON_EN.search(surface)
                  or (following and _PERSON_EN.search(following.group(1))))
    before = text[max(0, start - 40):start]
    return person and bool(_AUDIENCE_BEFORE_ZH.search(before.rstrip(" ")) or _AUDIENCE_BEFORE_EN.search(before))


@dataclass(frozen=True, slots=True)
class Cue:
    type: CueType
    start: int
    end: int
    post: bool
    adjacent: bool = False  # applies only to the tag right before it ("autism charity", "康复机构")


def clauses(text: str) -> list[tuple[int, int]]:
    """Clause spans that bound the scope of negation and background cues."""
    spans: list[tuple[int, int]] = []
    position = 0
    for match in _CLAUSE_BREAK.finditer(text):
        if match.start() > position:
            spans.append((position, match.start()))
        # a contrast word starts the next clause (and is a "base" cue there)
        position = match.start() if match.group(0).strip(" ，,。.;；!?！？\n\r•") else match.end()
        if position == match.start() and match.end() > match.start():
            spans.append((position, match.end()))
            position = match.end()
    if position < len(text):
        spans.append((position, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def _cues(text: str, start: int, end: int, kind: str | None) -> list[Cue]:
    clause = text[start:end]
    blocked = [(m.start(), m.end()) for m in _NOT_NEGATION.finditer(clause)]
    found: list[Cue] = []
    for post, table in ((False, _PRE), (True, _POST)):
        for cue_type, pattern, applies in table:
            if applies != "any" and kind is not None and applies != kind:
                continue
            requests_only = applies == "request"
            for match in pattern.finditer(clause):
                if any(b0 <= match.start() < b1 for b0, b1 in blocked):
                    continue
                found.append(Cue(cue_type, start + match.start(), start + match.end(), post, post and requests_only))
    return found


def only_false_negation(text: str, start: int, end: int) -> bool:
    """Whether the clause text[start:end] looks negated only through phrases that are no negation
    ("都没问题", "not only", "不错") and holds no real negation cue."""
    return bool(_NOT_NEGATION.search(text, start, end)) and not any(
        c.type == "declined" for c in _cues(text, start, end, None))


@dataclass(frozen=True, slots=True)
class RoleSpan:
    """A tag's position: what the role assigner needs from a tag."""

    start: int
    end: int
    semantic: bool = False  # a clause-long paraphrase tag: cues inside it count


# Skills whose work takes another concept as its object: "translate our annual report", "给年报做排版",
# "shoot your charity walk". The object is context; the activity is what is offered or needed.
ACTIVITY_CATEGORIES = frozenset({"translation_languages", "photo_video", "design"})
SPOKEN_LANGUAGE = "spoken_language"  # the category the tagger passes for a language concept (no activity)
OBJECT_CATEGORIES = frozenset({"marketing_communication", "fundraising", "events", "research_evaluation",
                               "strategy_management", "health_medicine", "psychology_social_work",
                               "education_training", "legal"})


class RoleAssigner:
    """Assigns a role to each tagged span of a text (see the module docstring)."""

    def base_role(self, kind: str | None, text: str) -> Role:
        if kind == "volunteer":
            return "offered"
        if kind == "request":
            return "needed"
        return infer_base_role(text)

    def assign(self, text: str, spans: Sequence[RoleSpan], kind: str | None = None,
               categories: Sequence[str] | None = None) -> list[Role]:
        """One role per span. ``categories`` (the spans' taxonomy categories) enable the activity/object rule."""
        base = self.base_role(kind, text)
        clause_spans = clauses(text)
        roles: list[Role] = []
        cue_cache: dict[tuple[int, int], list[Cue]] = {}
        clause_of: list[tuple[int, int]] = []
        for span in spans:
            clause = next(((s, e) for s, e in clause_spans if s <= span.start < e), (0, len(text)))
            clause_of.append(clause)
            cues = cue_cache.get(clause)
            if cues is None:
                cues = cue_cache[clause] = _cues(text, *clause, "request" if base == "needed" else "volunteer")
            roles.append(_role_in_clause(span, cues, spans, base))
        if base == "offered":
            workplaces = workplace_spans(text)
            for i, span in enumerate(spans):
                if roles[i] == base and any(s <= span.start and span.end <= e for s, e in workplaces):
                    roles[i] = "context"
        for i, span in enumerate(spans):
            if roles[i] == base and not span.semantic and audience_tag(text, span.start, span.end):
                roles[i] = "context"
        if categories is not None and base == "needed":
            for i, (span, category) in enumerate(zip(spans, categories)):
                if roles[i] == base and category == EVENT_CATEGORY and not span.semantic and \
                        _HOLDS_EVENT.search(text[max(0, span.start - 30):span.start]):
                    roles[i] = "context"  # the organisation's own event: helpers are needed for it, not its planning
        if categories is not None:
            for i, (span, category) in enumerate(zip(spans, categories)):
                if roles[i] != base or category not in OBJECT_CATEGORIES:
                    continue
                if any(j != i and clause_of[j] == clause_of[i] and categories[j] in ACTIVITY_CATEGORIES
                       and roles[j] == base for j in range(len(spans))):
                    roles[i] = "context"
        return roles


def _role_in_clause(span: RoleSpan, cues: Iterable[Cue], spans: Sequence[RoleSpan], base: Role) -> Role:
    cues = [c for c in cues if not (c.start >= span.start and c.end <= span.end and c.type == "base")]
    # a context or decline cue that covers the whole tag ("可报销" around 报销) decides it
    covering = [c for c in cues if c.type != "base" and c.start <= span.start and c.end >= span.end]
    if not covering and span.semantic:  # a clause-long paraphrase tag: cues inside it decide
        covering = [c for c in cues if c.type != "base" and c.start >= span.start and c.end <= span.end]
    if covering:
        return "declined" if any(c.type == "declined" for c in covering) else "context"
    # pre-cues: the nearest one that ends before the tag (a cue inside the tag's own surface counts for
    # context words such as 报销 / reimbursed only when it is the whole tag).
    before = [c for c in cues if not c.post and c.end <= span.start]
    pre: CueType | None = None
    if before:
        # the nearest cue; among cues ending at the same place the longest ("不需要" over "需要")
        nearest = max(before, key=lambda c: (c.end, c.end - c.start))
        pre = nearest.type
        if pre == "base" and any(
            c.type == "declined" and c.start < nearest.start and nearest.start - c.end <= 10 for c in before
        ):
            pre = "declined"  # "don't need", "not looking for", "can't really help with"
    if pre == "declined":
        return "declined"
    if pre == "context":
        # a need/offer cue later in the clause but before the tag would have been nearer: so context holds
        return "context"
    # post-cues: the first after the tag, unless a base cue sits between the tag and it
    after = sorted((c for c in cues if c.post and c.start >= span.end), key=lambda c: c.start)
    if after:
        first = after[0]
        between_base = any(
            c.type == "base" and not c.post and span.end <= c.start and c.end <= first.start for c in cues
        )
        limit = 1 if first.adjacent else 24
        if not between_base and first.start - span.end <= limit:
            return "declined" if first.type == "declined" else "context"
    return base


_NEED_HINT = re.compile(
    r"需要|急需|想找|寻找|招募|招一?位|求助|求一位|希望有|我们是|我们机构|本机构|looking\s+for|we\s+need|"
    r"need\s+(?:a|an|someone|help|volunteers?)|seeking|recruiting|we'?re\s+after|our\s+(?:charity|organi[sz]ation|nonprofit)",
    re.IGNORECASE,
)
_OFFER_HINT = re.compile(
    r"我是|本人|我会|我能|我可以|擅长|可以帮|能帮|做过|从业|工作了?\d|i'?m\s+an?\b|i\s+am\s+an?\b|i\s+can|i\s+have|"
    r"i'?ve\s+|happy\s+to|available|my\s+(?:experience|background)|years?\s+(?:of|in|as)",
    re.IGNORECASE,
)


def infer_base_role(text: str) -> Role:
    """Whether a text without a declared kind reads as a request (needed) or a profile (offered)."""
    needs = len(_NEED_HINT.findall(text))
    offers = len(_OFFER_HINT.findall(text))
    return "needed" if needs > offers else "offered"


def infer_kind(text: str) -> str:
    return "request" if infer_base_role(text) == "needed" else "volunteer"
