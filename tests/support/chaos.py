"""Chaos: SIGKILL worker processes and the API process while 2,000 jobs run; nothing is lost.

One API process (``jobqueue serve``, no embedded worker) and two ``jobqueue worker`` processes
share one database. A producer thread submits the jobs through ``POST /api/v1/jobs/batch``
(every item with its own idempotency key, so a batch whose answer was lost is sent again
safely) while the workers call the target server. Meanwhile the test SIGKILLs a worker three
times (alternating, each time starting a new one) and the API process once (restarted on the
same port), each time while that process has work in flight: a worker when the target is
serving calls from that very process, the API while a batch request is on the wire.

Then, once nothing is queued or running, it checks that no job was lost or stuck, and that
every repeated call is explained by a kill: for each task, the target saw each attempt number
at most once, the attempts before the succeeded one are ``lost`` (or ``interrupted``), every
``lost`` attempt belongs to a killed worker process and was reaped no sooner than a lease after
its claim, every killed worker lost at least one attempt, and no task succeeded twice.

Shared by ``tests/integration/test_chaos.py`` (SQLite) and ``tests/pg/test_chaos_on_postgres.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from tests.integration.target_server import TargetServer
from tests.support.processes import Proc, Server, env_for, poll, script

log = logging.getLogger("tests.chaos")
log.setLevel(logging.INFO)

JOBS = 2000
#: every CHAIN_EVERY-th job is a chain a -> b -> c whose URLs read the upstream output
CHAIN_EVERY = 10
#: jobs per POST /api/v1/jobs/batch
BATCH = 100
#: the producer waits while more than this many submitted tasks have not been called yet
BACKLOG = 600
#: HTTP calls each worker process runs at once
CONCURRENCY = 16
#: the kills, in order: ("worker", index) or ("api", 0), and the share of all calls that must
#: have been answered before it happens (so that the kills are spread over the run)
KILLS: tuple[tuple[str, int, float], ...] = (
    ("worker", 0, 0.10),
    ("api", 0, 0.25),
    ("worker", 1, 0.40),
    ("worker", 0, 0.65),
)
#: short, so that work lost in a kill comes back soon; long enough that a live worker whose
#: writes wait behind the other processes' on a busy machine still renews its leases (with 2 s,
#: a 3 s stall of one SQLite worker was seen with the box shared by other test suites)
LEASE_SECONDS = 5.0
#: the attempts of every task of every SAMPLE_EVERY-th job are read back, even if called once
SAMPLE_EVERY = 20
#: the longest any single wait may take (the whole run takes well under a minute)
TIMEOUT = 150.0


@dataclass
class Figures:
    backend: str
    jobs: int = 0
    tasks: int = 0
    worker_kills: int = 0
    api_kills: int = 0
    #: calls the target was serving from the killed worker at the moment of each kill
    calls_in_flight_at_worker_kills: list[int] = field(default_factory=list)
    #: a POST /jobs/batch was on the wire when the API process was killed
    batch_on_wire_at_api_kill: bool = False
    #: from the API kill until the new API process answered /healthz
    api_restart_s: float = 0.0
    #: batch requests sent again because the API died or answered 5xx
    batches_resent: int = 0
    #: items of a resent batch that the API had already committed (Idempotent replay)
    items_replayed: int = 0
    calls: int = 0
    duplicate_calls: int = 0
    lost_attempts: int = 0
    interrupted_attempts: int = 0
    #: tasks that needed more than one attempt
    rescued_tasks: int = 0
    wall_s: float = 0.0
    drain_after_last_kill_s: float = 0.0
    #: tasks whose attempts were read back through the API (see _to_read)
    attempt_lists_read: int = 0
    #: reading the jobs and those attempts back through the API afterwards
    read_back_s: float = 0.0

    def summary(self) -> str:
        return (
            f"chaos on {self.backend}: {self.jobs} jobs ({self.tasks} tasks), "
            f"{self.worker_kills} worker kills + {self.api_kills} API kill "
            f"(calls in flight in the killed worker: {self.calls_in_flight_at_worker_kills}; "
            f"batch on the wire at the API kill: {self.batch_on_wire_at_api_kill}, "
            f"API back after {self.api_restart_s:.1f} s, "
            f"{self.batches_resent} batch(es) resent, {self.items_replayed} items replayed); "
            f"{self.calls} calls, {self.duplicate_calls} duplicate calls, "
            f"{self.lost_attempts} lost + {self.interrupted_attempts} interrupted attempts, "
            f"{self.rescued_tasks} tasks rerun; wall {self.wall_s:.1f} s, "
            f"drained {self.drain_after_last_kill_s:.1f} s after the last kill "
            f"(read back in {self.read_back_s:.1f} s)"
        )


# --- the jobs --------------------------------------------------------------------------------


def _seconds(i: int) -> float:
    """How long the target takes for job i: 5 to 40 ms."""
    return 0.005 * (1 + i % 8)


def _documents(target: TargetServer) -> list[dict[str, Any]]:
    """Batch items: ``{"document": ..., "idempotency_key": "chaos-<i>"}``."""
    slow = target.url("/slow")
    items = []
    for i in range(JOBS):
        s = _seconds(i)
        document: dict[str, Any]
        if i % CHAIN_EVERY == CHAIN_EVERY - 1:
            document = {
                "name": f"chain-{i}",
                "tags": ["chaos"],
                "tasks": [
                    {"name": "a", "url": f"{slow}?seconds={s}&job={i}"},
                    {
                        "name": "b",
                        "url": slow + "?seconds={{ tasks.a.output.slept }}" + f"&job={i}",
                    },
                    {
                        "name": "c",
                        "url": slow + "?seconds={{ tasks.b.output.slept }}" + f"&job={i}",
                    },
                ],
            }
        else:
            document = {"url": f"{slow}?seconds={s}&job={i}", "tags": ["chaos"]}
        items.append({"document": document, "idempotency_key": f"chaos-{i}"})
    return items


def _task_names(i: int) -> list[str]:
    return ["a", "b", "c"] if i % CHAIN_EVERY == CHAIN_EVERY - 1 else ["main"]


TOTAL_TASKS = sum(len(_task_names(i)) for i in range(JOBS))


# --- what the target sees --------------------------------------------------------------------


def _answered(target: TargetServer) -> int:
    """Calls the target has finished serving (answered, or cut off by a kill)."""
    with target.state.cond:
        return len(target.state.log) - target.state.in_flight


def _in_flight_ports(target: TargetServer) -> list[int]:
    """Client ports of the calls the target is serving now."""
    with target.state.cond:
        return [e.peer[1] for e in target.state.log if e.outcome == "running" and e.peer]


def _local_ports_to(pid: int, remote_port: int) -> set[int] | None:
    """Local ports of ``pid``'s TCP connections to ``remote_port`` (Linux /proc); None elsewhere."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    inodes = set()
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def _calls_in_flight_from(pid: int, target: TargetServer) -> int:
    """Calls the target is serving for process ``pid`` (all calls if /proc is not there)."""
    in_flight = _in_flight_ports(target)
    ports = _local_ports_to(pid, target.port)
    if ports is None:
        return len(in_flight)
    return sum(1 for port in in_flight if port in ports)


