"""The web console in a real browser: headless Chromium (Selenium) over real HTTP against a real
``flywheel serve`` with its watch daemon, on a real git + DVC repository.

The tests share one repository and server and run in order: Make active model pins v1, Create
dataset declares train-2, Run flywheel trains v2 on it, Enter on a button pins v2, the iteration
page's switch, Try it, hostile text, phone width; sign-in starts its own server.
Full-page screenshots of every page go to ``test-artifacts/console/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_harness import SPEC, ApiServer, commits, train_rows
from api_harness import test_rows as bundled_test_rows
from browser import (
    assert_clean,
    browser,  # noqa: F401 (the fixture)
    expect_status,
    phone,
    screenshot,
    wait_for_page,
    wait_text,
)
from conftest import commit, git, run_cli, write_csv
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(2)</script>"
HOSTILE_SPEC = f"""\
# Labels and descriptions a page must show as text, never run.
apiVersion: flywheel-reconciler/v1
name: hostile
description: "{IMG} {SCRIPT}"
task:
  mode: MULTI_CLASS
  labels: ["{IMG}", "{SCRIPT}", mail]
datasets:
  - name: train-1
    type: TRAIN
    path: data/hostile/train-1.csv
    description: "{IMG} and {SCRIPT}"
  - name: test
    type: TEST
    path: data/hostile/test.csv
recipe:
  algorithm: complement-nb
promotion:
  minF1: 0.0
  minImprovement: 0.0
"""
SECTIONS_SPEC = SPEC + "trigger: request\n"
RENAMED = {"database": IMG, "games": SCRIPT, "mail": "mail"}
#: Iterations take 10-20 s on two cores; a loaded CI machine gets more.
ITERATION_TIMEOUT = 240.0


def _hostile(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(RENAMED[label], text) for label, text in rows if label in RENAMED]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Flywheels ``sections`` (no policy: v1 trained, none active; ``trigger: request``, so a
    new dataset waits for Run flywheel) and ``hostile``, each with one completed iteration."""
    root = tmp_path_factory.mktemp("console") / "repo"
    run_cli(root.parent, "init", str(root))
    write_csv(root / "data/sections/train-1.csv", train_rows(15))
    write_csv(root / "data/sections/test.csv", bundled_test_rows(8))
    (root / "specs/sections.yaml").write_text(SECTIONS_SPEC, "utf-8")
    write_csv(root / "data/hostile/train-1.csv", _hostile(train_rows(15)))
    write_csv(root / "data/hostile/test.csv", _hostile(bundled_test_rows(8)))
    (root / "specs/hostile.yaml").write_text(HOSTILE_SPEC, "utf-8")
    commit(root, "two flywheels")
    run_cli(root, "reconcile")
    run_cli(root, "iterate", "sections")
    if git(root, "status", "--porcelain"):
        commit(root, "the first iterations' records")
    return root


@pytest.fixture(scope="module")
def server(repo: Path) -> Iterator[ApiServer]:
    with ApiServer(repo) as running:
        yield running


@pytest.fixture
def driver(browser: WebDriver, server: ApiServer) -> Iterator[WebDriver]:  # noqa: F811
    """The module's browser at desktop size; after each test, no alert and no console error."""
    browser.set_window_size(1280, 800)
    browser.get_log("browser")  # drop what earlier tests left
    yield browser
    assert_clean(browser)


def go(driver: WebDriver, server: ApiServer, path: str) -> None:
    driver.get(server.url + path)
    wait_for_page(driver)


def shots(driver: WebDriver, name: str) -> None:
    """The page at 1280x800 and at phone width."""
    screenshot(driver, f"{name}-desktop")
    with phone(driver):
        screenshot(driver, f"{name}-phone")


def spec_text(repo: Path, name: str = "sections") -> str:
    return (repo / "specs" / f"{name}.yaml").read_text("utf-8")


def last_commit_paths(repo: Path) -> list[str]:
    return git(repo, "log", "-1", "--name-only", "--format=").splitlines()


