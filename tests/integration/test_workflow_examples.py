"""The definitions of examples/workflows/definitions, applied to a real server and started as
the examples' comments say, against the demo API."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.test_cli import invoke
from tests.support.api_server import ApiServer
from tests.support.demo_server import DemoServer

DEFINITIONS = Path(__file__).resolve().parents[2] / "examples" / "workflows" / "definitions"


def test_apply_the_folder_and_start_the_sub_workflow_example(
    tmp_path: Path, demo: DemoServer
) -> None:
    with ApiServer(tmp_path / "api.db") as server:
        url = server.base_url
        applied = invoke("workflows", "apply", str(DEFINITIONS), "--server", url)
        assert applied.exit_code == 0, applied.output
        assert "enrich-one: created (version 1)" in applied.stdout
        assert "search-and-enrich-each: created (version 1)" in applied.stdout

        alone = invoke(
            "workflows", "start", "enrich-one", "--param", "id=42",
            "--param", f"base_url={demo.base_url}", "--wait", "--server", url,
        )  # fmt: skip
        assert alone.exit_code == 0, alone.output

        started = invoke(
            "workflows", "start", "search-and-enrich-each", "--param", "query=dogs",
            "--param", f"base_url={demo.base_url}", "--wait", "--server", url,
        )  # fmt: skip
        assert started.exit_code == 0, started.output
        assert re.search(r"job j_\w+ succeeded", started.stdout)
        (note,) = demo.notifications
        assert note["channel"] == "enriched" and note["count"] == 3
        assert note["message"] == "enriched 3 results for dogs"

        refused = invoke("workflows", "start", "enrich-one", "--server", url)
        assert refused.exit_code == 1 and "invalid_params" in refused.stdout