# --- the producer ----------------------------------------------------------------------------


class Producer(threading.Thread):
    """Submits the jobs in batches, resending a batch until the API answers it."""

    def __init__(self, base_url: str, target: TargetServer, figures: Figures) -> None:
        super().__init__(name="chaos-producer", daemon=True)
        self.base_url = base_url
        self.target = target
        self.figures = figures
        self.items = _documents(target)
        #: idempotency key -> job id
        self.ids: dict[str, str] = {}
        self.submitted_tasks = 0
        #: set while a batch request is on the wire
        self.posting = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(timeout=60) as http:
                for start in range(0, JOBS, BATCH):
                    self._wait_for_room()
                    self._submit(http, self.items[start : start + BATCH])
        except BaseException as exc:
            self.error = exc

    def _wait_for_room(self) -> None:
        poll(
            lambda: self.submitted_tasks - _answered(self.target) < BACKLOG,
            timeout=TIMEOUT,
            what="the backlog to shrink",
            interval=0.02,
        )

    def _submit(self, http: httpx.Client, batch: list[dict[str, Any]]) -> None:
        deadline = time.monotonic() + TIMEOUT
        while True:
            self.posting.set()
            try:
                response = http.post(f"{self.base_url}/api/v1/jobs/batch", json={"jobs": batch})
            except httpx.TransportError as exc:
                response, reason = None, repr(exc)
            finally:
                self.posting.clear()
            if response is not None and response.status_code == 200:
                break
            if response is not None:
                reason = f"{response.status_code} {response.text[:200]}"
                assert response.status_code >= 500, reason
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch not accepted within {TIMEOUT} s: {reason}")
            self.figures.batches_resent += 1
            log.info("chaos: batch to be sent again after %s", reason)
            poll(
                lambda: _healthy(http, self.base_url),
                timeout=max(deadline - time.monotonic(), 0.1),
                what="the API answering again",
            )
        for raw, item in zip(batch, response.json()["items"], strict=True):
            assert item["status_code"] == 201, item
            self.ids[raw["idempotency_key"]] = item["job_id"]
            self.figures.items_replayed += bool(item["existing"])
        self.submitted_tasks += sum(len(raw["document"].get("tasks", [0])) for raw in batch)