def iteration_ids(driver: WebDriver) -> list[str]:
    return [row.get_attribute("data-iteration") or "" for row in
            driver.find_elements(By.CSS_SELECTOR, "#live-iterations tr[data-iteration]")]


def mark_page(driver: WebDriver) -> None:
    """A flag in this page's JavaScript world: gone if the page is reloaded."""
    driver.execute_script("window.__notReloaded = true;")


def not_reloaded(driver: WebDriver) -> bool:
    return bool(driver.execute_script("return window.__notReloaded === true;"))


# the tests, in the order they build on each other ---------------------------------------------


def test_list_then_flywheel_then_make_active_model_commits_the_pin(
        driver: WebDriver, server: ApiServer, repo: Path) -> None:
    go(driver, server, "/")
    shots(driver, "01-flywheels")
    before = commits(repo)
    assert "activeModel" not in spec_text(repo)
    driver.find_element(By.LINK_TEXT, "sections").click()
    wait_text(driver, "h1", "sections")
    assert driver.current_url == f"{server.url}/flywheels/sections"
    assert driver.find_element(By.CSS_SELECTOR, "[data-testid=active-model]").text == "none"
    driver.find_element(By.CSS_SELECTOR, "[data-testid=make-active-v1]").click()
    wait_text(driver, "[data-testid=active-model]", "v1")
    notice = wait_text(driver, ".notice", "Version v1 is the active model now")
    assert notice.is_displayed()
    assert len(commits(repo)) == len(before) + 1
    assert "specs/sections.yaml" in last_commit_paths(repo)
    assert re.search(r"^activeModel: v1\b", spec_text(repo), re.MULTILINE)
    assert not driver.find_elements(By.CSS_SELECTOR, "[data-testid=make-active-v1]")
    shots(driver, "02-flywheel")


def _data_files(repo: Path) -> list[str]:
    return sorted(p.relative_to(repo).as_posix() for p in (repo / "data").rglob("*")
                  if p.is_file() and "incoming" not in p.parts)


def _upload(driver: WebDriver, name: str, csv: Path, description: str = "") -> None:
    form = driver.find_element(By.CSS_SELECTOR, "form[enctype='multipart/form-data']")
    field = form.find_element(By.NAME, "dataset_name")
    field.clear()
    field.send_keys(name)
    form.find_element(By.CSS_SELECTOR, "input[name=dataset_type][value=TRAIN]").click()
    described = form.find_element(By.NAME, "description")
    described.clear()
    described.send_keys(description)
    form.find_element(By.NAME, "file").send_keys(str(csv))
    form.find_element(By.CSS_SELECTOR, "[data-testid=create-dataset]").click()
    wait_for_page(driver)


def test_create_dataset_lists_bad_rows_then_declares_a_good_file(
        driver: WebDriver, server: ApiServer, repo: Path, tmp_path: Path) -> None:
    go(driver, server, "/flywheels/sections/datasets")
    before, files, spec = commits(repo), _data_files(repo), spec_text(repo)
    rows = train_rows(3, skip=20)
    bad = write_csv(tmp_path / "bad.csv", [*rows[:2], ("jazz", "a label nobody declared"),
                                            *rows[2:5], ("mail", "")])
    _upload(driver, "bad-rows", bad)
    errors = wait_text(driver, "#dataset-errors", "Nothing was declared", timeout=30)
    items = [li.text for li in errors.find_elements(By.TAG_NAME, "li")]
    expect_status(driver, 400)
    assert any(item.startswith("bad.csv:3:") and "jazz" in item for item in items), items
    assert any(item.startswith("bad.csv:7:") and "empty" in item for item in items), items
    assert commits(repo) == before
    assert _data_files(repo) == files
    assert spec_text(repo) == spec
    # what was typed stays in the form
    assert driver.find_element(By.NAME, "dataset_name").get_attribute("value") == "bad-rows"
    shots(driver, "07-datasets-error")

    good = write_csv(tmp_path / "train-2.csv", train_rows(5, skip=20))
    _upload(driver, "train-2", good, description=f"second batch {IMG}")
    wait_text(driver, ".notice", "Dataset train-2 was declared (20 documents", timeout=30)
    table = wait_text(driver, "#h-train ~ .scroll table.datasets", "train-2")
    row = next(r for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")
               if r.find_element(By.TAG_NAME, "th").text == "train-2")
    assert row.find_element(By.CSS_SELECTOR, "td.num").text == "20"
    assert f"second batch {IMG}" in row.text
    _no_injected_markup(driver)
    assert len(commits(repo)) == len(before) + 1
    assert "specs/sections.yaml" in last_commit_paths(repo)
    assert "train-2" in spec_text(repo)
    shots(driver, "08-datasets")


