"""The ``jobqueue`` command line: help, validate, run, submit, jobs, serve,
worker, db upgrade, demo, and the README's ``uvicorn api.main:app`` quickstart.

In-process commands go through typer's test runner; where a real process matters (a server, a
worker receiving SIGTERM, ``run`` receiving Ctrl-C, the console script's exit code, a fresh
working directory) the test starts one with :class:`Proc`, always on 127.0.0.1, and waits by
polling, never by sleeping.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner, Result

from api.cli import app
from api.cli_local import task_table
from engine import Engine
from tests.integration.target_server import TargetServer
from tests.support.config import make_config
from tests.support.demo_server import DemoServer
from tests.support.processes import (
    ROOT,
    Proc,
    Server,
    env_for,
    free_port,
    poll,
    script,
    tables,
)

EXAMPLES = ROOT / "examples" / "workflows"
JOB_ID = re.compile(r"\bj_[0-9A-HJKMNP-TV-Z]{26}\b")
SCHEMA_TABLES = {"jobs", "tasks", "attempts", "alembic_version"}


# --------------------------------------------------------------------------- helpers


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run ``jobqueue ARGS`` in this process; an exception other than the exit fails the test.

    The console is 200 columns wide (``COLUMNS``), so that table rows stay on one line."""
    result = CliRunner().invoke(
        app, list(args), prog_name="jobqueue", env={"COLUMNS": "200", **(env or {})}
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"jobqueue {' '.join(args)} raised:\n{result.output}") from (
            result.exception
        )
    return result


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def position(text: str, line_marker: str, token: str) -> tuple[int, int]:
    """1-based (line, column) of ``token`` on the first line containing ``line_marker``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line_marker in line:
            return number, line.index(token) + 1
    raise AssertionError(f"{line_marker!r} is not in the text")


def search_workflow(tmp_path: Path, base_url: str) -> Path:
    """One task, no upstream reference (so no warning): GET /search?q={{ params.query }}."""
    return write(
        tmp_path / "search.yaml",
        f"""\
name: cli-search
params:
  base_url: {base_url}
  query: cats
  limit: 5
tasks:
  - name: search
    url: "{{{{ params.base_url }}}}/search"
    params:
      q: "{{{{ params.query }}}}"
      limit: "{{{{ params.limit }}}}"
""",
    )


def closed_port_workflow(tmp_path: Path) -> Path:
    """A task against 127.0.0.1:9 (nothing listens there), one attempt: the job fails."""
    return write(
        tmp_path / "closed.yaml",
        """\
name: cli-closed-port
tasks:
  - name: unreachable
    url: http://127.0.0.1:9/nothing
    max_attempts: 1
    timeout_sec: 5
""",
    )


# --------------------------------------------------------------------------- --help


def _command_paths() -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        paths.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(("jobqueue", *p)))
def test_help_gives_an_example(path: tuple[str, ...]) -> None:
    result = invoke(*path, "--help")

    assert result.exit_code == 0, result.output
    assert "Example" in result.output, result.output


def test_every_documented_command_exists() -> None:
    paths = set(_command_paths())
    for command in ("serve", "worker", "run", "submit", "validate", "demo"):
        assert (command,) in paths
    assert ("db", "upgrade") in paths
    for command in ("list", "show", "result", "cancel", "retry"):
        assert ("jobs", command) in paths


# --------------------------------------------------------------------------- validate

BROKEN_DAG = """\
name: broken
params:
  base_url: http://127.0.0.1:9
tasks:
  - name: a
    url: "{{ params.base_url }}/a"
    depends_on: [c]
  - name: b
    url: "{{ params.base_url }}/b"
    depends_on: [a, ghost]
  - name: c
    url: "{{ params.base_url }}/c"
    depends_on: [b]
  - name: d
    url: "{{ params.base_url }}/d/{{ params.x "
"""


def test_validate_a_valid_file(cli_env: Path) -> None:
    result = invoke("validate", str(EXAMPLES / "retry_backoff.yaml"))

    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout
    assert "error" not in result.stdout


def test_validate_reports_every_problem_at_its_line_and_column(cli_env: Path) -> None:
    path = write(cli_env / "broken.yaml", BROKEN_DAG)
    expected = {
        "cycle": position(BROKEN_DAG, "depends_on: [c]", "c]"),
        "unknown_dependency": position(BROKEN_DAG, "ghost", "ghost"),
        "template_syntax": position(BROKEN_DAG, "{{ params.x ", '"'),
    }

    result = invoke("validate", str(path))

    assert result.exit_code == 1, result.output
    for code, (line, column) in expected.items():
        pattern = rf"^error {re.escape(str(path))}:{line}:{column}: {code}\b"
        assert re.search(pattern, result.stdout, re.MULTILINE), (code, result.stdout)
    assert "ghost" in result.stdout
    assert "a -> b -> c -> a" in result.stdout


def test_validate_names_the_task_of_each_problem(cli_env: Path) -> None:
    """README: ``x.yaml:42:9: invalid_field [task enrich] at /tasks/1/body/ids: ...``."""
    path = write(cli_env / "broken.yaml", BROKEN_DAG)

    result = invoke("validate", str(path))

    assert result.exit_code == 1, result.output
    line = next(x for x in result.stdout.splitlines() if "unknown_dependency" in x)
    assert "unknown_dependency [task b]" in line, line


def test_validate_duplicate_key_is_reported_at_its_line(cli_env: Path) -> None:
    text = """\
