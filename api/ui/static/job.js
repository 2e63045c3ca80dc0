// The job page: the DAG drawn once from /graph, then kept current by the event stream (no
// reloads); the selected task's request, response, attempts and errors; cancel and retry.
import { api, badge, el, fill, flash, jobEvents, pretty, TERMINAL, when } from "./api.js";
import { drawGraph, setStatus } from "./graph.js";

const jobId = document.getElementById("job").dataset.jobId;
const state = { job: null, groups: new Map(), rows: new Map(), selected: null, stream: null, lastId: null };
const LOG_MAX = 200;

async function start() {
  let graph;
  try {
    graph = await api(`/jobs/${encodeURIComponent(jobId)}/graph`);
  } catch (error) {
    flash(error.status === 404 ? `Job ${jobId} was not found.` : String(error.message));
    streamState("closed", "no stream");
    return;
  }
  state.groups = drawGraph(document.getElementById("graph"), graph.nodes, graph.edges, select);
  document.getElementById("cancel").addEventListener("click", cancel);
  document.getElementById("retry").addEventListener("click", retry);
  follow();
}

async function follow(after = null) {
  const controller = new AbortController();
  state.stream = controller;
  streamState("connecting", "connecting to the event stream…");
  try {
    for await (const message of jobEvents(jobId, { signal: controller.signal, after })) {
      state.lastId = message.id;
      if (message.type !== "snapshot") streamState("live", "live: changes appear as they happen");
      if (message.type === "snapshot") applySnapshot(message.job);
      else if (message.type === "task") applyTask(message);
      else if (message.type === "job") applyJob(message.status, message);
    }
    streamState("ended", "the job ended; the stream is closed");
  } catch (error) {
    streamState("closed", `the event stream failed: ${error.message}`);
  }
}

function streamState(value, text) {
  const node = document.getElementById("stream-state");
  node.dataset.state = value;
  node.textContent = text;
}

function applySnapshot(job) {
  state.job = job;
  streamState("live", "live: changes appear as they happen");
  document.getElementById("job-name").textContent = job.name || job.job_id;
  document.getElementById("job-times").textContent =
    `created ${when(job.created_at)} · started ${when(job.started_at)} · finished ${when(job.finished_at)}`;
  document.getElementById("job-tags").replaceChildren(
    ...(job.tags.length ? job.tags.map((t) => el("span", { class: "tag" }, t)) : ["no tags"]),
  );
  const body = document.getElementById("task-rows");
  body.replaceChildren();
  state.rows.clear();
  for (const task of job.tasks) {
    const row = el(
      "tr",
      { "data-task": task.name, onclick: () => select(task.name) },
      el("td", {}, el("a", { href: "#", onclick: (ev) => ev.preventDefault() }, task.name)),
      el("td", { class: "status" }, badge(task.status)),
      el("td", { class: "attempt" }, attemptText(task.attempt, task.max_attempts, task.instances)),
      el("td", { class: "started" }, when(task.started_at)),
      el("td", { class: "finished" }, when(task.finished_at)),
    );
    body.append(row);
    state.rows.set(task.name, row);
    const group = state.groups.get(task.name);
    if (group) setStatus(group, task.status);
  }
  applyJob(job.status);
  if (state.selected) showTask(state.selected);
}

function attemptText(attempt, max, instances) {
  const text = max ? `${attempt} / ${max}` : String(attempt);
  if (!instances) return text;
  return `${text} · ${instances.succeeded}/${instances.total} instances done` +
    (instances.failed ? `, ${instances.failed} failed` : "") +
    (instances.running ? `, ${instances.running} running` : "");
}

function applyTask(message) {
  const group = state.groups.get(message.task);
  if (group) setStatus(group, message.status);
  const row = state.rows.get(message.task);
  if (row) {
    row.querySelector(".status").replaceChildren(badge(message.status));
    const task = state.job && state.job.tasks.find((t) => t.name === message.task);
    if (task) {
      task.status = message.status;
      task.attempt = message.attempt;
      row.querySelector(".attempt").textContent = attemptText(task.attempt, task.max_attempts, task.instances);
    }
    if (message.status === "running") row.querySelector(".started").textContent = when(message.at);
    if (TERMINAL.has(message.status) || message.status === "skipped") {
      row.querySelector(".finished").textContent = when(message.at);
    }
  }
  log(message);
  if (state.selected === message.task) showTask(message.task);
}

