"""The coordinator pages in a real browser: the app served by werkzeug on 127.0.0.1 in a thread (the session
``services``: real model, real index), driven by Debian's chromium headless through selenium.

Never skipped: ``make test`` installs chromium and chromium-driver first (the Makefile's ``browser`` step),
and a missing browser fails here with what to run. Screenshots land in docs/screenshots/.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from nlp_service.cli import main
from nlp_service.evaluation.feedback import summarise_feedback
from nlp_service.store.feedback import FeedbackStore

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,1000",
         "--lang=zh-CN")
REQUEST_ZH = ("我们是一家服务留守儿童的公益机构，需要一位懂儿童个人信息保护的法律顾问，帮我们审一下小程序的隐私政策和"
              "家长同意书。线上沟通就可以，每周两三个小时，希望一个月内完成。财务审计已经有会计师事务所在做，不需要。")
ROLE_CLASSES = {"role-offered", "role-needed", "role-declined", "role-context"}


@pytest.fixture(scope="module")
def feedback_store(services, tmp_path_factory):
    """The pages record into ``services.feedback``: this module gets its own database file."""
    store = FeedbackStore(tmp_path_factory.mktemp("web-ui") / "feedback.sqlite")
    previous, services.feedback = services.feedback, store
    yield store
    services.feedback = previous


@pytest.fixture(scope="module")
def live_server(app, feedback_store):
    server = make_server("127.0.0.1", 0, app, threaded=True)  # port 0: the OS picks a free port
    thread = threading.Thread(target=server.serve_forever, name="web-ui-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run `make browser` "
                    "(apt-get install -y --no-install-recommends chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _screenshot(driver, name: str) -> Path:
    """A full-page PNG: the window is resized to the page's height first."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(int(height), 800), 6000))
    path = SCREENSHOTS / f"{name}.png"
    driver.get_screenshot_as_file(str(path))
    driver.set_window_size(1280, 1000)
    return path


def _submit(driver, base: str, text: str) -> None:
    driver.get(base + "/")
    box = driver.find_element(By.ID, "text")
    box.clear()
    box.send_keys(text)
    driver.find_element(By.ID, "kind-request").click()
    driver.find_element(By.ID, "submit").click()
    WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.ID, "highlighted")))


def test_paste_a_chinese_request_see_tags_and_matches_record_feedback(browser, live_server, feedback_store, runner,
                                                                      caplog):
    caplog.set_level(logging.INFO)
    browser.get(live_server + "/?lang=zh")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    _submit(browser, live_server, REQUEST_ZH)

    marks = browser.find_elements(By.CSS_SELECTOR, "#highlighted mark.tag")
    roles = {c for m in marks for c in m.get_attribute("class").split() if c.startswith("role-")}
    assert "role-needed" in roles, roles
    assert roles <= ROLE_CLASSES and len(roles) >= 2, roles  # the declined audit shows in another colour
    assert "".join(m.text for m in marks)  # the highlighted pieces are the text's own words
    legend = {c for m in browser.find_elements(By.CSS_SELECTOR, ".legend mark")
              for c in m.get_attribute("class").split() if c.startswith("role-")}
    assert legend == ROLE_CLASSES
    assert browser.find_element(By.ID, "needs").text.strip()
    matches = browser.find_elements(By.CSS_SELECTOR, "article.match")
    assert matches, "no match shown"
    first = matches[0]
    assert first.find_element(By.CSS_SELECTOR, ".badge").text
    assert first.find_elements(By.CSS_SELECTOR, "ul.shared li"), "the first match shows no shared skill"
    _screenshot(browser, "match-zh")
    assert REQUEST_ZH[:20] not in caplog.text  # logs carry method, path and status, never the text

    match_id = first.get_attribute("id")
    assert match_id == "match-1"
    browser.find_element(By.ID, "outcome-1-accepted").click()
    browser.find_element(By.ID, "record-1").click()
    WebDriverWait(browser, 60).until(ec.presence_of_element_located((By.ID, "saved-1")))
    assert "已接受" in browser.find_element(By.ID, "notice").text
    _screenshot(browser, "feedback-zh")

    records = feedback_store.records()
    assert [(r.entry.rank, r.entry.outcome, r.entry.kind) for r in records] == [(1, "accepted", "request")]
    assert records[0].entry.query_sha256 and records[0].entry.query_id is None
    assert summarise_feedback(records)["by_rank"]["1"]["accepted"] == 1

    result = runner.invoke(main, ["evaluate", "--feedback", "--feedback-db", str(feedback_store.path)])
    assert result.exit_code == 0, result.output
    assert "1 entries on 1 (query, match) pairs" in result.output
    # the by-rank table: rank 1 has 1 pair, 1 accepted, 0 declined, 0 pending, acceptance rate 1.000
    assert re.search(r"^1\s+1\s+1\s+0\s+0\s+1\.000\s*$", result.output, re.MULTILINE), result.output
    assert re.search(r"^accepted\s+1\s+1\s*$", result.output, re.MULTILINE), result.output


def test_english_ui_and_the_other_pages(browser, live_server):
    browser.get(live_server + "/?lang=en")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    _submit(browser, live_server, REQUEST_ZH)  # the cookie keeps the UI in English
    assert browser.find_element(By.ID, "matches-h").text.startswith("Matches")
    assert browser.find_elements(By.CSS_SELECTOR, "article.match")
    _screenshot(browser, "match-en")

    browser.get(live_server + "/documents?kind=volunteer&concept=legal.data_protection")
    assert "page 1 of" in browser.find_element(By.ID, "documents-count").text
    link = browser.find_element(By.CSS_SELECTOR, "ul.documents li a")
    _screenshot(browser, "documents-en")
    link.click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "see-matches")))
    assert browser.find_elements(By.CSS_SELECTOR, "#highlighted mark.tag")

    browser.get(live_server + "/status?lang=zh")
    assert browser.find_element(By.ID, "current-index").text
    assert browser.find_elements(By.CSS_SELECTOR, "#versions tr.current")
    _screenshot(browser, "status-zh")

    browser.get(live_server + "/documents?page=999")  # bad input: the same page, a message, no 500
    assert browser.find_element(By.ID, "error").text
