// Every request of the dashboard goes through api(): it adds the API key (when one is set in
// this tab) as "Authorization: Bearer ...", and turns error answers into ApiError.
// The live events are read with fetch() streaming rather than EventSource, because
// EventSource cannot send that header; a dropped connection resumes with Last-Event-ID.

const KEY = "jobqueue.apiKey";
export const API = window.JOBQUEUE.api;
export const UI = window.JOBQUEUE.ui;
export const TERMINAL = new Set(["succeeded", "failed", "canceled"]);

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.detail;
    super((detail && (detail.message || detail.code)) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.detail = detail;
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export async function api(path, { method = "GET", body, headers = {}, raw = false, signal } = {}) {
  const sent = new Headers(headers);
  const key = apiKey();
  if (key) sent.set("Authorization", `Bearer ${key}`);
  if (body !== undefined && typeof body !== "string") {
    sent.set("Content-Type", "application/json");
    body = JSON.stringify(body);
  }
  const response = await fetch(API + path, { method, body, headers: sent, signal });
  if (response.status === 401) askForKey("This server asks for an API key.");
  if (raw) return response;
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function askForKey(reason) {
  const dialog = document.getElementById("key-dialog");
  document.getElementById("key-reason").textContent = reason;
  document.getElementById("key-input").value = apiKey() || "";
  if (!dialog.open) dialog.showModal();
}

function setUpKeyDialog() {
  const dialog = document.getElementById("key-dialog");
  document.getElementById("key-button").addEventListener("click", () =>
    askForKey("The key this tab sends with every request."),
  );
  document.getElementById("key-form").addEventListener("submit", () => {
    const value = document.getElementById("key-input").value.trim();
    if (value) sessionStorage.setItem(KEY, value);
    location.reload();
  });
  document.getElementById("key-forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    dialog.close();
    location.reload();
  });
}

// The messages of a job's event stream: a snapshot, then each change, until the job ends.
// With `after` (an event id), no snapshot: the changes after that event.
export async function* jobEvents(jobId, { signal, after = null } = {}) {
  let last = after;
  for (;;) {
    const headers = last ? { "Last-Event-ID": last } : {};
    let response;
    try {
      response = await api(`/events?job_id=${encodeURIComponent(jobId)}`, { headers, raw: true, signal });
    } catch (error) {
      if (signal && signal.aborted) return;
      await pause(1000);
      continue;
    }
    if (response.status === 204) return;
    if (!response.ok) {
      const text = await response.text();
      throw new ApiError(response.status, text ? JSON.parse(text) : null);
    }
    let ended = false;
    try {
      for await (const [id, message] of sseMessages(response.body)) {
        if (id) last = id;
        yield message;
        if (message.type === "job" && TERMINAL.has(message.status)) ended = true;
        if (message.type === "snapshot" && TERMINAL.has(message.job.status)) ended = true;
      }
    } catch (error) {
      if (signal && signal.aborted) return;
    }
    if (ended) return;
    await pause(500); // the connection dropped: resume after the last event received
  }
}

async function* sseMessages(stream) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let id = null;
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("id:")) id = line.slice(3).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trim());
      }
      if (data.length) yield [id, JSON.parse(data.join("\n"))];
    }
  }
}

function pause(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// --- small DOM helpers shared by the pages ----------------------------------------------------

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// node.replaceChildren(), leaving out the children that are null, undefined or false.
export function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

export function badge(status) {
  return el("span", { class: `badge st-${status}`, "data-status": status }, status);
}

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { hour12: false });
}

export function pretty(value) {
  return el("pre", { class: "json" }, value === undefined ? "" : JSON.stringify(value, null, 2));
}

export function flash(message, kind = "error") {
  const box = document.getElementById("flash");
  box.textContent = message;
  box.className = `flash ${kind}`;
  box.hidden = !message;
}

setUpKeyDialog();
