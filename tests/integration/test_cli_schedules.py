"""``jobqueue schedules``: apply a scheduled workflow file, list, show, delete (real SQLite)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from api.cli import app
from engine import Engine
from tests.support.config import make_config

SCHEDULED = """\
name: nightly-report
schedule:
  cron: "30 2 * * *"
  timezone: Europe/Berlin
  overlap: skip
  catch_up: latest
params:
  base_url: http://127.0.0.1:8001
tasks:
  - name: report
    method: POST
    url: "{{ params.base_url }}/notify"
    body:
      message: "report for {{ schedule.fire_time }}"
"""


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args), prog_name="jobqueue", env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def write(tmp: Path, text: str) -> Path:
    path = tmp / "wf.yaml"
    path.write_text(text)
    return path


def test_apply_list_show_delete(cli_env: Path) -> None:
    path = write(cli_env, SCHEDULED)
    first = invoke("schedules", "apply", str(path))
    assert first.exit_code == 0, first.output
    assert first.output.startswith("created schedule nightly-report (30 2 * * * Europe/Berlin)")

    changed = write(cli_env, SCHEDULED.replace('"30 2 * * *"', '"0 6 * * 1-5"'))
    second = invoke("schedules", "apply", str(changed), "--json")
    assert second.exit_code == 0, second.output
    document = json.loads(second.output)
    assert (document["cron"], document["overlap"], document["catch_up"]) == (
        "0 6 * * 1-5",
        "skip",
        "latest",
    )
    assert document["job"]["tasks"][0]["name"] == "report" and "schedule" not in document["job"]

    listed = invoke("schedules", "list")
    assert listed.exit_code == 0
    assert "nightly-report" in listed.output and document["next_fire_at"] in listed.output

    shown = invoke("schedules", "show", "nightly-report")
    assert shown.exit_code == 0
    assert "0 6 * * 1-5 in Europe/Berlin, enabled, overlap skip, catch_up latest" in shown.output
    assert document["upcoming"][1] in shown.output

    deleted = invoke("schedules", "delete", "nightly-report")
    assert deleted.exit_code == 0
    assert invoke("schedules", "list").output.strip() == "no schedules"
    missing = invoke("schedules", "show", "nightly-report")
    assert missing.exit_code == 1 and "not found" in missing.output


def test_apply_reports_problems_at_their_file_lines(cli_env: Path) -> None:
    bad = SCHEDULED.replace('"30 2 * * *"', '"30 2 * *"').replace(
        "{{ schedule.fire_time }}", "{{ schedule.when }}"
    )
    result = invoke("schedules", "apply", str(write(cli_env, bad)))
    assert result.exit_code == 1
    assert "wf.yaml:3:9: invalid_cron at /schedule/cron" in result.output

    bad = SCHEDULED.replace("{{ schedule.fire_time }}", "{{ schedule.when }}")
    result = invoke("schedules", "apply", str(write(cli_env, bad)))
    assert result.exit_code == 1
    assert "wf.yaml:14:16: unknown_variable [task report] at /tasks/0/body/message" in (
        result.output
    )
    assert invoke("schedules", "list").output.strip() == "no schedules"


def test_a_file_without_a_schedule_section_is_refused(cli_env: Path) -> None:
    lines = SCHEDULED.splitlines()
    plain = "\n".join([lines[0], *lines[6:]])
    result = invoke("schedules", "apply", str(write(cli_env, plain)))
    assert result.exit_code == 1
    assert "needs a `schedule:` mapping" in result.output


def test_run_ignores_the_schedule_section(cli_env: Path) -> None:
    plain = SCHEDULED.replace("{{ schedule.fire_time }}", "now")
    result = invoke("validate", str(write(cli_env, plain)))
    assert result.exit_code == 0, result.output


SCHEDULED_DEFINITION = """\
name: daily-report
schedule:
  cron: "0 6 * * *"
  timezone: Europe/Berlin
  workflow:
    name: report
    params: {day: "{{ schedule.fire_time }}", region: eu}
"""


def test_apply_a_schedule_that_starts_a_stored_definition(cli_env: Path) -> None:
    refused = invoke("schedules", "apply", str(write(cli_env, SCHEDULED_DEFINITION)))
    assert refused.exit_code == 1
    assert "wf.yaml:6:11: unknown_workflow at /schedule/workflow/name" in refused.output

    async def put_definition() -> None:
        engine = await Engine.open(make_config(os.environ["JOBQUEUE_DB_URL"]))
        try:
            await engine.put_workflow(
                "report",
                {
                    "params_schema": {
                        "type": "object",
                        "properties": {"day": {"type": "string"}, "region": {"enum": ["eu"]}},
                    },
                    "tasks": [{"name": "build", "url": "http://127.0.0.1:9/{{ params.day }}"}],
                },
            )
        finally:
            await engine.close()

    asyncio.run(put_definition())
    bad = SCHEDULED_DEFINITION.replace("region: eu", "region: us")
    refused = invoke("schedules", "apply", str(write(cli_env, bad)))
    assert refused.exit_code == 1
    assert "wf.yaml:7:55: invalid_params at /schedule/workflow/params/region" in refused.output

    applied = invoke("schedules", "apply", str(write(cli_env, SCHEDULED_DEFINITION)), "--json")
    assert applied.exit_code == 0, applied.output
    document = json.loads(applied.output)
    assert document["job"] is None
    assert document["workflow"] == {
        "name": "report",
        "version": None,
        "params": {"day": "{{ schedule.fire_time }}", "region": "eu"},
    }
