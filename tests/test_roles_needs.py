"""Roles of tags, structured needs, needs-aware ranking and alias filters, through the real tagger,
gazetteer, date parser, model and index."""

from __future__ import annotations

import datetime as dt

import pytest

from nlp_service.corpus import Document
from nlp_service.evaluation.gold import REFERENCE_DATE
from nlp_service.evaluation.matching_eval import bootstrap_interval, ndcg_at
from nlp_service.evaluation.needs_roles import needs_counts
from nlp_service.index.store import IndexedDocument
from nlp_service.matching import normalise_language

# (text, kind, concept, expected role)
ROLE_CASES = [
    ("不需要设计师，海报我们自己能做；需要一位会剪视频的志愿者。", "request", "media.video_editing", "needed"),
    ("我不会写前端，只能做后端，Python和Go都熟。", "volunteer", "it.frontend", "declined"),
    ("我不会写前端，只能做后端，Python和Go都熟。", "volunteer", "it.backend", "offered"),
    ("We're an autism charity in London and need a poster for our fun run. NOT looking for a photographer.",
     "request", "media.photography", "declined"),
    ("I can't take on litigation, but happy to review contracts.", "volunteer", "legal.litigation", "declined"),
    ("I can't take on litigation, but happy to review contracts.", "volunteer", "legal.contract_review", "offered"),
    ("We provide an interpreter; we need a family lawyer for a two-hour workshop.", "request",
     "lang.interpreting", "context"),
    ("We provide an interpreter; we need a family lawyer for a two-hour workshop.", "request",
     "legal.family_law", "needed"),
    ("交通费可报销。需要一位英语老师给流动儿童上课。", "request", "finance.expense_reimbursement", "context"),
    ("我们是一家自闭症儿童康复机构，想找人设计一张招募海报。", "request", "psych.autism_support", "context"),
    ("暂时不需要 translator，需要的是一位懂 Excel 的志愿者整理捐赠人名单。", "request",
     "lang.written_translation", "declined"),
    # a volunteer's employer's line of business is background, even behind an offer cue (做, "work at")
    ("我在深圳一家做物流的公司管了五年账，周末可以帮机构记账。", "volunteer", "ops.logistics", "context"),
    ("我在深圳一家做物流的公司管了五年账，周末可以帮机构记账。", "volunteer", "finance.bookkeeping", "offered"),
    ("I work at a logistics company; evenings I can do bookkeeping for a small charity.", "volunteer",
     "ops.logistics", "context"),
    ("I work at a logistics company; evenings I can do bookkeeping for a small charity.", "volunteer",
     "finance.bookkeeping", "offered"),
    # the people a skill is done for or with are background; a person the request looks for is not
    ("我做了十年心理咨询，可以为驻校社工做个案督导。", "volunteer", "psych.social_work_practice", "context"),
    ("Happy to run clinical supervision for your case managers once a month.", "volunteer",
     "psych.case_management", "context"),
    ("我们想找一位社工，每周上门陪伴独居老人。", "request", "psych.social_work_practice", "needed"),
    ("下个月想请人给一线 social workers 做一场创伤知情的培训。", "request", "psych.social_work_practice", "context"),
    # a language one speaks is no activity with an object: the talk stays offered (translating it would not)
    ("退休护士，可以用粤语或普通话给街坊做健康讲座。", "volunteer", "health.health_education", "offered"),
    # more ways to decline (不打算, 不是, 别找我) and to say someone else already does it (由…负责, 已经定稿)
    ("这次不打算做公众号，想找人把捐赠人名单整理一下。", "request", "social.wechat_official_account", "declined"),
    ("我们缺的不是摄影师，而是会剪辑的人。", "request", "media.photography", "declined"),
    ("我们缺的不是摄影师，而是会剪辑的人。", "request", "media.video_editing", "needed"),
    ("可以帮忙做账，报税就别找我了。", "volunteer", "finance.tax_filing", "declined"),
    ("排版由合作的设计公司负责，需要一位会剪视频的志愿者。", "request", "design.layout", "context"),
    ("年度报告已经定稿了，需要一位会剪视频的志愿者。", "request", "marketing.annual_report", "context"),
    # "We're a …" describes the organisation up to "and our …", where the problem starts
    ("We're a small animal rescue in Leeds and our QuickBooks books are a mess.", "request",
     "finance.accounting_software", "needed"),
    # staff the organisation already has, what it provides, the event it holds, the people served
    ("我们驿站有两位持证社工和一名护士，想请一位志愿者帮我们记账。", "request", "health.nursing", "context"),
    ("我们驿站有两位持证社工和一名护士，想请一位志愿者帮我们记账。", "request", "finance.bookkeeping", "needed"),
    ("希望有一位会剪视频的志愿者。", "request", "media.video_editing", "needed"),
    ("在药企做项目协调，翻译本身有同事做，我主要管进度。", "volunteer", "lang.written_translation", "context"),
    ("The clinic provides free legal representation to asylum seekers; we need someone to build a dashboard.",
     "request", "legal.immigration_law", "context"),
    ("We are holding a charity bazaar on 12 December and need volunteers to staff the registration desk.",
     "request", "events.charity_bazaar", "context"),
    ("We need an event planner to help us plan our first charity bazaar.", "request", "events.charity_bazaar",
     "needed"),
    ("退休数学老师，愿为留守儿童提供线上数学辅导。", "volunteer", "psych.left_behind_children", "context"),
    # "looking for a <person>" asks for that person; it is no audience
    ("Looking for a photographer who loves dogs!", "request", "media.photography", "needed"),
    ("团队里有专职设计师，物料、海报都是自己做。想找会做数据可视化的伙伴。", "request", "design.poster", "context"),
    ("合同审核有理事会的律师把关，想请一位HR前辈帮我们搭一套绩效考核办法。", "request", "legal.contract_review", "context"),
    ("Our case managers and social workers already track every client; we need someone to clean up the "
     "spreadsheets.", "request", "psych.social_work_practice", "context"),
    ("MindSpace is a small mental health charity running peer support groups. We need a WordPress developer.",
     "request", "psych.group_work", "context"),
    ("One of our members is a keen photographer. What we need is someone to take over our Instagram.", "request",
     "media.photography", "context"),
    ("想找会拍照的朋友帮猫咪拍领养照（不会修图也没关系！）", "request", "media.photography", "needed"),
    # a refusal said after the skill with the speaker inside it, and Cantonese refusals
    ("十年公众号运营，排版、选题都行，文案我是真不行😅", "volunteer", "marketing.copywriting", "declined"),
    ("执业律师，合同审查可以帮，诉讼案子我接不了。", "volunteer", "legal.litigation", "declined"),
    ("活动当天的摄影已经找好，亦唔需要航拍，想搵人做字幕。", "request", "media.drone", "declined"),
    ("活动当天的摄影已经找好，亦唔需要航拍，想搵人做字幕。", "request", "media.photography", "context"),
    ("我们不缺调音师，缺一位会剪视频的志愿者。", "request", "media.audio_recording", "declined"),
    # someone the organisation already has does it
    ("小红书账号也有志愿者在运营，想找人帮忙做一套活动海报。", "request", "social.xiaohongshu", "context"),
    ("我们的行政小林人很好，她还会用剪映剪点视频；现在缺一位会做预算的志愿者。", "request", "media.video_editing", "context"),
    ("Our development lead writes every grant application, so what we need is a bookkeeper.", "request",
     "fundraising.grant_writing", "context"),
]


