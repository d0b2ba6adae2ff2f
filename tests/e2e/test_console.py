"""The web console (`taskfleet console`) in a real browser: Playwright driving Debian's Chromium, headless
(`make browser` installs it with apt; Playwright never downloads one here), against the local stack with
real runner processes. A screenshot of the job page is kept in build/test-artifacts/; with
TASKFLEET_SCREENSHOTS=<dir> (`make screenshots`), the README's pictures are written there too."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from playwright.sync_api import Browser, Page, expect, sync_playwright
from taskfleet.console import serve

from tests.e2e.workflows import Hostile, Steps
from tests.support.observe import open_gate
from tests.support.waits import job_done, wait_until

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test-artifacts"
TIMEOUT_MS = 20_000


def chromium() -> str:
    path = os.environ.get("TASKFLEET_CHROMIUM") or shutil.which("chromium")
    if not path:
        raise RuntimeError("no chromium: run `make browser` (apt-get install chromium fonts-dejavu-core)")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield launched
        launched.close()


@pytest.fixture
def console(client: Any) -> Iterator[str]:
    """The URL the console prints: its address with the session token."""
    server = serve(client).start()
    yield server.url
    server.shutdown()
    server.server_close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
    yield page
    context.close()
    assert not errors, errors


def keep(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    if target := os.environ.get("TASKFLEET_SCREENSHOTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / name), full_page=True)


@pytest.fixture
def steps_job(client, cluster, runners):
    """A running job of 3 gated steps (their progress advances as the test opens the gates) and 40 leaves."""
    # two runners: the gated steps hold them while the test looks
    runners.start(cluster, "Steps", "GatedStep", "Noop")
    runners.start(cluster, "Steps", "GatedStep", "Noop")
    job = client.jobs().submit("console-steps", Steps("s", 3, leaves=40), cluster=cluster)
    wait_until(lambda: client.jobs().find(job).state == "RUNNING", what="the job to run")
    return job


def test_the_console_lists_a_running_job_and_its_progress_advances(steps_job, console, page, tmp_path):
    job = steps_job
    page.goto(console)
    row = page.locator(f'tr[data-job-id="{job.id}"]')
    expect(row).to_contain_text("console-steps")
    expect(row.locator(".state")).to_have_text("RUNNING")
    row.click()
    expect(page.locator("h1")).to_contain_text("console-steps")
    bar = page.locator('.bar[data-label="steps"] .count')
    expect(bar).to_have_text("0 / 3")
    open_gate(tmp_path, "s.0")
    expect(bar).to_have_text("1 / 3")
    open_gate(tmp_path, "s.1")
    open_gate(tmp_path, "s.2")
    expect(bar).to_have_text("3 / 3")
    expect(page.locator("h1 .state")).to_have_text("COMPLETED")
    # the diagram renders: an image of the job's graph, its fan-out of 40 leaves folded into one node
    diagram = page.locator("#diagram")
    expect(diagram).to_have_js_property("complete", True)
    assert diagram.evaluate("img => img.naturalWidth") > 0
    source = origin(console) + (diagram.get_attribute("src") or "")
    svg = page.request.get(source).text()
    assert svg.count('class="task"') >= 5 and 'data-count="40"' in svg
    keep(page, "console-job.png")
    if target := os.environ.get("TASKFLEET_SCREENSHOTS"):
        page.locator(".diagram").screenshot(path=str(Path(target) / "diagram.png"))
    page.goto(console)
    expect(page.locator(f'tr[data-job-id="{job.id}"] .state')).to_have_text("COMPLETED")
    keep(page, "console-jobs.png")


HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">&amp; "quoted"'


@pytest.fixture
def failed_hostile_job(client, cluster, runners, tmp_path):
    """A FAILED job whose name and task display are markup; it fails while `broken-h` exists."""
    (tmp_path / "broken-h").write_text("yes")
    runners.start(cluster, "Hostile")
    job = client.jobs().submit(HOSTILE, Hostile("h", HOSTILE), cluster=cluster)
    assert wait_until(job_done(client, job), what="the failing job").state == "FAILED"
    return job


def test_a_failed_job_is_retried_from_its_button_and_markup_in_names_is_shown_as_text(
    client, failed_hostile_job, console, page, tmp_path
):
    job = failed_hostile_job
    page.goto(f"{console}#/jobs/{job.id}")  # the printed URL (with its token) and a route
    expect(page.locator("h1")).to_contain_text(HOSTILE)
    cell = page.locator("tr[data-task-id] td.display")
    expect(cell).to_have_text(HOSTILE)
    expect(page.locator("#tasks .failure").first).to_contain_text("RuntimeError")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main script, main img:not(#diagram)").count() == 0
    # When the cause is fixed and the job retried from its button
    (tmp_path / "broken-h").unlink()
    retry = page.locator("#retry")
    expect(retry).to_be_enabled()
    retry.click()
    # Then it completes, and the page shows it
    expect(page.locator("h1 .state")).to_have_text("COMPLETED")
    assert client.jobs().find(job).state == "COMPLETED"
    expect(retry).to_be_disabled()


def origin(console: str) -> str:
    return console.split("/?", maxsplit=1)[0]


def test_the_page_and_the_api_need_the_session_token_and_the_console_answers_only_on_loopback(client, console):
    http = urllib3.PoolManager()
    base, token = origin(console), console.split("token=")[1]
    job = client.jobs().submit("untouched", Hostile("u", "x"))
    # without the token (another local user, a page elsewhere): neither the page, nor reading, nor acting
    assert http.request("GET", f"{base}/").status == 403
    assert http.request("GET", f"{base}/api/jobs").status == 403
    assert http.request("POST", f"{base}/api/jobs/{job.id}/cancel").status == 403
    wrong = http.request("GET", f"{base}/api/jobs", headers={"X-Taskfleet-Token": token[:-1] + "x"})
    assert wrong.status == 403
    # with it, but from another origin, or addressed to another host name (DNS rebinding)
    headers = {"Origin": "http://evil.example", "X-Taskfleet-Token": token}
    assert http.request("POST", f"{base}/api/jobs/{job.id}/cancel", headers=headers).status == 403
    rebound = http.request("GET", f"{base}/api/jobs", headers={"Host": "evil.example", "X-Taskfleet-Token": token})
    assert rebound.status == 403
    assert client.jobs().find(job).state == "SUBMITTED"  # nothing was canceled
    assert http.request("GET", f"{base}/api/jobs", headers={"X-Taskfleet-Token": token}).status == 200
    page = http.request("GET", console)
    assert page.status == 200 and token not in page.data.decode()  # the page itself does not carry it
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_the_clusters_page_shows_each_clusters_backlog(client, cluster, console, page):
    client.jobs().submit("waiting", [Hostile(f"w{i}", "w") for i in range(3)], cluster=cluster)
    page.goto(f"{console}#/clusters")
    expect(page.locator(f'tr[data-slug="{cluster}"] .backlog')).to_have_text("3")
    expect(page.locator('tr[data-slug="default"]')).to_be_visible()