def _healthy(http: httpx.Client, base: str) -> bool:
    try:
        return http.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


# --- the run ---------------------------------------------------------------------------------


def _drained(base: str) -> bool:
    try:
        for status in ("queued", "running"):
            page = httpx.get(f"{base}/api/v1/jobs", params={"status": status, "limit": 1})
            if page.status_code != 200 or page.json()["items"]:
                return False
    except httpx.TransportError:
        return False
    return True


def _pid_of(worker_name: str) -> int:
    """``host:pid:suffix`` -> pid."""
    return int(worker_name.rsplit(":", 2)[1])


SETTINGS = {
    "JOBQUEUE_ALLOW_PRIVATE_NETWORKS": "true",
    "JOBQUEUE_CONCURRENCY": str(CONCURRENCY),
    "JOBQUEUE_POLL_INTERVAL": "0.05",
    # lost work comes back within LEASE_SECONDS + 0.5 s, and kills do not fail tasks
    "JOBQUEUE_LEASE_SECONDS": str(LEASE_SECONDS),
    "JOBQUEUE_REAPER_INTERVAL": "0.5",
    "JOBQUEUE_MAX_RESCUES": "10",
    "JOBQUEUE_SHUTDOWN_GRACE": "1",
}


class Chaos:
    """The processes of one run, and the kills."""

    def __init__(self, tmp_path: Path, target: TargetServer, db_url: str, figures: Figures):
        self.tmp_path = tmp_path
        self.target = target
        self.settings = dict(SETTINGS, JOBQUEUE_DB_URL=db_url)
        self.figures = figures
        self.started: Counter[str] = Counter()
        #: every process started, killed ones included (all are stopped at the end)
        self.procs: list[Proc] = []
        self.killed_pids: set[int] = set()
        self.api = self._start_api()
        try:
            self.workers = [self._start_worker(0), self._start_worker(1)]
        except BaseException:
            self.stop()
            raise
        self.producer = Producer(self.api.url, target, figures)

    def _start_worker(self, index: int) -> Proc:
        self.started[f"worker{index}"] += 1
        log_file = self.tmp_path / f"worker{index}-{self.started[f'worker{index}']}.log"
        worker = Proc(
            [script("jobqueue"), "worker"], env=env_for(None, **self.settings), log=log_file
        )
        self.procs.append(worker)
        return worker

    def _start_api(self, port: int | None = None) -> Server:
        self.started["api"] += 1
        api = Server(
            self.tmp_path,
            None,
            port=port,
            log_name=f"api-{self.started['api']}.log",
            **self.settings,
            JOBQUEUE_EMBEDDED_WORKER="false",
        )
        self.procs.append(api)
        try:
            # generous: on a busy 2-core box the imports alone can take 10 s and more
            api.wait_http_ok(f"{api.url}/healthz", timeout=TIMEOUT)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; its log:\n{api.output()[-4000:]}") from exc
        return api

    def _progressed(self, share: float) -> bool:
        _raise_if_failed(self.producer)
        return _answered(self.target) >= share * TOTAL_TASKS

    def kill_worker(self, index: int, share: float) -> float:
        """Once ``share`` of the calls are done, SIGKILL worker ``index`` while the target is
        serving two or more of its calls; start another one. Returns the time of the kill."""
        worker = self.workers[index]
        pid = worker.popen.pid

        def busy() -> int:
            if not self._progressed(share):
                return 0
            n = _calls_in_flight_from(pid, self.target)
            return n if n >= 2 else 0

        in_flight = poll(busy, timeout=TIMEOUT, what=f"worker {index} busy", interval=0.01)
        worker.popen.kill()
        killed_at = time.monotonic()
        worker.popen.wait(10)
        self.killed_pids.add(pid)
        self.figures.worker_kills += 1
        self.figures.calls_in_flight_at_worker_kills.append(in_flight)
        log.info("chaos: SIGKILL worker %d (pid %d): %d calls in flight", index, pid, in_flight)
        self.workers[index] = self._start_worker(index)
        return killed_at

    def kill_api(self, share: float) -> float:
        """Once ``share`` of the calls are done, SIGKILL the API process while a batch request
        is on the wire (if the producer has finished: while calls are in flight); restart it on
        the same port. Returns the time of the kill."""

        def posting() -> bool:
            if not self._progressed(share):
                return False
            if self.producer.is_alive():
                return self.producer.posting.is_set()
            return self.target.in_flight > 0

        poll(posting, timeout=TIMEOUT, what="a batch on the wire", interval=0.002)
        on_wire = self.producer.posting.is_set()
        self.api.popen.kill()
        killed_at = time.monotonic()
        self.api.popen.wait(10)
        self.figures.api_kills += 1
        self.figures.batch_on_wire_at_api_kill = on_wire
        log.info("chaos: SIGKILL API (pid %d), batch on the wire: %s", self.api.popen.pid, on_wire)
        self.api = self._start_api(self.api.port)
        self.figures.api_restart_s = time.monotonic() - killed_at
        return killed_at

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()