@pytest.mark.parametrize("text,kind,concept,role", ROLE_CASES)
def test_tag_roles(services, text, kind, concept, role):
    """The cue rules (the role refiner may overrule them; see the test below)."""
    tagged = services.tagger.tag(text, kind, refine=False)
    roles = {t.concept_id: t.role for t in tagged.tags}
    assert roles.get(concept) == role, roles


def test_the_role_refiner_keeps_almost_every_rule_case(services):
    """With the refiner trained by the set-up command, the whole pipeline still gets these cases right
    (it trades a few of them for fewer errors on unseen text: test role accuracy 0.78 -> 0.82)."""
    assert services.tagger.refiner is not None, "run the set-up command: it trains models/role-refiner"
    tagged = services.tagger.tag_many([t for t, *_ in ROLE_CASES], [k for _, k, *_ in ROLE_CASES])
    right = [{t.concept_id: t.role for t in result.tags}.get(concept) == role
             for result, (_, _, concept, role) in zip(tagged, ROLE_CASES)]
    assert sum(right) >= 0.9 * len(ROLE_CASES), [c for c, ok in zip(ROLE_CASES, right) if not ok]


def test_declined_and_context_tags_stay_out_of_matching_concepts(services):
    tagged = services.tagger.tag("我不会写前端，只能做后端。", "volunteer")
    assert "it.frontend" in tagged.declined_ids
    assert "it.frontend" not in tagged.concept_ids and "it.backend" in tagged.concept_ids


def test_each_mention_has_its_own_role(services):
    """Last year's poster is background; this year's is the need: the concept is needed, with that evidence."""
    text = "去年的海报是实习生做的，效果一般。今年想请一位设计师帮我们做一张义卖海报。"
    tagged = services.tagger.tag(text, "request", refine=False)
    posters = [t for t in tagged.tags if t.concept_id == "design.poster"]
    assert [(t.start, t.role) for t in posters] == [(text.index("海报"), "context"), (text.rindex("海报"), "needed")]
    assert "design.poster" in tagged.concept_ids


def test_base_role_follows_kind_or_is_inferred(services):
    """The cue rules' base role (the learned refiner may overrule single tags; its share is tested above)."""
    text = "做了五年BI，Power BI都用过。"
    assert {t.role for t in services.tagger.tag(text, "volunteer", refine=False).tags} == {"offered"}
    assert {t.role for t in services.tagger.tag(text, "request", refine=False).tags} == {"needed"}
    assert {t.role for t in services.tagger.tag("We need a bookkeeper for our charity.", refine=False).tags} \
        == {"needed"}