def test_run_flywheel_shows_the_iteration_live_until_completed(
        driver: WebDriver, server: ApiServer, repo: Path) -> None:
    go(driver, server, "/flywheels/sections")
    assert iteration_ids(driver) and len(iteration_ids(driver)) == 1
    driver.find_element(By.CSS_SELECTOR, "[data-testid=run-flywheel]").click()
    wait_text(driver, ".notice", "was asked for")
    mark_page(driver)
    # Best effort: right after the request the stage line says so (unless it is already done).
    stages = driver.find_elements(By.CSS_SELECTOR, "[data-testid=live-stage]")
    saw_stage = bool(stages and stages[0].is_displayed())
    seen_states: set[str] = set()

    def completed() -> bool:
        ids = iteration_ids(driver)
        if len(ids) < 2:
            return False
        top = driver.find_element(By.CSS_SELECTOR, "#live-iterations tr[data-iteration]")
        status = top.find_element(By.CSS_SELECTOR, ".pill").text
        seen_states.add(status)
        return status == "COMPLETED"

    # The live script swaps the table in while this reads it: a row found just before a swap is
    # stale, so such a read is simply tried again at the next poll.
    WebDriverWait(driver, ITERATION_TIMEOUT, poll_frequency=0.3,
                  ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: completed())
    assert not_reloaded(driver), "the page was reloaded: the live script should swap parts in"
    assert saw_stage or seen_states - {"COMPLETED"}, "never saw the iteration in progress"
    # v2 trained; no policy and a pin: v1 stays active, v2 may be made active.
    wait_text(driver, "#live-iterations", "v2")
    assert driver.find_element(By.CSS_SELECTOR, "[data-testid=active-model]").text.startswith(
        "v1")
    assert driver.find_elements(By.CSS_SELECTOR, "[data-testid=make-active-v2]")
    WebDriverWait(driver, 30).until(
        lambda d: not d.find_elements(By.CSS_SELECTOR, "[data-testid=live-stage]"))
    assert not_reloaded(driver)
    shots(driver, "03-flywheel-after-run")


def test_keyboard_skip_link_first_and_enter_on_make_active_model(
        driver: WebDriver, server: ApiServer, repo: Path) -> None:
    go(driver, server, "/")
    focused = []
    for _ in range(20):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        active = driver.switch_to.active_element
        focused.append((active.tag_name, active.text, active.get_attribute("href") or ""))
        if (active.get_attribute("href") or "").endswith("/flywheels/sections"):
            break
    assert focused[0][1] == "Skip to content", focused
    assert focused[-1][2].endswith("/flywheels/sections"), focused
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    wait_text(driver, "h1", "sections")
    button = driver.find_element(By.CSS_SELECTOR, "[data-testid=make-active-v2]")
    driver.execute_script("arguments[0].focus();", button)
    assert driver.switch_to.active_element == button
    before = len(commits(repo))
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    wait_text(driver, "[data-testid=active-model]", "v2")
    wait_text(driver, ".notice", "Version v2 is the active model now")
    assert len(commits(repo)) == before + 1
    assert re.search(r"^activeModel: v2\b", spec_text(repo), re.MULTILINE)


def _visible_label_rows(driver: WebDriver) -> list[str]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#label-table tbody tr")
    return [r.find_element(By.TAG_NAME, "th").text for r in rows if r.is_displayed()]