def run_chaos(tmp_path: Path, target: TargetServer, db_url: str, backend: str) -> Figures:
    """The whole scenario; fails on the first broken promise, returns the figures."""
    figures = Figures(backend=backend, jobs=JOBS, tasks=TOTAL_TASKS)
    chaos = Chaos(tmp_path, target, db_url, figures)
    base = chaos.api.url
    began = last_kill = time.monotonic()
    try:
        chaos.producer.start()
        for kind, index, share in KILLS:
            if kind == "worker":
                last_kill = chaos.kill_worker(index, share)
            else:
                last_kill = chaos.kill_api(share)
            log.info("chaos: kill at %.1f s, %d calls done", last_kill - began, _answered(target))
        chaos.producer.join(TIMEOUT)
        _raise_if_failed(chaos.producer)
        assert not chaos.producer.is_alive(), "the producer did not finish"
        log.info("chaos: every job submitted at %.1f s", time.monotonic() - began)
        poll(lambda: _drained(base), timeout=TIMEOUT, what="nothing queued or running")
        drained = time.monotonic()
        figures.wall_s = drained - began
        figures.drain_after_last_kill_s = drained - last_kill
        calls = _calls(target)
        statuses, attempts = asyncio.run(_read_back(base, _to_read(chaos.producer.ids, calls)))
        figures.read_back_s = time.monotonic() - drained
    finally:
        chaos.stop()
    _check(figures, chaos.producer.ids, statuses, attempts, calls, chaos.killed_pids)
    _check_chain_inputs(target)
    _report(figures, tmp_path)
    return figures


def _raise_if_failed(producer: Producer) -> None:
    if producer.error is not None:
        raise AssertionError(f"the producer failed: {producer.error!r}") from producer.error


Attempts = dict[tuple[str, str], list[dict[str, Any]]]
Calls = dict[tuple[str, str], list[int]]


async def _read_back(base: str, keys: list[tuple[str, str]]) -> tuple[dict[str, str], Attempts]:
    """Every job tagged ``chaos`` (id -> status), and the attempts of these tasks, through the
    API (aiohttp, 16 requests at a time)."""
    connector = aiohttp.TCPConnector(limit=16)
    async with aiohttp.ClientSession(base, connector=connector, raise_for_status=True) as http:
        statuses: dict[str, str] = {}
        params = {"tag": "chaos", "limit": "1000"}
        while True:
            async with http.get("/api/v1/jobs", params=params) as response:
                page = await response.json()
            for item in page["items"]:
                assert item["job_id"] not in statuses, f"{item['job_id']} listed twice"
                statuses[item["job_id"]] = item["status"]
            if not page["next_cursor"]:
                break
            params["cursor"] = page["next_cursor"]

        async def attempts_of(job_id: str, task: str) -> list[dict[str, Any]]:
            async with http.get(f"/api/v1/jobs/{job_id}/tasks/{task}/attempts") as response:
                rows: list[dict[str, Any]] = (await response.json())["attempts"]
                return rows

        rows = await asyncio.gather(*(attempts_of(*key) for key in keys))
    return statuses, dict(zip(keys, rows, strict=True))


def _calls(target: TargetServer) -> Calls:
    """(job id, task) -> the attempt numbers of the calls the target received."""
    calls: Calls = defaultdict(list)
    for request in target.requests:
        job, task = request.header("x-jobqueue-job"), request.header("x-jobqueue-task")
        assert job and task, request
        calls[(job, task)].append(int(request.header("x-jobqueue-attempt") or 0))
    return calls