def _needs(services, text, kind="request"):
    return services.tagger.tag(text, kind, reference=REFERENCE_DATE).needs.to_dict()


@pytest.mark.parametrize("text,kind,codes", [
    ("We provide an Arabic interpreter; we need a GP who can run the health check in English.", "request", ["en"]),
    ("孩子们的马来语课已经有老师了，现在招线上英语老师。", "request", ["en"]),
    ("想找一位能用粤语和老人聊天的志愿者。", "request", ["zh"]),  # ISO 639-1 has no code for Cantonese
    ("Fluent in Spanish and Portuguese, happy to translate leaflets.", "volunteer", ["es", "pt"]),
    ("We need someone who can write in Welsh and English.", "request", ["cy", "en"]),
    ("Happy to help in English or Bahasa Malaysia.", "volunteer", ["en", "ms"]),
    ("日译中的文件都可以帮忙。", "volunteer", ["ja", "zh"]),
    ("能做中文和马来文的双语海报。", "volunteer", ["zh", "ms"]),
])
def test_languages_named_only_as_background_are_not_needs(services, text, kind, codes):
    assert [x["code"] for x in _needs(services, text, kind)["languages"]] == codes


@pytest.mark.parametrize("text,cause", [
    ("我们是一个动保小组，想请人帮忙拍领养照。", "animal_welfare"),
    ("服务新住民姊妹的协会，想找人做一份中越双语的宣传单。", "migrants_refugees"),
    ("We're a small hospice in Leeds looking for a bookkeeper.", "health"),
    ("Our youth club works in the slums of Kibera.", "poverty_livelihoods"),
])
def test_cause_terms(services, text, cause):
    assert cause in [c["id"] for c in _needs(services, text)["causes"]]


def test_a_longer_cause_term_names_the_causes_inside_it_too(services):
    # corpus/needs/README.md: 流动儿童 (migrants) contains 儿童 (children): the text names both
    causes = _needs(services, "我们给流动儿童做周末陪伴。")["causes"]
    assert sorted(c["id"] for c in causes) == ["children_youth", "migrants_refugees"]
    assert {c["id"]: c["span"]["surface"] for c in causes}["children_youth"] == "儿童"


def test_needs_from_a_chinese_request(services):
    text = "我们是一家自闭症儿童康复机构，想找人设计一张招募海报，3月底前要用。上海，线下。"
    needs = _needs(services, text)
    assert (needs["location"]["name_en"], needs["location"]["name_zh"]) == ("Shanghai", "上海")
    assert needs["mode"]["value"] == "on_site"
    assert needs["deadline"]["date"] == "2027-03-31"
    assert [c["id"] for c in needs["causes"]] == ["disability"] or "disability" in [c["id"] for c in needs["causes"]]
    # the deliverable reader gives the clause that names it; the patterns (its baseline) the phrase
    assert needs["deliverable"]["span"]["surface"] == "想找人设计一张招募海报"
    assert services.needs.pattern_deliverable(text).surface == "一张招募海报"


@pytest.mark.parametrize("text,dates", [
    ("每周8到12小时，1月4日开始，至少三个月。", ["2027-01-04"]),  # a start date, not a 3-month span
    ("寒假1月10日到2月20日在昆明老家，线下线上都行。", ["2027-01-10", "2027-02-20"]),
    ("我们在拱墅区，地铁5号线可到。", []),  # a line number
    ("主要是周末陪伴和寒暑假的活动。", []),  # 周末 is no date
])
def test_dates(services, text, dates):
    assert [d["date"] for d in _needs(services, text, "volunteer")["dates"]] == dates


@pytest.mark.parametrize("text,surface", [
    # a declined thing or the organisation's own description is no deliverable
    ("We do NOT need a new logo or brand identity. What we need is a 20-page annual report written up from our "
     "field notes.", "a 20-page annual report"),
    ("我们是新加坡一个服务migrant workers的volunteer group，想找人帮忙draft a simple privacy policy。",
     "a simple privacy policy"),
    ("We DO need a lawyer to look over our fiscal sponsorship agreement and draft simple bylaws.", "simple bylaws"),
    # the object of a production verb, read from the dependency parse
    ("We would love a volunteer to proofread our grant report before it goes to the funder on Friday.",
     "our grant report"),
    ("Hoping to find someone to rewrite the volunteer handbook (it is 40 pages, mostly out of date) in plain "
     "English.", "the volunteer handbook"),
    # the object of 把 when it is a kind of output
    ("想请懂Excel的朋友帮我们把捐款人名单整理一下，去掉重复的。", "捐款人名单"),
    # any object of a making verb, when no phrase names a known kind of output
    ("Could a former stage manager help us put together a run of show for the gala?", "a run of show"),
    ("我们想请一位律师帮忙草拟场地共享备忘录，下个月要用。", "场地共享备忘录"),
    ("数据都在问卷星里，想找人帮忙写个简单的结果摘要，给理事会看。", "简单的结果摘要"),
    # a counted thing with a relative clause is named by its head: the person asked for is skipped, the output
    # is kept whole
    ("真正缺的是一个能把活动方案写清楚的人，写成一份能拿去给街道审批的策划案。", "一份能拿去给街道审批的策划案"),
])
def test_deliverable_is_what_is_asked_for(services, text, surface):
    """The deliverable patterns: the fallback without a deliverable reader, and its baseline in ``evaluate``."""
    assert services.needs.pattern_deliverable(text).surface == surface