name: dup
tasks:
  - name: a
    url: http://127.0.0.1:9/a
    method: GET
    method: POST
"""
    path = write(cli_env / "dup.yaml", text)
    line, column = position(text, "method: POST", "method")

    result = invoke("validate", str(path))

    assert result.exit_code == 1, result.output
    assert f"{path}:{line}:{column}: " in result.stdout, result.stdout
    assert "duplicate key 'method'" in result.stdout


BAD_INDENT = """\
name: bad-indent
tasks:
  - name: a
     url: http://127.0.0.1:9/a
"""


def test_validate_broken_yaml_is_a_message_with_its_line_not_a_traceback(cli_env: Path) -> None:
    path = write(cli_env / "bad.yaml", BAD_INDENT)
    line, column = position(BAD_INDENT, "url:", ":")

    result = invoke("validate", str(path))

    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert f"{path}:{line}:{column}: invalid_yaml: mapping values" in result.stdout, result.stdout


@pytest.mark.slow
def test_validate_broken_yaml_in_a_real_process(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", BAD_INDENT)
    line, column = position(BAD_INDENT, "url:", ":")

    done = subprocess.run(
        [script("jobqueue"), "validate", str(path)],
        env=env_for(tmp_path / "v.db"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1, done
    assert "Traceback" not in done.stdout + done.stderr
    assert f"{path}:{line}:{column}: invalid_yaml" in done.stdout, done.stdout


# --------------------------------------------------------------------------- run


def test_run_exits_0_when_the_job_succeeds(cli_env: Path, demo: DemoServer) -> None:
    result = invoke("run", str(search_workflow(cli_env, demo.base_url)))

    assert result.exit_code == 0, result.output
    assert re.search(rf"job {JOB_ID.pattern} succeeded", result.stdout), result.stdout


def test_run_exits_1_when_the_job_fails(cli_env: Path) -> None:
    result = invoke("run", str(closed_port_workflow(cli_env)))

    assert result.exit_code == 1, result.output
    assert re.search(rf"job {JOB_ID.pattern} failed", result.stdout), result.stdout


def test_run_json_prints_the_result_document(cli_env: Path, demo: DemoServer) -> None:
    result = invoke("run", str(search_workflow(cli_env, demo.base_url)), "--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["status"] == "succeeded"
    assert JOB_ID.fullmatch(document["job_id"])
    assert document["tasks"]["search"]["status"] == "succeeded"
    assert document["tasks"]["search"]["response_body"]["query"] == "cats"


def test_run_json_of_a_failing_job(cli_env: Path) -> None:
    result = invoke("run", str(closed_port_workflow(cli_env)), "--json")

    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["status"] == "failed"
    assert document["tasks"]["unreachable"]["status"] == "failed"
    assert document["tasks"]["unreachable"]["attempts"] == 1


def test_run_json_keeps_stdout_a_json_document_when_there_are_warnings(
    cli_env: Path, demo: DemoServer
) -> None:
    """Validation warnings must not land in the middle of ``--json`` output (``| jq``)."""
    result = invoke(
        "run",
        str(EXAMPLES / "fan_out_fan_in.yaml"),
        "--json",
        "--param",
        f"base_url={demo.base_url}",
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "succeeded"
    assert "unchecked_reference" in result.stderr


def test_run_param_overrides_a_param(cli_env: Path, demo: DemoServer) -> None:
    path = search_workflow(cli_env, demo.base_url)

    result = invoke("run", str(path), "--json", "--param", "query=dogs", "-p", "limit=2")

    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)["tasks"]["search"]["response_body"]
    assert body["query"] == "dogs"
    assert body["count"] == 2


def test_run_param_is_refused_for_the_single_call_form(cli_env: Path) -> None:
    path = write(cli_env / "single.yaml", "method: GET\nurl: http://127.0.0.1:9/x\n")

    result = invoke("run", str(path), "--param", "query=dogs")

    assert result.exit_code == 1, result.output
    assert "--param needs the DAG form" in result.stdout


def test_run_malformed_param_is_a_usage_error(cli_env: Path) -> None:
    result = invoke("run", str(closed_port_workflow(cli_env)), "--param", "no-equals-sign")

    assert result.exit_code == 2, result.output
    assert "KEY=VALUE" in result.output


@pytest.mark.slow
@pytest.mark.parametrize(("make", "code"), [("ok", 0), ("closed", 1)])
def test_run_exit_code_of_a_real_process(
    tmp_path: Path, demo: DemoServer, make: str, code: int
) -> None:
    path = (
        search_workflow(tmp_path, demo.base_url) if make == "ok" else closed_port_workflow(tmp_path)
    )
    env = env_for(tmp_path / "run.db", JOBQUEUE_ALLOW_PRIVATE_NETWORKS="true")

    done = subprocess.run(
        [script("jobqueue"), "run", str(path), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == code, done
    assert json.loads(done.stdout)["status"] == ("succeeded" if code == 0 else "failed")


# --------------------------------------------------------------------------- server commands


def test_jobs_command_against_no_server_is_a_message(tmp_path: Path) -> None:
    result = invoke("jobs", "list", "--server", f"http://127.0.0.1:{free_port()}")

    assert result.exit_code == 2, result.output
    assert "cannot reach" in result.stderr


def table_row(output: str, first_cell: str) -> list[str]:
    """The cells of the table row whose first cell is ``first_cell`` (split on 2+ spaces)."""
    for line in output.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{output}")


@pytest.mark.slow
def test_submit_wait_and_jobs_commands_against_a_server(tmp_path: Path, demo: DemoServer) -> None:
    with Server(tmp_path, tmp_path / "server.db") as server:
        url = server.url
        submitted = invoke(
            "submit",
            str(EXAMPLES / "fan_out_fan_in.yaml"),
            "--server",
            url,
            "--wait",
            "--param",
            f"base_url={demo.base_url}",
        )
        assert submitted.exit_code == 0, submitted.output + server.output()
        found = re.search(rf"submitted ({JOB_ID.pattern})", submitted.stdout)
        assert found, submitted.stdout
        job_id = found.group(1)
        assert f"job {job_id} succeeded" in submitted.stdout
        assert "5 of 5 done" in submitted.stdout  # the task table's title
        assert table_row(submitted.stdout, "aggregate")[1] == "succeeded"

        listed = invoke("jobs", "list", "--server", url)
        assert listed.exit_code == 0, listed.output
        assert table_row(listed.stdout, "id") == [
            "id",
            "name",
            "status",
            "tasks",
            "created",
            "finished",
        ]
        assert table_row(listed.stdout, job_id)[1:4] == ["fan-out-fan-in", "succeeded", "5"]
        listed_json = invoke("jobs", "list", "--server", url, "--json")
        assert job_id in [item["job_id"] for item in json.loads(listed_json.stdout)["items"]]

        shown = invoke("jobs", "show", job_id, "--server", url)
        assert shown.exit_code == 0, shown.output
        assert table_row(shown.stdout, "job") == ["job", job_id]
        assert table_row(shown.stdout, "status") == ["status", "succeeded, 5 of 5 done"]
        assert table_row(shown.stdout, "aggregate")[1:3] == ["succeeded", "1/2"]
        assert "POST {{ params.base_url }}/aggregate" in shown.stdout
        assert "warnings  6 unchecked_reference (--json lists them)" in shown.stdout
        detail = json.loads(invoke("jobs", "show", job_id, "--server", url, "--json").stdout)
        assert detail["job_id"] == job_id and detail["status"] == "succeeded"
        assert len(detail["tasks"]) == 5

        result = invoke("jobs", "result", job_id, "--server", url)
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        assert document["job_id"] == job_id
        assert document["tasks"]["aggregate"]["response_body"]["n"] == 3

        canceled = invoke("jobs", "cancel", job_id, "--server", url)
        assert canceled.exit_code == 1, canceled.output
        assert canceled.stderr.splitlines() == [
            f"error: conflict: job {job_id} already ended: succeeded (HTTP 409)"
        ]

        retried = invoke("jobs", "retry", job_id, "--server", url)
        assert retried.exit_code == 1, retried.output
        assert retried.stderr.startswith("error: conflict: "), retried.stderr
        assert "only failed or canceled" in retried.stderr and "{" not in retried.stderr

        missing = invoke("jobs", "show", "j_01JD0000000000000000000000", "--server", url)
        assert missing.exit_code == 1, missing.output
        assert missing.stderr.startswith("error: not_found: "), missing.stderr

        # an invalid workflow: the server's 422 report, printed with the file's lines
        broken = write(tmp_path / "broken.yaml", BROKEN_DAG)
        rejected = invoke("submit", str(broken), "--server", url)
        assert rejected.exit_code == 1, rejected.output
        line, column = position(BROKEN_DAG, "ghost", "ghost")
        assert f"{broken}:{line}:{column}: unknown_dependency" in rejected.stdout


def _submit(url: str, document: dict[str, Any]) -> str:
    created = httpx.post(f"{url}/api/v1/jobs", json=document, timeout=10)
    assert created.status_code == 201, created.text
    job_id: str = created.json()["job_id"]
    return job_id


@pytest.mark.slow
def test_jobs_list_pages_and_filters(tmp_path: Path, demo: DemoServer) -> None:
    with Server(tmp_path, tmp_path / "server.db") as server:
        url = server.url
        ok = [
            _submit(url, {"name": f"ok-{i}", "url": demo.url("/search?q=x"), "tags": ["good"]})
            for i in range(3)
        ]
        bad = _submit(
            url,
            {"name": "bad", "url": "http://127.0.0.1:9/x", "max_attempts": 1, "tags": ["bad"]},
        )

        def all_ended() -> bool:
            items = httpx.get(f"{url}/api/v1/jobs", timeout=10).json()["items"]
            return all(i["status"] in ("succeeded", "failed") for i in items)

        poll(all_ended, timeout=30, what="the four jobs ending")

        first = invoke("jobs", "list", "--server", url, "--limit", "2")
        assert first.exit_code == 0, first.output
        found = re.search(r"^next page: jobqueue jobs list (.*)$", first.stdout, re.MULTILINE)
        assert found, first.stdout
        shown_first = JOB_ID.findall(first.stdout.split("next page")[0])
        assert shown_first == [bad, ok[2]]  # newest first
        args = found.group(1).split()
        assert args[:4] == ["--server", url, "--limit", "2"], args
        second = invoke("jobs", "list", *args)
        assert second.exit_code == 0, second.output
        assert JOB_ID.findall(second.stdout) == [ok[1], ok[0]]
        assert "next page" not in second.stdout

        failed = invoke("jobs", "list", "--server", url, "--status", "failed")
        assert JOB_ID.findall(failed.stdout) == [bad], failed.output
        assert table_row(failed.stdout, bad)[1:4] == ["bad", "failed", "1"]
        tagged = invoke("jobs", "list", "--server", url, "--tag", "good")
        assert JOB_ID.findall(tagged.stdout) == ok[::-1], tagged.output
        named = invoke("jobs", "list", "--server", url, "--name", "ok-1")
        assert JOB_ID.findall(named.stdout) == [ok[1]], named.output
        paged = invoke("jobs", "list", "--server", url, "--tag", "good", "--limit", "1")
        assert "--tag good --limit 1 --cursor" in paged.stdout, paged.output
        nothing = invoke("jobs", "list", "--server", url, "--status", "canceled")
        assert nothing.exit_code == 0 and nothing.stdout.startswith("no jobs"), nothing.output

        wrong = invoke("jobs", "list", "--server", url, "--status", "done")
        assert wrong.exit_code == 2, wrong.output  # a usage error, with the choices
        assert "queued" in wrong.output and "canceled" in wrong.output
        bad_cursor = invoke("jobs", "list", "--server", url, "--cursor", "nonsense")
        assert bad_cursor.exit_code == 1, bad_cursor.output
        assert bad_cursor.stderr.startswith("error: invalid_request: "), bad_cursor.stderr


INTERFACE = {
    "name": "CliSearchResult",
    "output_schema": {
        "type": "object",
        "required": ["results"],
        "properties": {"results": {"type": "array"}},
    },
}

USES_A_STORED_INTERFACE = """\
name: uses-stored
params:
  base_url: http://127.0.0.1:9