def _to_read(ids: dict[str, str], calls: Calls) -> list[tuple[str, str]]:
    """The tasks whose attempts are read back: every task the target did not see exactly once
    as attempt 1, and every task of every SAMPLE_EVERY-th job.

    The others need no read: their job succeeded and a ``succeeded`` attempt needs a call, so
    a task called once, as attempt 1, had no other attempt (a second claim, numbered 2 or
    more, either calls or is lost and followed by one that calls). The sample checks this too.
    """
    keys = []
    for key, job_id in ids.items():
        i = int(key.removeprefix("chaos-"))
        for task in _task_names(i):
            if calls.get((job_id, task)) != [1] or i % SAMPLE_EVERY == 0:
                keys.append((job_id, task))
    return keys


def _check(
    figures: Figures,
    ids: dict[str, str],
    statuses: dict[str, str],
    attempts: Attempts,
    calls: Calls,
    killed_pids: set[int],
) -> None:
    # nothing lost, nothing stuck, nothing created twice
    assert len(ids) == JOBS and len(set(ids.values())) == JOBS
    assert set(statuses) == set(ids.values()), "every submitted job exists, and no other"
    not_done = Counter(s for s in statuses.values() if s != "succeeded")
    assert not not_done, f"jobs not succeeded: {not_done}"
    tasks = {
        (job_id, t)
        for key, job_id in ids.items()
        for t in _task_names(int(key.removeprefix("chaos-")))
    }
    assert set(calls) == tasks, "the target saw a call from every task, and no other"

    lost_by_pid: dict[int, list[str]] = defaultdict(list)
    for key, rows in attempts.items():
        by_number = {row["attempt"]: row for row in rows}
        succeeded = [row["attempt"] for row in rows if row["status"] == "succeeded"]
        assert len(succeeded) == 1, f"{key}: one succeeded attempt, got {rows}"
        assert succeeded[0] == max(by_number), f"{key}: the last attempt succeeded: {rows}"
        seen = Counter(calls[key])
        assert max(seen.values()) == 1, f"{key}: an attempt called twice: {calls[key]}"
        assert seen[succeeded[0]] == 1, f"{key}: the succeeded attempt was called: {calls[key]}"
        for number in seen:
            assert number in by_number, f"{key}: call of attempt {number} not recorded: {rows}"
        for row in rows:
            if row["attempt"] == succeeded[0]:
                continue
            assert row["status"] in ("lost", "interrupted"), f"{key}: {rows}"
            if row["status"] == "lost":
                figures.lost_attempts += 1
                held = _seconds_between(row["started_at"], row["finished_at"])
                assert held >= LEASE_SECONDS - 0.01, (
                    f"{key}: reaped before its lease ran out: {row}"
                )
                lost_by_pid[_pid_of(row["worker"])].append(
                    f"{key} attempt {row['attempt']}: {row['started_at']} - {row['finished_at']}"
                )
            else:
                figures.interrupted_attempts += 1
        figures.rescued_tasks += len(rows) > 1

    spurious = {pid: lost for pid, lost in lost_by_pid.items() if pid not in killed_pids}
    assert not spurious, (
        f"attempts lost by worker processes that were not killed (their leases were not renewed "
        f"for {LEASE_SECONDS} s: a stalled process, or a heartbeat bug): {spurious}"
    )
    quiet = killed_pids - set(lost_by_pid)
    assert not quiet, f"killed workers that lost no attempt: {quiet}"

    figures.attempt_lists_read = len(attempts)
    figures.calls = sum(len(numbers) for numbers in calls.values())
    figures.duplicate_calls = figures.calls - len(tasks)


def _seconds_between(start: str, end: str) -> float:
    """Seconds from one API time (ISO 8601, ``Z``) to another."""
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _check_chain_inputs(target: TargetServer) -> None:
    """b and c rendered their URL from the upstream output, also when that task was rerun."""
    for request in target.requests:
        if request.header("x-jobqueue-task") in ("b", "c"):
            i = int(request.query_values("job")[0])
            assert float(request.query_values("seconds")[0]) == _seconds(i), request


def _report(figures: Figures, tmp_path: Path) -> None:
    text = figures.summary()
    print(f"\n{text}")
    log.info("%s", text)
    (tmp_path / "chaos-figures.json").write_text(json.dumps(asdict(figures), indent=2))


__all__ = ["Figures", "run_chaos"]