@pytest.mark.parametrize("text", [
    "Looking for a video editor who can spare a weekend this month.",  # the output names the person asked for
    "We need someone who has built donor databases before to help us choose a CRM.",  # experience, not a need
    "想请一位老师把孩子们的作业批改一下。",  # the material worked on is no deliverable
    "项目覆盖6个县，想请人帮两个忙：看看数据、给点建议。",  # places and favours are counted, and are no output
    "义卖有30个摊位，需要几位志愿者当天来帮忙。",
    "系统由资助方统一部署，想找人帮忙看看，同一个人登记好几遍的也不少。",  # 统一部, 一个人: no counted output
])
def test_no_deliverable(services, text):
    assert services.needs.pattern_deliverable(text) is None


def test_a_workplace_names_no_cause(services):
    causes = _needs(services, "我在一家三甲医院的信息科上班，下班后可以帮小机构做数据看板，对做养老服务的机构特别有感情。")["causes"]
    assert [c["id"] for c in causes] == ["elderly"]


def test_needs_from_an_english_profile(services):
    text = "Based in Shanghai, 3-5 hours a week, remote. Fluent in Mandarin and English."
    needs = _needs(services, text, "volunteer")
    assert needs["location"]["name_en"] == "Shanghai" and needs["location"]["span"]["surface"] == "Shanghai"
    assert needs["mode"]["value"] == "remote"
    assert needs["hours_per_week"]["value"] == 5
    assert [x["code"] for x in needs["languages"]] == ["zh", "en"]
    assert needs["deliverable"] is None  # volunteers deliver nothing


@pytest.mark.parametrize("text,name_en", [
    ("我们是云南昭通一所村小的支持团队。", "Zhaotong"),  # the province is no city (雲南 is also a town in Japan)
    ("贵州凯里附近的苗绣合作社想找一位摄影师。", "Kaili"),  # a city GeoNames knows in pinyin only
    ("在德国斯图加特做汽车工程师。", "Stuttgart"),  # jieba tags it a transliterated name, not a place
    ("我们在江苏做社区养老。", None),
    # a district names its city; a city stays itself; a street is no city
    ("我们在拱墅区，地铁5号线可到。", "Hangzhou"),
    ("龙岗这边有不少刑满释放人员。", "Shenzhen"),
    ("办公室在徐汇，周末可以线下见。", "Shanghai"),
    ("机构在西安，账一直用金蝶做。", "Xi’an"),  # not a 西安区 of another city
    ("蓝天白云下办一场义卖。", None),
    ("报名一直靠群接龙，人一多就乱。", None),  # a WeChat sign-up list, not the town of Jielong
    ("我们是香港一个照顾独居长者的小组。", "Hong Kong"),  # a province in jionlp's table, a city here
    ("大理的扎染合作社想拍一组产品图。", "Dali"),  # an autonomous prefecture; 合作 is no town (Hezuo)
    ("希望和高校加强合作。", None),
    ("人在温哥华，可以远程帮忙。", "Vancouver"),  # jieba tags it a person's name
    ("Our clinic in Pilsen serves Chicago's Mexican families.", "Chicago"),  # a neighbourhood that is a town elsewhere
    ("Grew up in Leeds, now teaching in Darwin.", "Leeds"),  # the first of two real cities stays
    ("郑州的社区报名靠群接龙。", "Zhengzhou"),
    ("Charity shop on Gloucester Road, Bristol.", "Bristol"),
    # jieba keeps a word after the name in its segment; a big city jieba tags as an adverb or verb
    ("大连人，白天在日企上班。", "Dalian"),
    ("我是新疆阿克苏地区一所中学的老师。", "Aqsu"),
    ("首尔的一家NGO想找设计师。", "Seoul"),
    ("开封后请冷藏，我们在网上卖果酱。", None),  # "once opened", not Kaifeng
    ("Our food rescue crew in South Auckland has grown.", "Auckland"),
    ("A North Carolina nonprofit.", None),  # a state, not the town of Carolina in Puerto Rico
])
def test_location_reads_chinese_admin_names(services, text, name_en):
    location = _needs(services, text)["location"]
    assert (location or {}).get("name_en") == name_en


