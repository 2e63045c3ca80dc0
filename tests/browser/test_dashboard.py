"""The dashboard in a real browser: the DAG drawn and updated live from the event stream, cancel
and retry from the page, a failed task's error, the submit form's report, the job list.

The target holds each call until the test releases it (``GatedTarget``), so the test decides
when a task finishes; every wait is Playwright's wait for a state of the page, never a sleep.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.api_server import ApiServer
from tests.support.gated_target import GatedTarget

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

#: a browser process per test run: with the multi-process tests (``-m "not slow"`` skips them)
pytestmark = pytest.mark.slow

#: records every data-status a graph node takes, in order, from the moment it is installed
_RECORD_TRANSITIONS = """() => {
  window.__transitions = [];
  window.__loadedOnce = true;
  new MutationObserver((changes) => {
    for (const c of changes) {
      window.__transitions.push([c.target.dataset.task, c.target.dataset.status]);
    }
  }).observe(document.getElementById("graph"), {
    subtree: true, attributes: true, attributeFilter: ["data-status"],
  });
}"""


def submit(server: ApiServer, document: dict[str, Any]) -> str:
    response = httpx.post(server.url("/api/v1/jobs"), json=document)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def publish_dag(gated: GatedTarget) -> dict[str, Any]:
    """fetch -> (parse, thumbnails, index) -> publish, every call held by the gated target."""
    gate = gated.url
    return {
        "name": "publish-article",
        "tags": ["docs", "demo"],
        "tasks": [
            {"name": "fetch", "url": gate("/gate/fetch")},
            {"name": "parse", "url": gate("/gate/parse"), "depends_on": ["fetch"]},
            {"name": "thumbnails", "url": gate("/gate/thumbnails"), "depends_on": ["fetch"]},
            {"name": "index", "url": gate("/gate/index"), "depends_on": ["fetch"]},
            {
                "name": "publish",
                "method": "POST",
                "url": gate("/gate/publish"),
                "headers": {"Authorization": "Bearer top-secret"},
                "body": {"title": "{{ tasks.parse.output.key }}"},
                "depends_on": ["parse", "thumbnails", "index"],
            },
        ],
    }


def node(page: Page, task: str) -> Any:
    return page.locator(f'#graph [data-task="{task}"]')


def transitions_of(page: Page, task: str) -> list[str]:
    recorded: list[list[str]] = page.evaluate("window.__transitions")
    return [status for name, status in recorded if name == task]


def test_the_dag_is_drawn_and_its_tasks_change_live_without_a_reload(
    page: Page, server: ApiServer, gated: GatedTarget
) -> None:
    page.goto(server.url("/ui/"))
    expect(page.locator("#job-rows")).to_contain_text("No job matches")
    job_id = submit(server, publish_dag(gated))
    page.reload()
    page.locator(f'[data-job="{job_id}"] a').click()
    expect(page).to_have_url(server.url(f"/ui/jobs/{job_id}"))
    expect(page.locator("#graph .node")).to_have_count(5)
    expect(page.locator("#graph .edge")).to_have_count(6)
    expect(node(page, "fetch")).to_have_attribute("data-status", "running")
    expect(page.locator("#stream-state")).to_have_attribute("data-state", "live")
    page.evaluate(_RECORD_TRANSITIONS)

    gated.release("fetch")
    expect(node(page, "parse")).to_have_attribute("data-status", "running")
    expect(node(page, "fetch")).to_have_attribute("data-status", "succeeded")
    gated.release("parse")
    expect(node(page, "parse")).to_have_attribute("data-status", "succeeded")
    expect(node(page, "index")).to_have_attribute("data-status", "running")
    node(page, "publish").click()
    expect(page.locator("#task-panel h2")).to_contain_text("publish")
    expect(page.locator("#task-panel")).to_contain_text('"Authorization": "***"')
    expect(page.locator("#task-panel")).not_to_contain_text("top-secret")
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / "job-page.png"), full_page=True)

    for task in ("thumbnails", "index", "publish"):
        gated.release(task)
    expect(page.locator("#job-status")).to_have_text("succeeded")
    expect(page.locator("#stream-state")).to_have_attribute("data-state", "ended")
    expect(node(page, "publish")).to_have_attribute("data-status", "succeeded")
    assert transitions_of(page, "publish") == ["queued", "running", "succeeded"]
    assert transitions_of(page, "parse") == ["queued", "running", "succeeded"]
    assert transitions_of(page, "fetch") == ["succeeded"]
    assert page.evaluate("window.__loadedOnce") is True, "the page was reloaded"
    expect(page.locator("#task-panel")).to_contain_text("HTTP 200")
    expect(page.locator("#event-log li").first).to_contain_text("job")


def test_a_running_job_is_canceled_from_its_page(
    page: Page, server: ApiServer, gated: GatedTarget
) -> None:
    job_id = submit(server, publish_dag(gated))
    page.goto(server.url(f"/ui/jobs/{job_id}"))
    expect(node(page, "fetch")).to_have_attribute("data-status", "running")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#cancel").click()
    expect(page.locator("#job-status")).to_have_text("canceled")
    expect(node(page, "fetch")).to_have_attribute("data-status", "canceled")
    expect(node(page, "publish")).to_have_attribute("data-status", "canceled")
    expect(page.locator("#cancel")).to_be_disabled()
    expect(page.locator("#retry")).to_be_enabled()
    assert httpx.get(server.url(f"/api/v1/jobs/{job_id}")).json()["status"] == "canceled"


def test_a_failed_tasks_error_is_shown_and_the_job_retried_from_the_page(
    page: Page, server: ApiServer, gated: GatedTarget
) -> None:
    job_id = submit(
        server,
        {
            "name": "fails",
            "tasks": [
                {"name": "call", "url": gated.url("/gate/call?status=500")},
                {"name": "after", "url": gated.url("/gate/never"), "depends_on": ["call"]},
            ],
        },
    )
    gated.release("call")
    page.goto(server.url(f"/ui/jobs/{job_id}"))
    expect(page.locator("#job-status")).to_have_text("failed")
    expect(node(page, "after")).to_have_attribute("data-status", "skipped")
    node(page, "call").click()
    error = page.locator("#task-error")
    expect(error).to_contain_text("http_status")
    expect(error).to_contain_text("500")
    expect(page.locator("#task-panel .attempts")).to_contain_text("failed")
    expect(page.locator("#task-panel")).to_contain_text("gate call answered 500 on purpose")

    page.locator("#retry").click()
    expect(page.locator("#event-log li", has_text="pending")).to_have_count(2)
    expect(page.locator("#stream-state")).to_have_attribute("data-state", "ended")
    expect(page.locator("#job-status")).to_have_text("failed")
    attempts = httpx.get(server.url(f"/api/v1/jobs/{job_id}/tasks/call/attempts")).json()
    assert [a["status"] for a in attempts["attempts"]] == ["failed", "failed"]


def test_an_invalid_workflow_shows_its_report_and_a_valid_one_opens_its_job(
    page: Page, server: ApiServer, gated: GatedTarget
) -> None:
    page.goto(server.url("/ui/submit"))
    page.locator("#document").fill(
        "name: broken\n"
        "tasks:\n"
        "  - name: a\n"
        "    url: http://127.0.0.1:9/a\n"
        "    depends_on: [ghost]\n"
        "  - name: b\n"
        "    url: http://127.0.0.1:9/b\n"
        '    body: {"x": "{{ tasks.a.output.x "}\n'
    )
    page.locator("#validate").click()
    report = page.locator("#report")
    expect(report).to_contain_text("not valid")
    expect(report.locator("td.location", has_text="/tasks/0/depends_on/0")).to_have_count(1)
    expect(report.locator("td.code", has_text="unknown_dependency")).to_have_count(1)
    expect(report.locator("td.location", has_text="/tasks/1/body/x")).to_have_count(1)
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / "submit-report.png"), full_page=True)
    assert httpx.get(server.url("/api/v1/jobs")).json()["items"] == [], "validate created a job"

    valid = {"name": "from-the-form", "tasks": [{"name": "only", "url": gated.url("/gate/f")}]}
    page.locator("#document").fill(json.dumps(valid))
    page.locator("#validate").click()
    expect(report).to_contain_text("The workflow is valid")
    page.locator("#submit").click()
    job_page = re.compile(re.escape(server.url("/ui/jobs/")) + r"j_[0-9A-Z]{26}$")
    expect(page).to_have_url(job_page)
    expect(page.locator("#job-name")).to_have_text("from-the-form")
    expect(node(page, "only")).to_have_attribute("data-status", "running")
    gated.release("f")
    expect(page.locator("#job-status")).to_have_text("succeeded")


def test_the_job_list_filters_pages_and_counts(page: Page, server: ApiServer) -> None:
    jobs = [{"name": f"n{i}", "url": "http://127.0.0.1:9/", "tags": ["bulk"]} for i in range(53)]
    jobs.append({"name": "lonely", "url": "http://127.0.0.1:9/", "tags": ["other"]})
    answer = httpx.post(server.url("/api/v1/jobs/batch"), json={"jobs": jobs}, timeout=30)
    assert answer.status_code == 200
    page.goto(server.url("/ui/"))
    expect(page.locator("#counts")).to_contain_text("54 jobs")
    expect(page.locator("#job-rows tr")).to_have_count(50)
    page.locator("#next").click()
    expect(page.locator("#job-rows tr")).to_have_count(4)
    expect(page.locator("#page-info")).to_have_text("page 2")
    page.locator("#prev").click()
    expect(page.locator("#job-rows tr")).to_have_count(50)
    page.locator("#filters input[name=tag]").fill("other")
    page.locator("#filters button[type=submit]").click()
    expect(page.locator("#job-rows tr")).to_have_count(1)
    expect(page.locator("#job-rows")).to_contain_text("lonely")
    page.locator("#filters input[name=tag]").fill("")
    page.locator("#filters input[name=name]").fill("n7")
    page.locator("#filters button[type=submit]").click()
    expect(page.locator("#job-rows tr")).to_have_count(1)
    expect(page.locator("#job-rows")).to_contain_text("n7")


def test_interface_masters_are_listed_with_their_schemas(page: Page, server: ApiServer) -> None:
    master = {
        "name": "SearchResult",
        "description": "what a search answers",
        "output_schema": {"type": "object", "required": ["results"]},
    }
    assert httpx.post(server.url("/api/v1/interface-masters"), json=master).status_code == 201
    page.goto(server.url("/ui/interfaces"))
    card = page.locator('[data-master="SearchResult"]')
    expect(card).to_contain_text("what a search answers")
    expect(card).to_contain_text('"required"')


def test_with_api_keys_the_pages_ask_for_a_key_and_send_it(
    page: Page, tmp_path: Path, gated: GatedTarget
) -> None:
    key = "alice-key-0123456789abcdef"
    with ApiServer(tmp_path / "keys.db", api_keys=(f"alice:{key}",)) as keyed:
        headers = {"Authorization": f"Bearer {key}"}
        created = httpx.post(
            keyed.url("/api/v1/jobs"), json={"url": gated.url("/gate/k")}, headers=headers
        )
        job_id = created.json()["job_id"]
        page.goto(keyed.url("/ui/"))
        dialog = page.locator("#key-dialog")
        expect(dialog).to_be_visible()
        page.locator("#key-input").fill(key)
        page.locator("#key-save").click()
        expect(page.locator(f'[data-job="{job_id}"]')).to_be_visible()
        page.locator(f'[data-job="{job_id}"] a').click()
        expect(node(page, "main")).to_have_attribute("data-status", "running")
        expect(page.locator("#stream-state")).to_have_attribute("data-state", "live")
        gated.release("k")
        expect(page.locator("#job-status")).to_have_text("succeeded")


def test_schedules_are_listed_with_their_next_ticks(page: Page, server: ApiServer) -> None:
    schedule = {
        "name": "nightly-report",
        "cron": "30 2 * * *",
        "timezone": "Europe/Berlin",
        "job": {"url": "http://127.0.0.1:9/report"},
    }
    created = httpx.post(server.url("/api/v1/schedules"), json=schedule)
    assert created.status_code == 201, created.text
    page.goto(server.url("/ui/schedules"))
    row = page.locator('[data-schedule="nightly-report"]')
    expect(row).to_contain_text("30 2 * * *")
    expect(row).to_contain_text("Europe/Berlin")
    row.click()
    expect(page.locator("#schedule-detail li")).to_have_count(5)
