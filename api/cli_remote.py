"""The CLI's commands against a running server (``--server URL``): submit, jobs list/show/..."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from api.cli_local import load, print_report, task_table
from engine import JobInvalid, Problem

TERMINAL = ("succeeded", "failed", "canceled")


class ServerError(Exception):
    def __init__(self, status: int, detail: Any) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"server answered {status}: {detail}")


def client(server: str) -> httpx.Client:
    return httpx.Client(base_url=server.rstrip("/") + "/api/v1", timeout=30.0)


def call(http: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    response = http.request(method, path, **kwargs)
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        raise ServerError(response.status_code, detail)
    return response.json() if response.content else None


def _report_from_server(detail: Any) -> JobInvalid:
    def problem(d: dict[str, Any]) -> Problem:
        return Problem(
            code=str(d.get("code", "")),
            message=str(d.get("message", "")),
            location=str(d.get("location") or ""),
            task=d.get("task"),
            edge=d.get("edge"),
        )

    return JobInvalid(
        [problem(e) for e in detail.get("errors", [])],
        [problem(w) for w in detail.get("warnings", [])],
    )


def submit(path: Path, params: dict[str, str], server: str, *, wait: bool, console: Console) -> int:
    spec, loaded = load(path, params)
    with client(server) as http:
        try:
            created = call(http, "POST", "/jobs", json=loaded.document)
        except ServerError as exc:
            if exc.status == 422 and isinstance(exc.detail, dict):
                print_report(console, _report_from_server(exc.detail), loaded)
                return 1
            raise
        job_id = created["job_id"]
        console.print(f"submitted {job_id} ({len(spec.tasks)} task(s)) to {server}")
        if not wait:
            return 0
        result = follow(http, job_id)
    console.print(task_table(result, f"job {job_id}"))
    console.print(f"job {job_id} {result['status']}")
    return 0 if result["status"] == "succeeded" else 1


def follow(http: httpx.Client, job_id: str, interval: float = 0.2) -> dict[str, Any]:
    while True:
        result: dict[str, Any] = call(http, "GET", f"/jobs/{job_id}/result")
        if result["status"] in TERMINAL:
            return result
        time.sleep(interval)