tasks:
  - name: search
    url: "{{ params.base_url }}/search"
    interface: CliSearchResult
  - name: enrich
    method: POST
    url: "{{ params.base_url }}/enrich"
    body:
      ids: "{{ tasks.search.output.resultz }}"
"""


@pytest.mark.slow
def test_validate_against_a_server_uses_its_interface_masters(tmp_path: Path) -> None:
    path = write(tmp_path / "stored.yaml", USES_A_STORED_INTERFACE)
    with Server(tmp_path, tmp_path / "server.db") as server:
        url = server.url
        stored = httpx.post(f"{url}/api/v1/interface-masters", json=INTERFACE, timeout=10)
        assert stored.status_code == 201, stored.text

        local = invoke("validate", str(path))
        assert local.exit_code == 1, local.output
        line, column = position(USES_A_STORED_INTERFACE, "interface: CliSearchResult", "Cli")
        assert f"{path}:{line}:{column}: unknown_interface" in local.stdout, local.stdout
        assert "checked locally (InterfaceMasters: only those inline in the file)" in local.stdout
        assert "--server URL" in local.stdout

        remote = invoke("validate", str(path), "--server", url)
        assert remote.exit_code == 1, remote.output
        line, column = position(USES_A_STORED_INTERFACE, "resultz", '"')
        assert re.search(
            rf"^error {re.escape(str(path))}:{line}:{column}: unknown_output_path \[task enrich\]",
            remote.stdout,
            re.MULTILINE,
        ), remote.stdout
        assert "unknown_interface" not in remote.stdout
        assert remote.stdout.rstrip().endswith(f"checked against server {url}"), remote.stdout

        fixed = write(
            tmp_path / "fixed.yaml", USES_A_STORED_INTERFACE.replace("resultz", "results")
        )
        valid = invoke("validate", str(fixed), "--server", url)
        assert valid.exit_code == 0, valid.output
        assert f"valid {fixed} (2 task(s)); checked against server {url}" in valid.stdout


@pytest.mark.slow
def test_worker_process_runs_jobs_and_stops_on_sigterm(tmp_path: Path, demo: DemoServer) -> None:
    db = tmp_path / "shared.db"
    grace = 2.0
    with Server(tmp_path, db, JOBQUEUE_EMBEDDED_WORKER="false") as server:
        api = f"{server.url}/api/v1"
        created = httpx.post(
            f"{api}/jobs", json={"method": "GET", "url": demo.url("/search?q=cats")}, timeout=10
        )
        assert created.status_code == 201, created.text
        job_id = created.json()["job_id"]
        # nothing runs it yet: the server has no worker
        assert httpx.get(f"{api}/jobs/{job_id}", timeout=10).json()["status"] == "queued"

        env = env_for(
            db,
            JOBQUEUE_ALLOW_PRIVATE_NETWORKS="true",
            JOBQUEUE_POLL_INTERVAL="0.05",
            JOBQUEUE_SHUTDOWN_GRACE=str(grace),
        )
        with Proc([script("jobqueue"), "worker"], env=env, log=tmp_path / "worker.log") as worker:

            def ended() -> dict[str, Any] | None:
                assert worker.popen.poll() is None, worker.output()
                job: dict[str, Any] = httpx.get(f"{api}/jobs/{job_id}", timeout=10).json()
                return job if job["status"] in ("succeeded", "failed", "canceled") else None

            job = poll(ended, timeout=20, what=f"job {job_id} run by the worker process")
            assert job["status"] == "succeeded", job

            worker.popen.send_signal(signal.SIGTERM)
            try:
                code = worker.popen.wait(timeout=grace + 10)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the worker did not exit after SIGTERM:\n{worker.output()}")
            assert code == 0, worker.output()


@pytest.mark.slow
def test_uvicorn_quickstart_in_a_fresh_directory(tmp_path: Path, demo: DemoServer) -> None:
    """README: ``uvicorn api.main:app`` creates/upgrades ./data/jobqueue.db by itself."""
    workdir = tmp_path / "fresh"
    workdir.mkdir()
    port = free_port()
    env = env_for(None, JOBQUEUE_ALLOW_PRIVATE_NETWORKS="true")
    args = [script("uvicorn"), "api.main:app", "--host", "127.0.0.1", "--port", str(port)]
    with Proc(args, env=env, log=tmp_path / "uvicorn.log", cwd=workdir) as server:
        base = f"http://127.0.0.1:{port}"
        server.wait_http_ok(f"{base}/healthz")
        created = httpx.post(
            f"{base}/api/v1/jobs",
            json={"method": "GET", "url": demo.url("/search?q=cats"), "tags": ["quickstart"]},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        job_id = created.json()["job_id"]

        db = workdir / "data" / "jobqueue.db"
        assert db.is_file(), server.output()
        assert tables(db) >= SCHEMA_TABLES

        def ended() -> dict[str, Any] | None:
            job: dict[str, Any] = httpx.get(f"{base}/api/v1/jobs/{job_id}", timeout=10).json()
            return job if job["status"] in ("succeeded", "failed", "canceled") else None

        assert poll(ended, timeout=20, what="the quickstart job")["status"] == "succeeded"


@pytest.mark.slow
def test_demo_command_runs_the_quickstart_workflow(tmp_path: Path) -> None:
    """``jobqueue demo``: starts the demo API itself and runs search_enrich_notify.yaml."""
    port = free_port()
    done = subprocess.run(
        [script("jobqueue"), "demo", "--port", str(port)],
        env=env_for(tmp_path / "demo.db", JOBQUEUE_POLL_INTERVAL="0.05"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(rf"job {JOB_ID.pattern} succeeded", done.stdout), done.stdout


# --------------------------------------------------------------------------- db upgrade


def test_db_upgrade_creates_the_schema(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    monkeypatch.setenv("JOBQUEUE_DB_URL", f"sqlite+aiosqlite:///{db}")

    result = invoke("db", "upgrade")

    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout
    assert tables(db) >= SCHEMA_TABLES
    again = invoke("db", "upgrade")
    assert again.exit_code == 0, again.output


# --------------------------------------------------------------------------- validate: no database


def test_validate_creates_no_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No JOBQUEUE_DB_URL, an empty working directory: validate must not create ./data."""
    workdir = tmp_path / "empty"
    workdir.mkdir()
    monkeypatch.chdir(workdir)

    result = invoke("validate", str(EXAMPLES / "search_enrich_notify.yaml"))

    assert result.exit_code == 0, result.output
    assert "checked locally (InterfaceMasters: only those inline in the file)" in result.stdout
    assert list(workdir.iterdir()) == []


