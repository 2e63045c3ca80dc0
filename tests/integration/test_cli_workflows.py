"""``jobqueue workflows``: apply files and directories, list, show, start --wait, against the real
app under uvicorn and a real target."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.integration.target_server import TargetServer
from tests.integration.test_cli import invoke, write
from tests.support.api_server import ApiServer

DEFINITION = """\
name: echo-query
description: one call that echoes its query
params_schema:
  type: object
  properties:
    query: {{type: string}}
    n: {{type: integer}}
  required: [query]
tasks:
  - name: echo
    url: {url}
    params:
      q: "{{{{ params.query }}}}"
      n: "{{{{ params.n }}}}"
params:
  n: 1
"""


def test_apply_list_show_and_start(tmp_path: Path, target_server: TargetServer) -> None:
    folder = tmp_path / "defs"
    folder.mkdir()
    path = write(folder / "echo.yaml", DEFINITION.format(url=target_server.url("/echo")))
    with ApiServer(tmp_path / "api.db") as server:
        url = server.base_url
        created = invoke("workflows", "apply", str(path), "--server", url)
        assert created.exit_code == 0, created.output
        assert "echo-query: created (version 1)" in created.stdout
        again = invoke("workflows", "apply", str(folder), "--server", url)
        assert "echo-query: unchanged (version 1)" in again.stdout
        write(path, path.read_text().replace("n: 1", "n: 2"))
        updated = invoke("workflows", "apply", str(folder), "--server", url)
        assert "echo-query: updated (version 2)" in updated.stdout

        listed = invoke("workflows", "list", "--server", url)
        assert re.search(r"echo-query\s+2\s", listed.stdout), listed.stdout
        shown = invoke("workflows", "show", "echo-query", "--version", "1", "--server", url)
        assert "echo-query version 1 (versions: 1, 2)" in shown.stdout
        shown_json = json.loads(
            invoke("workflows", "show", "echo-query", "--json", "-s", url).stdout
        )
        assert shown_json["document"]["params"] == {"n": 2}

        started = invoke(
            "workflows", "start", "echo-query", "--param", "query=cats", "--wait", "--server", url
        )
        assert started.exit_code == 0, started.output
        assert re.search(r"started j_\w+ \(echo-query version 2\)", started.stdout)
        assert re.search(r"job j_\w+ succeeded", started.stdout)
        (request,) = target_server.requests
        assert request.query_values("q") == ["cats"] and request.query_values("n") == ["2"]

        refused = invoke("workflows", "start", "echo-query", "--param", "n=3", "--server", url)
        assert refused.exit_code == 1
        assert "invalid_params" in refused.stdout


def test_apply_reports_a_misspelt_param_at_its_line(
    tmp_path: Path, target_server: TargetServer
) -> None:
    text = DEFINITION.format(url=target_server.url("/echo")).replace("params.query", "params.qurey")
    path = write(tmp_path / "echo.yaml", text)
    with ApiServer(tmp_path / "api.db") as server:
        refused = invoke("workflows", "apply", str(path), "--server", server.base_url)
    assert refused.exit_code == 1
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "qurey" in t)
    assert f"{path}:{line}:" in refused.stdout, refused.stdout
    assert "unknown_param" in refused.stdout


def test_the_workflow_commands_send_the_api_key(
    tmp_path: Path, target_server: TargetServer
) -> None:
    """Against a server with keys, `jobqueue workflows` sends JOBQUEUE_API_KEY like `submit`."""
    admin = "ops:ops-key-0123456789abcdefghij"
    path = write(tmp_path / "echo.yaml", DEFINITION.format(url=target_server.url("/echo")))
    with ApiServer(tmp_path / "api.db", admin_keys=(admin,)) as server:
        url = server.base_url
        refused = invoke("workflows", "apply", str(path), "--server", url)
        assert refused.exit_code == 1 and "JOBQUEUE_API_KEY" in refused.output
        key = {"JOBQUEUE_API_KEY": admin.partition(":")[2]}
        applied = invoke("workflows", "apply", str(path), "--server", url, env=key)
        assert applied.exit_code == 0, applied.output
        listed = invoke("workflows", "list", "--server", url, env=key)
        assert "echo-query" in listed.stdout, listed.output