@pytest.mark.parametrize("text,field,expected", [
    ("需要一位英语老师给流动儿童上课，为期三个月。", "duration", (3, "month")),
    ("十年外企HR，前五年做招聘。", "duration", None),  # experience, not the engagement's length
    ("We need help for six weeks with our grant report.", "duration", (6, "week")),
    ("a 2-hour workshop on 20 December", "total_hours", 2),
    ("请在明年1月15日之前交稿", "deadline", "2027-01-15"),
    ("deadline is March 15", "deadline", "2027-03-15"),
    ("每周大概5个小时，线上", "hours_per_week", 5),
    ("社区里来宾很多，中心的三条线都要人", "location", None),  # GeoNames names that are ordinary words here
    ("线上为主，偶尔需要来一趟机构开个会。", "mode", "hybrid"),
    ("Mostly online, with the odd visit to the shelter.", "mode", "hybrid"),
    ("可以视频沟通，也可以来办公室面谈。", "mode", "hybrid"),
    ("希望春节前做完，大概需要投入30小时。", "total_hours", 30),
    ("每周投入3小时", "total_hours", None),  # a weekly rate is no total
    ("每周能挤出三四个小时帮忙看账。", "hours_per_week", 4),
    ("預計總共8至10個鐘。", "total_hours", 10),  # Cantonese 個鐘 is an hour
    ("之后线上推进，预计总共20-25 hours。", "total_hours", 25),
    ("1月9日下午带一场3小时的工作坊。", "total_hours", 3),
    ("每场2小时的工作坊，看报名情况再定场次。", "total_hours", None),
    ("每周一个下午，commitment 至少 six months。", "duration", (6, "month")),
    ("先试 10 weeks 看看效果。", "duration", (10, "week")),
    ("We estimate three full days in the field.", "duration", (3, "day")),
    ("Two hours a month, for a year or so.", "duration", (1, "year")),
    ("I have volunteered there for three years.", "duration", None),  # experience
    ("明年春天下乡两周，给村民讲控糖。", "duration", (2, "week")),
    ("每週可以給兩到三個鐘。", "hours_per_week", 3),
    ("每周两次，每次3小时。", "hours_per_week", None),  # two sessions of three hours: not said as a weekly total
    ("想找一位志愿者每周六上午来驿站，每次2小时左右。", "hours_per_week", 2),  # one weekly session of two hours
    ("每周二下午，总共3次，每次2小时。", "hours_per_week", None),  # a total of three sessions
    ("一周能抽5、6个小时。", "hours_per_week", 6),
    ("一个星期大概可以抽出五六个钟头。", "hours_per_week", 6),
    ("希望4月12日春季开学前能上线。", "deadline", "2027-04-12"),  # the date, its event, then 前
    ("Ideally before the new term starts on 9 April.", "deadline", "2027-04-09"),
    ("Our council grant round closes 14 February.", "deadline", "2027-02-14"),
    ("Latest by end Jan, can?", "deadline", "2027-01-31"),
    ("We need the new budget template by the end of Q1.", "deadline", "2027-03-31"),  # a quarter's last day
    ("需要一位会拍活动照的志工到现场，12/27前交修好的照片就可以。", "deadline", "2026-12-27"),
    ("活动当天大概有3/4的人是长者。", "deadline", None),  # a fraction, not a date
    ("Ideally finished before the end of the second quarter 2027.", "deadline", "2027-06-30"),
    ("In the end may be we just print it.", "deadline", None),
    ("项目为期一个季度，每周开一次线上会。", "duration", (3, "month")),
    ("每周可投入5小时，周末也行。", "total_hours", None),
    ("每次大约两小时，一共三次。", "total_hours", None),
    ("截止日期：2027年3月15日", "deadline", "2027-03-15"),
    ("合作期一年，每月碰一次。", "duration", (1, "year")),
    ("活动持续三天，需要全程在场。", "mode", "on_site"),
    ("Calls over Teams, no travel needed.", "mode", "remote"),
    ("Must be able to attend sessions at our Brixton office.", "mode", "on_site"),
    ("Mostly remote, but it helps if you can pop into the office now and then.", "mode", "hybrid"),
    ("项目为期半年，线上为主。", "duration", (6, "month")),  # a fractional year is counted in months
    ("想请一位摄影志愿者来村里住三四天。", "duration", (4, "day")),
    ("Need an optometrist for 2 days in January.", "duration", (2, "day")),
    ("We are organising a 3-day state-level teachers' conclave in Bhopal.", "duration", (3, "day")),
    ("Five years in marketing, now freelance.", "duration", None),
    ("分几次线上完成，大概需要20小时。", "total_hours", 20),
    ("需要一位执业律师来现场讲两个小时。", "total_hours", 2),
    ("每周需要3小时左右。", "total_hours", None),
    ("Hybrid: a few school visits, the rest online. 6 weeks, 5-6 hrs a week.", "duration", (6, "week")),
    ("Est. 20 hours over the next month. Mostly remote.", "duration", (1, "month")),
    ("Available for in-person assignments of 1-2 weeks within Uganda.", "duration", (2, "week")),
    ("Can do roughly one day a week, in person or remote.", "duration", None),  # a rate
    ("不定期周末到基地拍，一次大概半天。", "duration", None),  # one session's length
    ("希望线上，每周四小时，先试一个月。", "duration", (1, "month")),
    ("We'd meet on Zoom a few times. Ideally done before our AGM on 18 March.", "deadline", "2027-03-18"),
    ("Maybe 6 hours total. Remote, obviously. Deadline: end of January.", "deadline", "2027-01-31"),
    ("全程线上，Deadline 是 1 月 31 日。", "deadline", "2027-01-31"),
    ("我们在拱墅区，地铁5号线可到。", "deadline", None),
    ("想找一位志愿者每周六来馆里帮忙上课。", "mode", "on_site"),
    ("跟着社工入户，看看老人家里哪里容易摔。", "mode", "on_site"),
    ("素材网盘发你，全程不用见面。", "mode", "remote"),
    ("Can turn short pieces around within a week. Email only.", "mode", "remote"),
    ("Could someone drop in to the shop one afternoon and take product shots?", "mode", "on_site"),
    # sessions times their length; an estimate of the whole; "within" is how soon, not how long
    ("培训安排在寒假，共3次课，每次2小时，线上进行。", "total_hours", 6),
    ("We'd like four sessions of 90 minutes or, failing that, 2 sessions of 3 hours.", "total_hours", 6),
    ("网站迁移加培训，预计25小时左右。", "total_hours", 25),
    ("Est. 15 hours, flexible timing.", "total_hours", 15),
    ("Happy to help with up to 30 hours on a single project.", "total_hours", 30),
    ("Up to 3 hours a week, evenings.", "total_hours", None),  # a weekly rate
    ("Minimum commitment of six months, one evening a week.", "duration", (6, "month")),
    ("希望能和我们合作半年左右。", "duration", (6, "month")),
    ("最好一周内给到初稿。", "duration", None),
    ("Could you send comments within a week?", "duration", None),
    ("每周六下午去打工子弟学校给孩子们上美术课。", "mode", "on_site"),
    ("平时开会都在 Zoom 上，偶尔电话。", "mode", "remote"),
    ("Happy to do it all by Zoom.", "mode", "remote"),
    ("我在医院做了八年护士，擅长伤口护理。", "mode", None),  # works at a hospital: no mode said
    # both kinds of cue in one sentence are hybrid; in different sentences the last says how the work is done
    ("可以到站里面对面聊，也可以Zoom。", "mode", "hybrid"),
    ("Happy to meet in Leeds or remote.", "mode", "hybrid"),
    ("我们的社工每周上门看望独居老人。这次的宣传册设计全程线上沟通就行。", "mode", "remote"),
    ("We run video calls for isolated seniors. For this project we'd need you at our office twice.", "mode",
     "on_site"),
    ("线上为主。每个月能来中心一次更好。", "mode", "hybrid"),  # the main way, and an addition
    ("方式：线上协作为主，偶尔周末一起去河边核对点位。", "mode", "hybrid"),
    ("Mostly Zoom calls, plus being there on the night.", "mode", "hybrid"),
    ("Happy to meet in Christchurch or Zoom.", "mode", "hybrid"),
    ("Teams or Zoom is fine.", "mode", "remote"),
    # "hybrid working" is a topic of the work, not its mode
    ("Our handbook doesn't cover hybrid working yet. We'd meet over Teams.", "mode", "remote"),
    ("Based in Bristol and happy to come to you.", "mode", "on_site"),
    ("想给咱本地的公益组织搭把手，记账、报税都能整。", "mode", None),  # an idiom for helping, not a visit
    # a way of working the text turns down is no mode; a negative cue keeps its meaning
    ("笔译都可以接，现场口译就先不要找我了。", "mode", None),
    ("Written work only: I don't do interpreting, not even over Zoom.", "mode", None),
    ("资料网上发我就行，不需要到场。", "mode", "remote"),
])
def test_needs_fields(services, text, field, expected):
    value = _needs(services, text)[field]
    if expected is None:
        assert value is None
    elif field == "duration":
        assert (value["value"], value["unit"]) == expected
    elif field == "deadline":
        assert value["date"] == expected
    else:
        assert value["value"] == expected
    if value is not None:
        span = value["span"]
        assert text[span["start"]:span["end"]] == span["surface"]