# --------------------------------------------------------------------------- run: its own database


def _leftover_job(cwd: Path, url: str) -> str:
    """A queued job in ./data/jobqueue.db of ``cwd`` (the default database), with no worker."""

    async def submit() -> str:
        from engine import load_workflow_file

        path = write(cwd / "leftover.yaml", f"name: leftover\nurl: {url}\nmax_attempts: 1\n")
        spec, loaded = load_workflow_file(path)
        engine = await Engine.open(make_config(f"sqlite+aiosqlite:///{cwd / 'data/jobqueue.db'}"))
        try:
            return (await engine.submit(spec, single_call=loaded.single_call)).job_id
        finally:
            await engine.close()

    return asyncio.run(submit())


def job_rows(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT id, status FROM jobs").fetchall())


def test_run_does_not_run_or_join_the_default_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, target_server: TargetServer
) -> None:
    """A leftover queued job in ./data/jobqueue.db is not executed by ``jobqueue run``, and the
    run's own job does not go there (so a ``jobqueue serve`` here could not take it)."""
    leftover = _leftover_job(tmp_path, target_server.url("/leftover"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOBQUEUE_ALLOW_PRIVATE_NETWORKS", "true")
    monkeypatch.setenv("JOBQUEUE_POLL_INTERVAL", "0.05")
    mine = write(tmp_path / "mine.yaml", f"name: mine\nurl: {target_server.url('/json')}\n")

    result = invoke("run", str(mine))

    assert result.exit_code == 0, result.output
    assert [r.path for r in target_server.requests] == ["/json"]
    assert job_rows(tmp_path / "data" / "jobqueue.db") == {leftover: "queued"}


def test_run_with_db_uses_that_database_and_runs_only_its_own_job(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, target_server: TargetServer
) -> None:
    leftover = _leftover_job(tmp_path, target_server.url("/leftover"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOBQUEUE_ALLOW_PRIVATE_NETWORKS", "true")
    monkeypatch.setenv("JOBQUEUE_POLL_INTERVAL", "0.05")
    db = tmp_path / "data" / "jobqueue.db"
    mine = write(tmp_path / "mine.yaml", f"name: mine\nurl: {target_server.url('/json')}\n")

    result = invoke("run", str(mine), "--db", f"sqlite+aiosqlite:///{db}", "--json")

    assert result.exit_code == 0, result.output
    job_id = json.loads(result.stdout)["job_id"]
    assert job_rows(db) == {leftover: "queued", job_id: "succeeded"}
    assert [r.path for r in target_server.requests] == ["/json"], "the leftover was not run"
    assert "shared" in result.stderr


# --------------------------------------------------------------------------- run: Ctrl-C, SIGTERM


def slow_workflow(tmp_path: Path, target: TargetServer) -> Path:
    """``nap`` calls /slow for 30 s; ``after`` waits for it."""
    return write(
        tmp_path / "slow.yaml",
        f"""\
name: cli-slow
tasks:
  - name: nap
    url: {target.url("/slow?seconds=30")}
    timeout_sec: 60
    max_attempts: 1
  - name: after
    url: {target.url("/json")}
    depends_on: [nap]
""",
    )


def _slow_call_in_flight(target: TargetServer) -> bool:
    return any(r.path == "/slow" and r.outcome == "running" for r in target.requests)


def _exit_code(proc: Proc, timeout: float) -> int:
    try:
        return proc.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"jobqueue run did not exit within {timeout} s:\n{proc.output()}")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "code", "name"), [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")]
)
def test_interrupted_run_cancels_its_job_and_its_call(
    tmp_path: Path, target_server: TargetServer, sig: signal.Signals, code: int, name: str
) -> None:
    db = tmp_path / "run.db"
    env = env_for(None, JOBQUEUE_ALLOW_PRIVATE_NETWORKS="true")
    args = [script("jobqueue"), "run", str(slow_workflow(tmp_path, target_server))]
    args += ["--db", f"sqlite+aiosqlite:///{db}"]
    with Proc(args, env=env, log=tmp_path / "run.log") as proc:
        poll(lambda: _slow_call_in_flight(target_server), timeout=30, what="the slow call")
        sent = time.monotonic()
        proc.popen.send_signal(sig)
        assert _exit_code(proc, timeout=10) == code, proc.output()
        assert time.monotonic() - sent < 5, proc.output()
        output = proc.output()

    assert f"{name}: canceling job" in output, output
    assert re.search(rf"job {JOB_ID.pattern} canceled$", output, re.MULTILINE), output
    assert "Traceback" not in output
    assert list(job_rows(db).values()) == ["canceled"]
    with sqlite3.connect(db) as conn:
        tasks = dict(conn.execute("SELECT name, status FROM tasks").fetchall())
    assert tasks == {"nap": "canceled", "after": "canceled"}
    # the call itself was interrupted: the target saw the client go away
    poll(
        lambda: all(r.outcome == "cancelled" for r in target_server.requests if r.path == "/slow"),
        timeout=5,
        what="the slow call interrupted",
    )


@pytest.mark.slow
def test_interrupted_run_on_its_private_database_leaves_nothing(
    tmp_path: Path, target_server: TargetServer
) -> None:
    """Without --db: a temporary SQLite file (under TMPDIR), removed at the end, even after
    Ctrl-C; nothing in the working directory."""
    temp = tmp_path / "temp"
    temp.mkdir()
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = env_for(None, JOBQUEUE_ALLOW_PRIVATE_NETWORKS="true", TMPDIR=str(temp))
    args = [script("jobqueue"), "run", str(slow_workflow(tmp_path, target_server)), "--json"]
    with Proc(args, env=env, log=tmp_path / "run.log", cwd=workdir) as proc:
        poll(lambda: _slow_call_in_flight(target_server), timeout=30, what="the slow call")
        (private,) = temp.glob("jobqueue-run-*/run.db")
        assert list(job_rows(private).values()) == ["running"]
        proc.popen.send_signal(signal.SIGINT)
        assert _exit_code(proc, timeout=10) == 130, proc.output()
        output = proc.output()

    document = json.loads(output[output.index("{") :])
    assert document["status"] == "canceled", output
    assert document["tasks"]["nap"]["status"] == "canceled"
    assert list(temp.iterdir()) == []
    assert list(workdir.iterdir()) == []


@pytest.mark.slow
def test_second_ctrl_c_exits_at_once(tmp_path: Path, target_server: TargetServer) -> None:
    """The first Ctrl-C's cancel cannot commit (another connection holds the write lock), so
    the run waits; a second Ctrl-C leaves at once and says what it may leave behind."""
    db = tmp_path / "run.db"
    env = env_for(None, JOBQUEUE_ALLOW_PRIVATE_NETWORKS="true")
    args = [script("jobqueue"), "run", str(slow_workflow(tmp_path, target_server))]
    args += ["--db", f"sqlite+aiosqlite:///{db}"]
    with Proc(args, env=env, log=tmp_path / "run.log") as proc:
        poll(lambda: _slow_call_in_flight(target_server), timeout=30, what="the slow call")
        lock = sqlite3.connect(db, isolation_level=None)
        try:
            lock.execute("BEGIN IMMEDIATE")
            proc.popen.send_signal(signal.SIGINT)
            poll(lambda: "canceling job" in proc.output(), timeout=10, what="the first Ctrl-C")
            assert proc.popen.poll() is None, proc.output()  # still waiting for the lock
            sent = time.monotonic()
            proc.popen.send_signal(signal.SIGINT)
            assert _exit_code(proc, timeout=5) == 130, proc.output()
            assert time.monotonic() - sent < 3
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        output = proc.output()

    assert "interrupted again: exiting now" in output, output
    assert "may not be canceled yet: jobqueue jobs cancel" in output, output


# --------------------------------------------------------------------------- the live task table


def test_task_table_wraps_the_error_and_keeps_the_fix_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Loopback is refused without JOBQUEUE_ALLOW_PRIVATE_NETWORKS: the message names the fix;
    in an 80-column table it wraps over several lines and nothing of it is lost."""
    monkeypatch.setenv("JOBQUEUE_POLL_INTERVAL", "0.05")
    path = write(tmp_path / "blocked.yaml", "name: blocked\nurl: http://127.0.0.1:9/x\n")

    result = invoke("run", str(path), env={"COLUMNS": "80"})

    assert result.exit_code == 1, result.output
    hint = "(set JOBQUEUE_ALLOW_PRIVATE_NETWORKS=true or list the CIDR in allowed_hosts)"
    assert "".join(hint.split()) in "".join(result.stdout.split()), result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "1 of 1 done" in result.stdout


def _result(statuses: list[str]) -> dict[str, Any]:
    return {
        "job_id": "j_01JD0000000000000000000000",
        "status": "running",
        "tasks": {
            f"task_{i:03d}": {
                "status": status,
                "attempts": 1,
                "response_status": None,
                "duration_ms": None,
                "error": {"type": "x", "message": "it broke"} if status == "failed" else None,
            }
            for i, status in enumerate(statuses)
        },
    }


def test_task_table_summarises_the_rows_that_do_not_fit() -> None:
    statuses = ["succeeded"] * 40 + ["running"] * 3 + ["failed"] * 2 + ["pending"] * 15
    screen = Console(file=io.StringIO(), force_terminal=True, width=100, height=24)

    screen.print(task_table(_result(statuses), screen))
    text = screen.file.getvalue()  # type: ignore[attr-defined]

    lines = re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines()
    assert len(lines) <= 24, text
    assert lines[0].rstrip().endswith("running, 42 of 60 done")
    shown = [line.split()[0] for line in lines if line.strip().startswith("task_")]
    hidden = len(statuses) - len(shown)
    assert hidden > 0
    rows = {name: statuses[int(name[5:])] for name in shown}
    # running and failed tasks are never the ones hidden
    assert sorted(rows.values()).count("running") == 3 and list(rows.values()).count("failed") == 2
    counts = {s: statuses.count(s) - list(rows.values()).count(s) for s in set(statuses)}
    expected = ", ".join(f"{counts[s]} {s}" for s in ("pending", "succeeded") if counts[s])
    assert f"{hidden} more task(s) not shown: {expected}" in " ".join(lines), text


def test_task_table_row_too_tall_for_the_screen_does_not_hide_the_others() -> None:
    result = _result(["failed"] + ["succeeded"] * 10)
    result["tasks"]["task_000"]["error"]["message"] = "word " * 2000
    screen = Console(file=io.StringIO(), force_terminal=True, width=100, height=24)

    screen.print(task_table(result, screen))

    text = re.sub(r"\x1b\[[0-9;]*m", "", screen.file.getvalue())  # type: ignore[attr-defined]
    assert text.count("succeeded") == 10, text
    assert "1 more task(s) not shown: 1 failed" in text, text


def test_task_table_off_a_terminal_shows_every_row() -> None:
    statuses = ["succeeded"] * 60
    piped = Console(file=io.StringIO(), width=100, height=24)

    piped.print(task_table(_result(statuses), piped))

    text = piped.file.getvalue()  # type: ignore[attr-defined]
    assert text.count("task_") == 60
    assert "not shown" not in text


# --------------------------------------------------------------------------- settings errors

PG_DOWN = "postgresql+asyncpg://jobqueue:s3cret@127.0.0.1:{port}/jobqueue"


@pytest.mark.parametrize(
    "command", [("run",), ("validate",), ("worker",), ("serve",), ("db", "upgrade")]
)
def test_bad_setting_is_one_line_naming_the_variable(
    cli_env: Path, command: tuple[str, ...]
) -> None:
    args = (
        [*command, str(EXAMPLES / "retry_backoff.yaml")]
        if command[0] in ("run", "validate")
        else list(command)
    )

    result = invoke(*args, env={"JOBQUEUE_CONCURRENCY": "abc"})

    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "error: JOBQUEUE_CONCURRENCY: input should be a valid integer (got 'abc')"
    assert len(lines) == 2 and "default (4)" in lines[1], lines
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [("run",), ("worker",), ("serve",)])
def test_bad_cidr_in_allowed_hosts(cli_env: Path, command: tuple[str, ...]) -> None:
    args = [*command, str(closed_port_workflow(cli_env))] if command == ("run",) else list(command)

    result = invoke(*args, env={"JOBQUEUE_ALLOWED_HOSTS": "api.example.org,10.0.0.0/33"})

    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "error: JOBQUEUE_ALLOWED_HOSTS: '10.0.0.0/33' is not a valid CIDR", lines
    assert len(lines) == 2 and lines[1].strip().startswith("fix: "), lines
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [("worker",), ("db", "upgrade"), ("serve",)])
def test_unreachable_postgresql_names_the_variable(cli_env: Path, command: tuple[str, ...]) -> None:
    url = PG_DOWN.format(port=free_port())

    result = invoke(*command, env={"JOBQUEUE_DB_URL": url})

    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(
        "error: JOBQUEUE_DB_URL: cannot open postgresql+asyncpg://jobqueue:***@"
    ), lines
    assert "refused" in lines[0].lower() or "connect" in lines[0].lower(), lines
    assert "fix: start PostgreSQL" in lines[1]
    assert "s3cret" not in result.output and "Traceback" not in result.output


def test_verbose_shows_the_traceback(cli_env: Path) -> None:
    url = PG_DOWN.format(port=free_port())

    result = invoke("--verbose", "db", "upgrade", env={"JOBQUEUE_DB_URL": url})

    assert result.exit_code == 2, result.output
    assert "Traceback" in result.stderr
    assert "error: JOBQUEUE_DB_URL: cannot open" in result.stderr


def test_run_with_an_unusable_db_option(cli_env: Path) -> None:
    result = invoke("run", str(closed_port_workflow(cli_env)), "--db", "nonsense")

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: --db: cannot open nonsense: ArgumentError"), (
        result.stderr
    )
    assert "Traceback" not in result.output


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "settings", "first_line"),
    [
        (
            ["run", str(EXAMPLES / "retry_backoff.yaml")],
            {"JOBQUEUE_CONCURRENCY": "abc"},
            "error: JOBQUEUE_CONCURRENCY: input should be a valid integer (got 'abc')",
        ),
        (
            ["worker"],
            {"JOBQUEUE_ALLOWED_HOSTS": "10.0.0.0/33"},
            "error: JOBQUEUE_ALLOWED_HOSTS: '10.0.0.0/33' is not a valid CIDR",
        ),
        (
            ["worker"],
            {"JOBQUEUE_DB_URL": PG_DOWN.format(port=free_port())},
            "error: JOBQUEUE_DB_URL: cannot open postgresql+asyncpg://jobqueue:***@",
        ),
    ],
    ids=["concurrency", "allowed-hosts", "postgresql"],
)
def test_bad_setting_in_a_real_process(
    tmp_path: Path, args: list[str], settings: dict[str, str], first_line: str
) -> None:
    """Exactly two lines on stderr (the error, the fix), nothing on stdout, exit code 2."""
    done = subprocess.run(
        [script("jobqueue"), *args],
        env=env_for(None, **settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2, done
    lines = done.stderr.splitlines()
    assert lines[0].startswith(first_line), done.stderr
    assert len(lines) == 2 and lines[1].startswith("  fix: "), done.stderr
    assert done.stdout == ""