def test_iteration_page_differences_only_hides_equal_rows(
        driver: WebDriver, server: ApiServer, repo: Path) -> None:
    go(driver, server, "/flywheels/sections")
    ids = iteration_ids(driver)
    assert len(ids) == 2
    newest, first = ids
    # v2 (more data) against v1 on the same test data: equal rows carry data-same.
    go(driver, server, f"/flywheels/sections/iterations/{newest}")
    wait_text(driver, "h1", newest)
    labels = ["database", "games", "mail", "sound"]
    assert sorted(_visible_label_rows(driver)) == labels
    rows = driver.find_elements(By.CSS_SELECTOR, "#label-table tbody tr")
    differing = [r.find_element(By.TAG_NAME, "th").text for r in rows
                 if r.get_attribute("data-same") is None]
    same = [r for r in rows if r.get_attribute("data-same") is not None]
    # With these files v2 differs from v1 on some labels (database, mail, sound) and not on
    # another (games): both kinds are here for the switch to tell apart.
    assert same and differing, (len(same), differing)
    shots(driver, "04-iteration")
    box = driver.find_element(By.ID, "diff-only")
    box.click()
    assert box.is_selected()
    WebDriverWait(driver, 5).until(lambda d: _visible_label_rows(d) == differing)
    assert all(not row.is_displayed() for row in same)
    box.click()
    WebDriverWait(driver, 5).until(lambda d: len(_visible_label_rows(d)) == 4)
    # The first iteration had no champion: every row differs, the switch hides none.
    go(driver, server, f"/flywheels/sections/iterations/{first}")
    assert not driver.find_elements(By.CSS_SELECTOR, "#label-table tbody tr[data-same]")
    assert len(_visible_label_rows(driver)) == 4
    driver.find_element(By.ID, "diff-only").click()
    assert len(_visible_label_rows(driver)) == 4


def test_try_it_classifies_a_text(driver: WebDriver, server: ApiServer) -> None:
    go(driver, server, "/flywheels/sections/try")
    driver.find_element(By.NAME, "text").send_keys(
        "a mail transfer agent: delivers e-mail messages over SMTP, with IMAP mailboxes")
    driver.find_element(By.CSS_SELECTOR, "[data-testid=classify]").click()
    table = wait_text(driver, "[data-testid=scores]", "predicted")
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 4
    chosen = table.find_elements(By.CSS_SELECTOR, "tbody tr.chosen th")
    assert len(chosen) == 1 and chosen[0].text.split()[0] in {"database", "games", "mail",
                                                               "sound"}
    wait_text(driver, "h3", "v2 says")
    shots(driver, "05-try-it")


def _no_injected_markup(driver: WebDriver) -> None:
    assert not driver.find_elements(By.CSS_SELECTOR, 'img[src="x"]'), "an injected <img> exists"
    scripts = driver.find_elements(By.TAG_NAME, "script")
    assert all("alert" not in (s.get_attribute("innerHTML") or "") for s in scripts)
    assert_clean(driver)


def test_hostile_text_is_shown_literally_and_never_runs(
        driver: WebDriver, server: ApiServer) -> None:
    go(driver, server, "/")
    wait_text(driver, "table.flywheels", "hostile")
    go(driver, server, "/flywheels/hostile")
    _no_injected_markup(driver)
    (first,) = iteration_ids(driver)
    go(driver, server, f"/flywheels/hostile/iterations/{first}")
    labels = driver.find_element(By.ID, "label-table").text
    assert IMG in labels and SCRIPT in labels
    confusion = driver.find_element(By.CSS_SELECTOR, "table.confusion").text
    assert IMG in confusion and SCRIPT in confusion
    _no_injected_markup(driver)
    shots(driver, "06-hostile-iteration")
    go(driver, server, "/flywheels/hostile/datasets")
    wait_text(driver, "table.datasets", f"{IMG} and {SCRIPT}")
    _no_injected_markup(driver)
    go(driver, server, "/flywheels/hostile/try")
    driver.find_element(By.NAME, "text").send_keys("a game of chess against the computer")
    driver.find_element(By.CSS_SELECTOR, "[data-testid=classify]").click()
    table = wait_text(driver, "[data-testid=scores]", "predicted")
    assert IMG in table.text and SCRIPT in table.text
    _no_injected_markup(driver)