def test_explicit_metadata_wins(services):
    tagged = services.tagger.tag("Based in London, remote only.", "volunteer",
                                 meta={"location": "深圳 Shenzhen", "remote": False, "languages": ["zh"]})
    needs = tagged.needs.to_dict()
    assert needs["location"]["name_en"] == "Shenzhen" and needs["location"]["span"] is None
    assert needs["mode"]["value"] == "on_site"
    assert [x["code"] for x in needs["languages"]] == ["zh"]


@pytest.mark.parametrize("value", ["EN", "en", "English", "英语", "en-GB"])
def test_language_aliases(value):
    assert normalise_language(value) == "en"


def test_language_aliases_for_chinese():
    assert {normalise_language(v) for v in ("zh", "ZH", "Chinese", "中文", "普通话", "Mandarin", "zh-CN")} == {"zh"}
    assert normalise_language("Klingon") is None


def test_extract_returns_roles_and_needs(client):
    body = client.post("/v1/extract", json={"text": "不需要设计师；需要一位会剪视频的志愿者，每周4小时，远程。",
                                            "kind": "request"}).get_json()
    assert body["kind"] == "request"
    assert {t["role"] for t in body["tags"]} <= {"offered", "needed", "declined", "context"}
    assert body["needs"]["hours_per_week"]["value"] == 4 and body["needs"]["mode"]["value"] == "remote"
    bad = client.post("/v1/extract", json={"text": "hello", "kind": "sponsor"})
    assert bad.status_code == 400 and "kind" in bad.get_json()["error"]["message"]


