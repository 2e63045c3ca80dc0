"""Every workflow of examples/workflows runs end to end against the demo API, as documented.

Each file is run with ``jobqueue run FILE --param base_url=<demo API> --json`` through typer's
test runner: the same command, engine and embedded SQLite default as a user's run, in this
process (a real ``jobqueue`` process is exercised in test_cli.py). The expected outcomes are
those of examples/README.md section 3; a new example without an entry in ``EXPECTED`` fails.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from api.cli import app
from tests.support.demo_server import DemoServer

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "examples" / "workflows"
EXAMPLES = sorted(WORKFLOWS.glob("*.yaml"))
#: the demo API's address as the examples write it
DEMO_ADDRESS = "http://127.0.0.1:8001"

Check = Callable[[dict[str, Any], "RunOutcome", DemoServer], None]


@dataclass(frozen=True)
class RunOutcome:
    exit_code: int
    result: dict[str, Any]
    #: the ``warning ...`` lines printed before the document
    warnings: list[str]


@dataclass(frozen=True)
class Scenario:
    label: str
    status: str
    #: status of every task of the job (all of them, so a new task must be named here)
    tasks: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)
    #: attempts of the tasks whose count matters
    attempts: dict[str, int] = field(default_factory=dict)
    #: further checks: (result document, outcome, demo server)
    checks: tuple[Check, ...] = ()

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "succeeded" else 1


def _body(result: dict[str, Any], task: str) -> Any:
    return result["tasks"][task]["response_body"]


def _searched_three_cats(result: dict[str, Any], outcome: RunOutcome, demo: DemoServer) -> None:
    body = _body(result, "main")
    assert body["query"] == "cats"
    assert body["count"] == 3
    assert len(body["results"]) == 3


def _aggregate_sums_the_prices(
    result: dict[str, Any], outcome: RunOutcome, demo: DemoServer
) -> None:
    items = [_body(result, f"item_{i}") for i in (1, 2, 3)]
    found = [hit["id"] for hit in _body(result, "search")["results"]]
    assert [item["id"] for item in items] == found
    aggregate = _body(result, "aggregate")
    assert aggregate["n"] == 3
    assert aggregate["total"] == pytest.approx(sum(item["price"] for item in items))


def _one_warning_for_the_filtered_ids(
    result: dict[str, Any], outcome: RunOutcome, demo: DemoServer
) -> None:
    assert len(outcome.warnings) == 1, outcome.warnings
    assert "/tasks/1/body/ids" in outcome.warnings[0]


def _notification_has_the_message(
    result: dict[str, Any], outcome: RunOutcome, demo: DemoServer
) -> None:
    (notification,) = demo.notifications
    count = _body(result, "search")["count"]
    lines = notification["message"].splitlines()
    assert lines[0] == f'Search for "cats" found {count} results.'
    enriched = _body(result, "enrich")["items"]
    assert len(lines) == 1 + len(enriched)
    for line, item in zip(lines[1:], enriched, strict=True):
        assert line.startswith(f"- #{item['id']}: {item['summary']}")
    assert notification["channel"] == "demo"
    assert notification["count"] == len(enriched)


def _flaky_called(times: int) -> Check:
    def check(result: dict[str, Any], outcome: RunOutcome, demo: DemoServer) -> None:
        assert demo.flaky_calls(result["job_id"]) == times

    return check


def _flaky_answered_on_attempt_3(
    result: dict[str, Any], outcome: RunOutcome, demo: DemoServer
) -> None:
    assert _body(result, "flaky") == {"key": result["job_id"], "attempts": 3}
    assert _body(result, "check") == {"key": result["job_id"], "attempts": 3}


def _notified(channel: str) -> Check:
    def check(result: dict[str, Any], outcome: RunOutcome, demo: DemoServer) -> None:
        assert [n["channel"] for n in demo.notifications] == [channel]
        report = _body(result, "report")
        assert [n["channel"] for n in report["items"]] == [channel]

    return check


def _fetched_in_search_order(result: dict[str, Any], outcome: RunOutcome, demo: DemoServer) -> None:
    found = [hit["id"] for hit in _body(result, "search")["results"]]
    items = _body(result, "fetch")
    assert [item["id"] for item in items] == found and len(found) == 4
    aggregate = _body(result, "aggregate")
    assert aggregate["n"] == 4
    assert aggregate["total"] == pytest.approx(sum(item["price"] for item in items))


def _nothing_fetched(result: dict[str, Any], outcome: RunOutcome, demo: DemoServer) -> None:
    assert _body(result, "fetch") == []
    assert _body(result, "aggregate") == {"total": 0, "n": 0}


def _callback_brought_the_output(
    result: dict[str, Any], outcome: RunOutcome, demo: DemoServer
) -> None:
    assert _body(result, "order") == {"order": 42, "total": 19.5}
    assert result["tasks"]["order"]["response_status"] == 202
    (made,) = demo.app.state.demo.callbacks
    assert made["status_code"] == 200
    assert "/api/v1/callbacks/" in made["url"]
    (notification,) = demo.notifications
    assert notification["message"] == "order 42 total 19.5"


def _webhook_received(result: dict[str, Any], outcome: RunOutcome, demo: DemoServer) -> None:
    (hook,) = demo.app.state.demo.webhooks
    assert hook["headers"]["x-jobqueue-event"] == "job.finished"
    assert hook["headers"]["x-example"] == "on-complete"
    sent = json.loads(hook["body"])
    assert (sent["job_id"], sent["status"]) == (result["job_id"], "succeeded")
    assert sent["result"]["tasks"]["search"]["response_body"]["count"] == 2


EXPECTED: dict[str, list[Scenario]] = {
    "for_each_items.yaml": [
        Scenario(
            "as-written",
            status="succeeded",
            tasks=dict.fromkeys(("search", "fetch", "aggregate"), "succeeded"),
            checks=(_fetched_in_search_order,),
        ),
        Scenario(
            "limit-0",
            params={"limit": "0"},
            status="succeeded",
            tasks=dict.fromkeys(("search", "fetch", "aggregate"), "succeeded"),
            checks=(_nothing_fetched,),
        ),
    ],
    "single_call.yaml": [
        Scenario(
            "as-written",
            status="succeeded",
            tasks={"main": "succeeded"},
            attempts={"main": 1},
            checks=(_searched_three_cats,),
        )
    ],
    "fan_out_fan_in.yaml": [
        Scenario(
            "as-written",
            status="succeeded",
            tasks=dict.fromkeys(("search", "item_1", "item_2", "item_3", "aggregate"), "succeeded"),
            checks=(_aggregate_sums_the_prices,),
        )
    ],
    "search_enrich_notify.yaml": [
        Scenario(
            "as-written",
            status="succeeded",
            tasks=dict.fromkeys(("search", "enrich", "notify"), "succeeded"),
            checks=(_one_warning_for_the_filtered_ids, _notification_has_the_message),
        )
    ],
    "retry_backoff.yaml": [
        Scenario(
            "as-written",
            status="succeeded",
            tasks={"flaky": "succeeded", "check": "succeeded"},
            attempts={"flaky": 3, "check": 1},
            checks=(_flaky_answered_on_attempt_3, _flaky_called(3)),
        ),
        Scenario(
            "fail-4",
            params={"fail": "4"},
            status="failed",
            tasks={"flaky": "failed", "check": "skipped"},
            attempts={"flaky": 4},
            checks=(_flaky_called(4),),
        ),
    ],
    "callback_later.yaml": [
        Scenario(
            "as-written",
            params={"seconds": "0.05"},
            status="succeeded",
            tasks={"order": "succeeded", "confirm": "succeeded"},
            checks=(_callback_brought_the_output,),
        )
    ],
    "on_complete_webhook.yaml": [
        Scenario(
            "as-written",
            status="succeeded",
            tasks={"search": "succeeded"},
            checks=(_webhook_received,),
        )
    ],
    "conditional_branch.yaml": [
        Scenario(
            "as-written",
            status="succeeded",
            tasks={"search": "succeeded", "found": "succeeded", "not_found": "skipped"}
            | {"report": "succeeded"},
            checks=(_notified("results"),),
        ),
        Scenario(
            "limit-0",
            params={"limit": "0"},
            status="succeeded",
            tasks={"search": "succeeded", "found": "skipped", "not_found": "succeeded"}
            | {"report": "succeeded"},
            checks=(_notified("empty"),),
        ),
    ],
}


def _cases() -> Iterator[Any]:
    for path in EXAMPLES:
        scenarios = EXPECTED.get(path.name)
        if not scenarios:
            yield pytest.param(path, None, id=f"{path.stem}-no-expectation")
            continue
        for scenario in scenarios:
            yield pytest.param(path, scenario, id=f"{path.stem}-{scenario.label}")


def _invocation(path: Path, scenario: Scenario, demo: DemoServer, tmp_path: Path) -> list[str]:
    """The command line for ``path``: DAG examples get ``--param base_url``; the single-call
    form has no job params, so a copy with the demo API's port rewritten runs instead."""
    text = path.read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    if "tasks" in document:
        params = {"base_url": demo.base_url, **scenario.params}
        if "on_complete" in document:  # its address is written out, as in the single call
            path = tmp_path / path.name
            path.write_text(text.replace(DEMO_ADDRESS, demo.base_url), encoding="utf-8")
        return ["run", str(path), "--json", *(f"--param={k}={v}" for k, v in params.items())]
    assert not scenario.params, "the single-call form takes no --param"
    assert text.count(DEMO_ADDRESS) == 1, f"{path.name} should call {DEMO_ADDRESS} once"
    copy = tmp_path / path.name
    copy.write_text(text.replace(DEMO_ADDRESS, demo.base_url), encoding="utf-8")
    return ["run", str(copy), "--json"]