#: The outermost elements reaching past the window's right edge (not inside a .scroll box).
TOO_WIDE = """
const out = [];
const edge = window.innerWidth + 1;
const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
  + (typeof el.className === "string" && el.className ? "." + el.className : "");
for (const el of document.querySelectorAll("body *")) {
  const box = el.getBoundingClientRect();
  if (box.right <= edge) continue;
  const style = getComputedStyle(el);
  const parent = el.parentElement;
  if (style.position === "absolute" || style.position === "fixed") {
    out.push(name(el) + " (position: " + style.position + ") right=" + Math.round(box.right)
             + " in " + (parent ? name(parent) : "?"));
  } else if (parent && parent.getBoundingClientRect().right <= edge
             && getComputedStyle(parent).overflowX === "visible") {
    out.push(name(el) + " right=" + Math.round(box.right) + " in " + name(parent));
  }
}
return out.slice(0, 8);
"""
PAGES = ("/", "/flywheels/sections", "/flywheels/sections/datasets", "/flywheels/sections/try")


def test_phone_width_has_no_horizontal_scroll_of_the_page(
        driver: WebDriver, server: ApiServer) -> None:
    go(driver, server, "/flywheels/sections")
    newest = iteration_ids(driver)[0]
    paths = (*PAGES, f"/flywheels/sections/iterations/{newest}", "/login")
    problems: dict[str, list[str]] = {}

    def check(width: str) -> None:
        for path in paths:
            go(driver, server, path)
            wide, inner = driver.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth];")
            if wide > inner + 1:
                problems[f"{width} {path} ({wide} > {inner})"] = driver.execute_script(TOO_WIDE)

    check("1280")  # the desktop width too, while at it
    with phone(driver):
        assert driver.execute_script("return window.innerWidth;") <= 400
        check("phone")
        go(driver, server, "/")
        table = driver.find_element(By.CSS_SELECTOR, "table.flywheels")
        wrapper = table.find_element(By.XPATH, "..")
        assert "scroll" in (wrapper.get_attribute("class") or "").split()
        assert driver.execute_script(
            "return arguments[0].scrollWidth > arguments[0].clientWidth;", wrapper), \
            "the table is expected to scroll inside its wrapper at phone width"
    # (this found hidden caption text escaping the tables' scroll boxes: .scroll is positioned
    # now, so that text stays inside)
    assert not problems, f"pages that scroll sideways at phone width: {problems}"


CREDENTIALS = """\
[default]
aws_access_key_id = AKIACONSOLE
aws_secret_access_key = right-secret
"""


def test_sign_in_first_when_the_server_has_credentials(
        driver: WebDriver, repo: Path, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(CREDENTIALS, "utf-8")
    with ApiServer(repo, watch=False, extra=("--credentials-file", str(credentials))) as guarded:
        go(driver, guarded, "/flywheels/sections")
        assert driver.current_url.startswith(f"{guarded.url}/login")
        wait_text(driver, "h1", "Sign in")
        shots(driver, "09-login")
        driver.find_element(By.NAME, "access_key_id").send_keys("AKIACONSOLE")
        driver.find_element(By.NAME, "secret_access_key").send_keys("wrong-secret")
        driver.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
        wait_text(driver, ".error", "do not match")
        expect_status(driver, 401)
        shots(driver, "10-login-error")
        driver.find_element(By.NAME, "access_key_id").clear()
        driver.find_element(By.NAME, "access_key_id").send_keys("AKIACONSOLE")
        driver.find_element(By.NAME, "secret_access_key").send_keys("right-secret")
        driver.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
        wait_text(driver, "h1", "sections")  # back to the page asked for
        go(driver, guarded, "/")
        wait_text(driver, "table.flywheels", "sections")
        wait_text(driver, "header .who", "AKIACONSOLE")