def _locations(body):
    return {m["needs"]["location"]["name_en"] for m in body["matches"] if m["needs"].get("location")}


def test_location_filter_works_across_languages(client):
    text = "Need an accountant to help close our books."
    by_en = client.post("/v1/match", json={"text": text, "kind": "request", "top_k": 10,
                                           "filters": {"location": "Shanghai"}}).get_json()
    by_zh = client.post("/v1/match", json={"text": text, "kind": "request", "top_k": 10,
                                           "filters": {"location": "上海"}}).get_json()
    assert by_en["matches"] and _locations(by_en) == {"Shanghai"}
    assert [m["id"] for m in by_en["matches"]] == [m["id"] for m in by_zh["matches"]]
    assert any("上海" in (m["meta"].get("location") or "") for m in by_en["matches"])


def test_language_filter_aliases_agree(client):
    text = "我们需要一位会做财务报表的志愿者。"
    results = []
    for alias in ("EN", "en", "English", "英语"):
        body = client.post("/v1/match", json={"text": text, "kind": "request", "top_k": 10,
                                              "filters": {"languages": [alias]}}).get_json()
        results.append([m["id"] for m in body["matches"]])
    assert results[0] and all(r == results[0] for r in results)
    bad = client.post("/v1/match", json={"text": text, "kind": "request", "filters": {"languages": ["Klingon"]}})
    assert bad.status_code == 400 and "Klingon" in bad.get_json()["error"]["message"]


def test_document_matches_take_filters(client, services):
    request_id = next(d for d, e in services.current_index().documents.items() if e.document.kind == "request")
    plain = client.get(f"/v1/documents/{request_id}/matches?top_k=20").get_json()
    filtered = client.get(f"/v1/documents/{request_id}/matches?top_k=20&location=Shanghai").get_json()
    assert filtered["matches"] and len(filtered["matches"]) <= len(plain["matches"])
    assert _locations(filtered) == {"Shanghai"}
    assert client.get(f"/v1/documents/{request_id}/matches?remote=maybe").status_code == 400
    assert client.get(f"/v1/documents/{request_id}/matches?top_k=²").status_code == 400


def test_matches_are_explained_and_banded(client):
    body = client.post("/v1/match", json={"text": "我们需要一位会计帮忙做账和准备年度审计，上海，线下。",
                                          "kind": "request", "top_k": 5}).get_json()
    for match in body["matches"]:
        assert match["band"] in {"strong", "possible", "weak"}
        parts = match["score_parts"]
        assert set(parts) == {"similarity", "skills", "location", "language", "hours", "field", "declined"}
        assert abs(sum(parts.values()) - match["score"]) < 1e-3
        assert set(match["needs_fit"]) == {"location", "language", "hours", "field"}
        assert isinstance(match["missing_tags"], list) and isinstance(match["declined_conflicts"], list)


def _entry(services, doc_id: str, text: str, kind: str = "volunteer") -> IndexedDocument:
    tagged = services.tagger.tag(text, kind)
    document = Document(doc_id, kind, text, {})
    return IndexedDocument.from_row(document, [t.to_dict() for t in tagged.tags], tagged.needs.to_dict(), tagged.lang)


def test_a_volunteer_who_declines_the_need_ranks_lower(services):
    query = services.tagger.tag("需要一位会做前端的志愿者帮我们改版网站。", "request")
    declines = _entry(services, "v-no", "我不会写前端，只能做后端。")
    offers = _entry(services, "v-yes", "我会写前端，也能做后端。")
    low = services.matcher.score(query, "request", declines, 0.5)
    high = services.matcher.score(query, "request", offers, 0.5)
    assert "it.frontend" in low.declined and low.score_parts["declined"] < 0
    assert high.score > low.score


