// The job list: filters, cursor paging (one page at a time, never the whole table), the counts
// per status and the jobs finished per minute.
import { api, badge, el, flash, UI, when } from "./api.js";

const LIMIT = 50;
const form = document.getElementById("filters");
const state = { cursors: [null], page: 0, next: null };

function filters() {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData(form)) if (value) params.set(name, value);
  return params;
}

async function loadPage() {
  const params = filters();
  params.set("limit", LIMIT);
  const cursor = state.cursors[state.page];
  if (cursor) params.set("cursor", cursor);
  let page;
  try {
    page = await api(`/jobs?${params}`);
  } catch (error) {
    flash(String(error.message));
    return;
  }
  flash("");
  state.next = page.next_cursor;
  const rows = page.items.map((job) =>
    el("tr", { "data-job": job.job_id },
      el("td", {}, el("a", { href: `${UI}/jobs/${job.job_id}` }, el("code", {}, job.job_id))),
      el("td", {}, job.name || ""),
      el("td", {}, badge(job.status)),
      el("td", {}, job.n_tasks),
      el("td", {}, ...job.tags.map((t) => el("span", { class: "tag" }, t))),
      el("td", {}, when(job.created_at)),
      el("td", {}, when(job.finished_at)),
    ),
  );
  const body = document.getElementById("job-rows");
  body.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No job matches."))]));
  document.getElementById("prev").disabled = state.page === 0;
  document.getElementById("next").disabled = !state.next;
  document.getElementById("page-info").textContent = `page ${state.page + 1}`;
}

async function loadStats() {
  let stats;
  try {
    stats = await api("/stats?minutes=15");
  } catch (error) {
    return;
  }
  const counts = document.getElementById("counts");
  counts.replaceChildren(
    el("button", { type: "button", class: "count", onclick: () => filterStatus("") },
      el("b", {}, stats.total), " jobs"),
    ...["queued", "running", "succeeded", "failed", "canceled"].map((s) =>
      el("button", { type: "button", class: "count", "data-status": s, onclick: () => filterStatus(s) },
        el("b", {}, stats.counts[s] || 0), " ", badge(s))),
  );
  drawThroughput(stats.throughput);
}

function drawThroughput(minutes) {
  const svg = document.getElementById("throughput");
  const width = 320, height = 56, gap = 2;
  const bar = (width - gap * (minutes.length - 1)) / minutes.length;
  const total = (m) => m.succeeded + m.failed + m.canceled;
  const top = Math.max(1, ...minutes.map(total));
  const NS = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  minutes.forEach((m, i) => {
    let y = height;
    for (const status of ["succeeded", "failed", "canceled"]) {
      const h = (m[status] / top) * height;
      if (!h) continue;
      y -= h;
      const rect = document.createElementNS(NS, "rect");
      rect.setAttribute("x", i * (bar + gap));
      rect.setAttribute("y", y);
      rect.setAttribute("width", bar);
      rect.setAttribute("height", h);
      rect.setAttribute("class", `bar st-${status}`);
      const title = document.createElementNS(NS, "title");
      title.textContent = `${when(m.minute)}: ${m[status]} ${status}`;
      rect.append(title);
      svg.append(rect);
    }
  });
  const sum = minutes.reduce((a, m) => a + total(m), 0);
  document.getElementById("throughput-caption").textContent =
    `${sum} finished in the last ${minutes.length} minutes (peak ${top}/min)`;
}

function filterStatus(status) {
  form.elements.status.value = status;
  restart();
}

function restart() {
  state.cursors = [null];
  state.page = 0;
  loadPage();
}

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  restart();
});
form.addEventListener("reset", () => setTimeout(restart));
document.getElementById("next").addEventListener("click", () => {
  if (!state.next) return;
  state.cursors[state.page + 1] = state.next;
  state.page += 1;
  loadPage();
});
document.getElementById("prev").addEventListener("click", () => {
  if (state.page === 0) return;
  state.page -= 1;
  loadPage();
});

loadPage();
loadStats();
setInterval(loadStats, 5000);
