"""The web console in a real browser (headless Chromium through chromedriver, Debian's packages), with a real
redis-server, ``celery beat -S redbeat.Scheduler`` and a worker behind it.

Loads every page, filters, watches a run appear, signs in with the admin token, triggers and pauses (and
sees beat obey), is refused without the token (no action forms, a wrong token, and forged trigger and pause
POSTs that beat does not obey), and checks that a name made of markup renders as text.
A screenshot of each page goes to ``$REDBEAT_CONSOLE_SCREENSHOTS`` (default: the test's tmp dir);
``REDBEAT_CONSOLE_SCREENSHOTS=docs/console`` refreshes the ones the README shows.

A missing chromium or chromedriver fails the test (scripts/test.sh installs both), never skips it.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from support.redis_proc import free_port, wait_until

from reconciler.console.app import make_app
from reconciler.console.readers import ManifestFiles
from reconciler.console.server import ConsoleServer
from reconciler.operating import audit
from reconciler.sync.reconcile import connect, load, reconcile

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

TOKEN = "browser-test-admin-token-0123456789"
XSS = '"><img src=x onerror=alert(1)>'
SCRIPT = "<script>alert('x')</script>"
MANIFEST = f"""\
defaults:
  task: e2e.record
schedules:
  - name: pulse
    every: 1s
    args: [pulse]
  - name: nightly-report
    cron: "30 2 * * mon-fri"
    timezone: Europe/Berlin
    args: [nightly]
  - name: '{XSS}'
    every: 1h
    args: [xss]
  - name: "{SCRIPT}"
    cron: "0 0 * * *"
    args: [script]
    protected: true
""" + "".join(f"  - name: batch-{n:02d}\n    cron: \"0 0 * * *\"\n    args: [batch]\n" for n in range(12))


def _chrome():  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not browser or not driver:
        pytest.fail("the browser tests need Debian's chromium and chromium-driver on PATH "
                    "(scripts/test.sh installs them: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    driver = _chrome()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("REDBEAT_CONSOLE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def console(fresh_redis, tmp_path, celery_rig, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HOSTNAME", "ops-host")  # the actor's host in the screenshots: not this machine's name
    folder = tmp_path / "schedules"
    folder.mkdir()
    (folder / "jobs.yaml").write_text(MANIFEST, encoding="utf-8")
    target = connect(fresh_redis.url, "redbeat:", "team-a")
    outcome = reconcile(load([folder]), target)
    # what redbeat-apply records after writing (reconcile() itself does not audit)
    audit.record(target.client, target.keys,
                 audit.apply_record("ci@ops-host", "team-a", "3f2c1a9", outcome.plan.counts()), time.time())
    celery_rig.worker()
    beat = celery_rig.beat()
    celery_rig.wait_for(beat, "this instance leads", timeout=30)
    manifests = ManifestFiles([folder], lambda paths: load(paths))
    servers = []
    for token in (TOKEN, None):
        app = make_app(target, manifests=manifests, token=token, max_age=0.5, max_stale=0, loopback_only=True)
        servers.append(ConsoleServer(app, "127.0.0.1", free_port()).start())
    try:
        yield servers[0].url.rstrip("/"), servers[1].url.rstrip("/"), celery_rig
    finally:
        for server in servers:
            server.close()


def _labels(rig, label: str) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for run in rig.runs() if run["label"] == label)


def _text(driver) -> str:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "body").text)


def _wait_text(driver, text: str, timeout: float = 15) -> str:  # type: ignore[no-untyped-def]
    """Wait until the page (the one a click leads to) shows ``text``; returns the page's text."""
    from selenium.common.exceptions import StaleElementReferenceException

    def shown() -> str | None:
        try:
            body = _text(driver)
        except StaleElementReferenceException:  # the page was replaced while we read it
            return None
        return body if text in body else None

    return wait_until(shown, timeout=timeout, message=f"{text!r} on {driver.current_url}")


def test_every_page_loads_and_filters(browser, console, shots) -> None:
    from selenium.webdriver.common.by import By

    url, _, _ = console
    for path, heading in (("/schedules", "Schedules"), ("/timeline?window=24h", "Timeline"),
                          ("/entry?name=nightly-report", "nightly-report"), ("/activity", "Activity"),
                          ("/health", "Health")):
        browser.get(url + path)
        assert browser.find_element(By.TAG_NAME, "h1").text == heading
    browser.get(url + "/schedules")
    assert "At 02:30, Monday through Friday, Europe/Berlin" in _text(browser)
    search = browser.find_element(By.NAME, "q")
    search.send_keys("puls")
    search.submit()
    wait_until(lambda: "q=puls" in browser.current_url, timeout=10, message="the filter in the URL")
    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "td.name a")]
    assert names == ["pulse"]
    assert browser.find_elements(By.CSS_SELECTOR, "svg") == []  # the schedules page draws no picture
    browser.get(url + "/health")
    assert "owner team-a at revision 3f2c1a9" in _text(browser) and "Lock holder" in _text(browser)
    browser.get(url + "/timeline?window=1h")
    assert browser.find_elements(By.CSS_SELECTOR, "svg.timeline rect.run, svg.timeline rect.dense")