def test_a_volunteer_who_knows_the_requests_field_ranks_higher(services):
    request_text = "我们是一家自闭症康复机构，想找一位会计帮忙做账。"
    query = services.tagger.tag(request_text, "request")
    assert "psych.autism_support" in {t.concept_id for t in query.tags if t.role == "context"}
    knows = _entry(services, "v-field", "会计师，在自闭症康复机构做过五年志愿者，可以帮忙做账。")
    plain = _entry(services, "v-plain", "会计师，可以帮忙做账。")
    inside, outside = (services.matcher.score(query, "request", e, 0.5) for e in (knows, plain))
    assert inside.score_parts["field"] > 0 == outside.score_parts["field"]
    assert "psych.autism_support" in inside.fit["field"] and outside.fit["field"] == "no shared field"
    assert inside.score > outside.score
    # a volunteer asking sees the same fit from the other side
    volunteer = services.tagger.tag(knows.document.text, "volunteer")
    request = _entry(services, "r-field", request_text, "request")
    assert services.matcher.score(volunteer, "volunteer", request, 0.5).score_parts["field"] > 0


def test_an_on_site_request_prefers_the_same_city(services):
    query = services.tagger.tag("上海的社区中心需要一位会计线下帮忙做账。", "request")
    same = _entry(services, "v-sh", "会计师，在上海，可以线下帮忙做账。")
    other = _entry(services, "v-bj", "会计师，在北京，可以线下帮忙做账。")
    near, far = (services.matcher.score(query, "request", e, 0.5) for e in (same, other))
    assert near.score_parts["location"] > 0 > far.score_parts["location"]


def test_needs_counts_by_hand():
    span = {"start": 0, "end": 2, "surface": "上海"}
    gold = {"location": {"name_en": "Shanghai", "span": span}, "mode": None, "hours_per_week": {"value": 4, "span": span},
            "total_hours": None, "duration": None, "deadline": None, "dates": [],
            "languages": [{"code": "zh", "span": span}, {"code": "en", "span": span}], "causes": [], "deliverable": None}
    pred = {**gold, "hours_per_week": {"value": 5, "span": span}, "languages": [{"code": "zh", "span": span}],
            "mode": {"value": "remote", "span": span}}
    counts = needs_counts(gold, pred)
    assert (counts["location"].tp, counts["location"].fp, counts["location"].fn) == (1, 0, 0)
    assert (counts["hours_per_week"].tp, counts["hours_per_week"].fp, counts["hours_per_week"].fn) == (0, 1, 1)
    assert (counts["mode"].fp, counts["mode"].fn) == (1, 0)
    assert (counts["languages"].tp, counts["languages"].fn) == (1, 1)


def test_ndcg_and_bootstrap_by_hand():
    grades = {"a": 2, "b": 1, "c": 0}
    assert ndcg_at(["a", "b", "c"], grades) == pytest.approx(1.0)
    worse = ndcg_at(["c", "b", "a"], grades)
    assert 0 < worse < 1
    assert ndcg_at(["x", "y"], grades) == 0.0
    low, high = bootstrap_interval([1.0] * 10)
    assert (low, high) == (1.0, 1.0)
    low, high = bootstrap_interval([0.0, 1.0] * 20)
    assert 0.3 < low < 0.5 < high < 0.7


def test_gold_files_carry_roles_and_needs(taxonomy):
    from pathlib import Path

    from nlp_service.evaluation.gold import load_gold
    from nlp_service.evaluation.matching_eval import load_match_gold

    root = Path(__file__).resolve().parents[1] / "corpus" / "eval"
    test = load_gold(root / "test.jsonl", taxonomy)
    focus = [i for i in test if i.focus in ("negation", "background")]
    assert len(focus) >= 40
    for lang in ("zh", "en"):
        assert sum(1 for i in test + load_gold(root / "dev.jsonl", taxonomy) if i.lang == lang) >= 80
    assert all(i.needs is not None for i in test)
    matches = load_match_gold(root / "match_test.jsonl") + load_match_gold(root / "match_dev.jsonl")
    assert len(matches) >= 60 and {m.lang for m in matches} >= {"zh", "en"}
    assert all(len(m.grades) >= 5 for m in matches)


def test_traditional_chinese_is_read_like_simplified(services):
    """Hong Kong and Taiwan texts: matched on a simplified copy, every surface cut from the original."""
    text = "我哋係一間服務基層長者嘅機構，想搵位義工幫手設計海報，唔需要攝影。每週兩小時，遙距。"
    tagged = services.tagger.tag(text, "request", reference=REFERENCE_DATE)
    roles = {t.concept_id: (t.role, t.surface) for t in tagged.tags}
    assert roles["design.poster"] == ("needed", "設計海報")
    assert roles["media.photography"][0] == "declined"
    needs = tagged.needs.to_dict()
    assert [(c["id"], c["span"]["surface"]) for c in needs["causes"]] == [("elderly", "長者")]
    assert needs["mode"]["value"] == "remote" and needs["hours_per_week"]["value"] == 2