function applyJob(status, message) {
  const holder = document.getElementById("job-status");
  holder.replaceWith(Object.assign(badge(status), { id: "job-status" }));
  document.getElementById("cancel").disabled = TERMINAL.has(status);
  document.getElementById("retry").disabled = !(status === "failed" || status === "canceled");
  if (state.job) state.job.status = status;
  if (message) log(message);
}

function log(message) {
  const list = document.getElementById("event-log");
  const what = message.type === "job" ? "job" : `${message.task} (attempt ${message.attempt})`;
  const error = message.error ? ` — ${message.error.type || "error"}: ${message.error.message || ""}` : "";
  const retry = message.next_attempt_at ? ` — next attempt at ${when(message.next_attempt_at)}` : "";
  list.prepend(
    el("li", { "data-type": message.type }, el("time", {}, when(message.at)), " ", what, " → ",
      badge(message.status), error, retry),
  );
  while (list.children.length > LOG_MAX) list.lastElementChild.remove();
}

function select(name) {
  state.selected = name;
  for (const [task, group] of state.groups) group.classList.toggle("selected", task === name);
  for (const [task, row] of state.rows) row.classList.toggle("selected", task === name);
  showTask(name);
}

let showing = 0;

async function showTask(name) {
  const ticket = ++showing;
  const path = `/jobs/${encodeURIComponent(jobId)}/tasks/${encodeURIComponent(name)}`;
  let task, attempts;
  try {
    [task, attempts] = await Promise.all([api(path), api(`${path}/attempts`)]);
  } catch (error) {
    if (ticket === showing) flash(String(error.message));
    return;
  }
  if (ticket !== showing) return; // a newer selection or change is being shown
  const panel = document.getElementById("task-panel");
  const result = task.result;
  fill(
    panel,
    el("h2", {}, task.name, " ", badge(task.status)),
    el("p", { class: "muted" },
      `attempt ${task.attempt} of ${task.max_attempts}`,
      task.skip_reason ? ` · skipped: ${task.skip_reason}` : "",
      task.next_attempt_at ? ` · next attempt at ${when(task.next_attempt_at)}` : "",
      task.interface ? ` · interface ${task.interface}` : ""),
    task.error ? el("section", { class: "error", id: "task-error" },
      el("h3", {}, "Error"), el("p", {}, el("b", {}, task.error.type || "error"), ": ", task.error.message || ""),
      pretty(task.error)) : null,
    el("h3", {}, "Request"),
    el("p", {}, el("code", {}, `${task.request.method} ${task.request.url}`)),
    el("details", { open: true }, el("summary", {}, "headers, params, body (as submitted)"),
      pretty({ headers: task.request.headers, params: task.request.params, body: task.request.body })),
    el("h3", {}, "Response"),
    result.response_status === null
      ? el("p", { class: "muted" }, "no response stored yet")
      : el("div", {},
          el("p", {}, `HTTP ${result.response_status}`, result.duration_ms !== null ? ` in ${result.duration_ms} ms` : "",
            result.response_truncated ? " (body truncated)" : ""),
          el("details", {}, el("summary", {}, "headers"), pretty(result.response_headers)),
          pretty(result.response_body)),
    el("h3", {}, "Attempts"),
    attemptTable(attempts.attempts),
  );
}

function attemptTable(attempts) {
  if (!attempts.length) return el("p", { class: "muted" }, "no attempt yet");
  return el("table", { class: "attempts" },
    el("thead", {}, el("tr", {}, ...["#", "status", "worker", "started", "ms", "HTTP", "error"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...attempts.map((a) => el("tr", {},
      el("td", {}, a.attempt), el("td", {}, badge(a.status)), el("td", {}, a.worker || ""),
      el("td", {}, when(a.started_at)), el("td", {}, a.duration_ms ?? ""), el("td", {}, a.response_status ?? ""),
      el("td", {}, a.error ? `${a.error.type || ""}: ${a.error.message || ""}` : "")))));
}

async function cancel() {
  if (!confirm("Cancel this job? Queued tasks stop at once and running calls are interrupted.")) return;
  try {
    await api(`/jobs/${encodeURIComponent(jobId)}/cancel`, { method: "POST" });
    flash("");
  } catch (error) {
    flash(String(error.message));
  }
}

async function retry() {
  try {
    await api(`/jobs/${encodeURIComponent(jobId)}/retry`, { method: "POST" });
    flash("");
  } catch (error) {
    flash(String(error.message));
    return;
  }
  if (state.stream) state.stream.abort();
  follow(state.lastId); // the previous stream ended with the job: go on after its last event
}

start();