def _result_document(stdout: str) -> dict[str, Any]:
    """The JSON document ``--json`` printed (warnings may come before it)."""
    start = re.search(r"^\{$", stdout, re.MULTILINE)
    assert start is not None, f"no JSON document in the output:\n{stdout}"
    document: dict[str, Any] = json.loads(stdout[start.start() :])
    return document


def _warnings(output: str) -> list[str]:
    """The ``warning ...`` reports printed before the document, on stdout or stderr (rich may
    wrap one over several lines)."""
    start = re.search(r"^\{$", output, re.MULTILINE)
    head = output[: start.start()] if start else output
    return [" ".join(part.split()) for part in re.split(r"^(?=warning )", head, flags=re.M)[1:]]


def test_there_are_at_least_five_examples() -> None:
    assert len(EXAMPLES) >= 5, EXAMPLES


def test_every_expectation_names_an_existing_example() -> None:
    assert set(EXPECTED) <= {path.name for path in EXAMPLES}


@pytest.mark.parametrize(("path", "scenario"), list(_cases()))
def test_example_runs_as_documented(
    path: Path, scenario: Scenario | None, demo: DemoServer, cli_env: Path
) -> None:
    if scenario is None:
        pytest.fail(f"{path.name} has no expected outcome in EXPECTED (see examples/README.md)")
    args = _invocation(path, scenario, demo, cli_env)

    result = CliRunner().invoke(app, args)

    assert not isinstance(result.exception, Exception), f"{result.exception!r}\n{result.output}"
    document = _result_document(result.stdout)
    outcome = RunOutcome(result.exit_code, document, _warnings(result.output))
    tasks = {name: task["status"] for name, task in document["tasks"].items()}
    assert tasks == scenario.tasks, document
    for name, attempts in scenario.attempts.items():
        assert document["tasks"][name]["attempts"] == attempts, document["tasks"][name]
    assert document["status"] == scenario.status
    assert outcome.exit_code == scenario.exit_code, result.output
    for check in scenario.checks:
        check(document, outcome, demo)