def _post(url: str, action: str, **form: str) -> None:
    """An action as a script sends it (bearer token): the screenshots' set-up, recorded in the audit stream."""
    import json
    import urllib.parse
    import urllib.request

    request = urllib.request.Request(f"{url}/actions/{action}", data=urllib.parse.urlencode(form).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.load(response)["ok"] is True


def test_screenshots_show_a_living_system(browser, console, shots, fresh_redis) -> None:
    """Runs with their lag, a triggered run, a paused entry, a drifted one and one not in git, then a
    screenshot of the schedules, timeline, entry and health pages."""
    import json

    from selenium.webdriver.common.by import By

    url, _, rig = console
    client = fresh_redis.client()
    _post(url, "trigger", name="nightly-report", note="re-run after the fix")
    _post(url, "pause", name="batch-05", until="6h", note="warehouse maintenance")
    definition = json.loads(client.hget("redbeat:batch-03", "definition"))
    definition["args"] = ["edited-in-redis"]
    client.hset("redbeat:batch-03", "definition", json.dumps(definition))  # drifted: Redis differs from git
    extra = connect(fresh_redis.url, "redbeat:", "team-b")
    reconcile(load_text("schedules:\n  - name: cleanup-tmp\n    task: e2e.record\n    cron: '15 */6 * * *'\n"
                        "    timezone: America/New_York\n    args: [cleanup]\n"), extra)  # not in these manifests
    wait_until(lambda: _labels(rig, "nightly") == 1 and _labels(rig, "pulse") >= 3, timeout=30,
               message="the triggered run and a few pulses in the worker's log")
    time.sleep(1)  # the snapshot (max_age 0.5 s) catches up with the runs
    browser.set_window_size(1400, 1500)  # every row of the schedules page in one picture
    browser.get(url + "/schedules")
    text = _text(browser)
    assert "drifted" in text and "not in git" in text and "paused by api via console@ops-host" in text
    browser.save_screenshot(str(shots / "schedules.png"))
    browser.set_window_size(1400, 1000)
    for path, shot in (("/timeline?window=24h", "timeline"), ("/entry?name=nightly-report", "entry"),
                       ("/health", "health")):
        browser.get(url + path)
        assert browser.find_elements(By.TAG_NAME, "h1")
        browser.save_screenshot(str(shots / f"{shot}.png"))


def load_text(text: str):  # type: ignore[no-untyped-def]
    """Desired entries from manifest text (a temporary file: the loader reads files)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "more.yaml").write_text(text, encoding="utf-8")
        return load([Path(folder)])


def test_a_run_appears_after_it_happens(browser, console) -> None:
    from selenium.webdriver.common.by import By

    url, _, rig = console
    wait_until(lambda: _labels(rig, "pulse") >= 2, timeout=30, message="two runs of pulse in the worker's log")

    def sent_rows() -> int:
        browser.get(url + "/entry?name=pulse")
        return len(browser.find_elements(By.CSS_SELECTOR, "tr.run-sent"))

    wait_until(lambda: sent_rows() >= 2, timeout=20, message="sent runs on the entry page")


def test_markup_in_names_renders_as_text(browser, console) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    url, _, _ = console
    for path in ("/schedules", "/timeline", "/entry?name=" + "%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E"):
        browser.get(url + path)
        time.sleep(0.3)
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text  # noqa: B018  (reading it raises when there is none)
        assert browser.find_elements(By.CSS_SELECTOR, "img") == []
        assert browser.find_elements(By.CSS_SELECTOR, "script") == []
    browser.get(url + "/schedules")
    names = {a.text for a in browser.find_elements(By.CSS_SELECTOR, "td.name a")}
    assert {XSS, SCRIPT} <= names


def test_actions_are_refused_without_the_token(browser, console) -> None:
    from selenium.webdriver.common.by import By

    url, read_only, _ = console
    browser.get(read_only + "/entry?name=pulse")
    assert browser.find_elements(By.CSS_SELECTOR, "form[action*='/actions/']") == []
    assert "read-only" in _text(browser)
    browser.get(url + "/entry?name=pulse")
    assert browser.find_elements(By.CSS_SELECTOR, "form[action*='/actions/']") == []  # not signed in
    browser.get(url + "/login")
    browser.find_element(By.NAME, "token").send_keys("not-the-admin-token-at-all")
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    _wait_text(browser, "That is not the admin token.")


def _forge(driver, action: str, **form: str) -> str:  # type: ignore[no-untyped-def]
    """POST an action form from the page the browser shows, as a page without the token would; the answer's text.

    The pages run no script (their CSP forbids it): WebDriver's own script builds and submits the form."""
    driver.execute_script(
        "const form = document.createElement('form'); form.method = 'post'; form.action = arguments[0];"
        "for (const [name, value] of Object.entries(arguments[1])) {"
        "  const input = document.createElement('input'); input.type = 'hidden'; input.name = name;"
        "  input.value = value; form.appendChild(input); }"
        "document.body.appendChild(form); form.submit();", f"/actions/{action}", form)
    wait_until(lambda: driver.current_url.endswith(f"/actions/{action}"), timeout=15,
               message="the answer to the forged POST")
    return _wait_text(driver, "403")


def test_trigger_and_pause_are_refused_without_the_token_and_beat_does_not_obey(browser, console,
                                                                                 fresh_redis) -> None:
    url, read_only, rig = console
    for base, words in ((read_only, "actions are off"), (url, "sign in with the admin token first")):
        for action, name in (("trigger", "nightly-report"), ("pause", "pulse")):
            browser.get(base + "/entry?name=" + name)
            text = _forge(browser, action, name=name, until="1h", note="forged")
            assert words in text, text
    client = fresh_redis.client()
    assert not client.hexists("redbeat:nightly-report", "trigger")
    assert not client.hexists("redbeat:pulse", "pause")
    assert [r["action"] for r in audit.read(client, connect(fresh_redis.url, "redbeat:", "x").keys)] == ["apply"]
    refused_at = time.time()
    wait_until(lambda: any(slot > refused_at for slot in _claimed_slots(fresh_redis.url, "pulse")), timeout=15,
               message="beat claims pulse's slots after the refused pause")
    assert _labels(rig, "nightly") == 0  # the refused trigger sent nothing


def _claimed_slots(redis_url: str, entry: str) -> list[float]:
    """The slots beat claimed for ``entry``, from its run history (beat's own record, not the worker's)."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        records = [fields for _, fields in client.xrange("redbeat::history")]
    finally:
        client.close()
    return [float(f["slot"]) for f in records if f.get("entry") == entry and f.get("event") == "claimed"]


def test_trigger_and_pause_with_the_token_and_beat_obeys(browser, console, shots, fresh_redis) -> None:
    from selenium.webdriver.common.by import By

    url, _, rig = console
    browser.get(url + "/login")
    browser.save_screenshot(str(shots / "login.png"))
    browser.find_element(By.NAME, "name").send_keys("alice")
    browser.find_element(By.NAME, "token").send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    _wait_text(browser, "signed in as alice")

    browser.get(url + "/entry?name=nightly-report")
    browser.find_element(By.CSS_SELECTOR, "button[value=trigger]").click()
    _wait_text(browser, "Run requested")
    wait_until(lambda: _labels(rig, "nightly") == 1, timeout=30, message="the triggered run in the worker's log")

    browser.get(url + "/entry?name=pulse")
    browser.find_element(By.NAME, "until").send_keys("10m")
    browser.find_element(By.CSS_SELECTOR, "form[action$='/actions/pause'] input[name=note]").send_keys("incident 7")
    browser.find_element(By.CSS_SELECTOR, "button[value=pause]").click()
    _wait_text(browser, "paused by alice via console@")
    paused_at = time.time()
    time.sleep(4)  # pulse is due every second: four slots a running beat would have claimed
    # Beat's own run history, not the worker's log: a run claimed just before the pause may reach a loaded
    # worker seconds later, but no slot due after the pause may be claimed at all.
    after = [slot for slot in _claimed_slots(fresh_redis.url, "pulse") if slot > paused_at]
    assert after == [], f"beat claimed paused slots {after} (paused at {paused_at})"
    assert _claimed_slots(fresh_redis.url, "pulse"), "the history holds pulse's runs before the pause"
    held = _labels(rig, "pulse")
    browser.save_screenshot(str(shots / "entry-paused.png"))
    browser.find_element(By.CSS_SELECTOR, "button[value=resume]").click()
    _wait_text(browser, "Resumed.")
    wait_until(lambda: _labels(rig, "pulse") > held, timeout=20, message="pulse runs again after resume")

    browser.get(url + "/activity")
    text = _wait_text(browser, "incident 7")
    assert "trigger" in text and "pause" in text and "resume" in text and "incident 7" in text
    browser.save_screenshot(str(shots / "activity.png"))
