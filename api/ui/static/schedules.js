// The cron schedules, and a schedule's next ticks and last jobs when it is clicked.
import { api, el, fill, flash, UI, when } from "./api.js";

async function load() {
  let page;
  try {
    page = await api("/schedules");
  } catch (error) {
    flash(String(error.message));
    return;
  }
  const rows = page.items.map((s) =>
    el("tr", { "data-schedule": s.name, onclick: () => show(s.name) },
      el("td", {}, el("a", { href: "#", onclick: (ev) => ev.preventDefault() }, s.name)),
      el("td", {}, el("code", {}, s.cron)),
      el("td", {}, s.timezone),
      el("td", {}, s.enabled ? "yes" : "no"),
      el("td", {}, when(s.next_fire_at)),
      el("td", {}, s.overlap),
      el("td", {}, s.catch_up)));
  fill(document.getElementById("schedule-rows"),
    rows.length ? rows : el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No schedule yet.")));
}

async function show(name) {
  let s;
  try {
    s = await api(`/schedules/${encodeURIComponent(name)}`);
  } catch (error) {
    flash(String(error.message));
    return;
  }
  fill(document.getElementById("schedule-detail"),
    el("h2", {}, s.name),
    el("h3", {}, "Next ticks"),
    el("ul", {}, ...(s.upcoming || []).map((t) => el("li", {}, when(t)))),
    el("h3", {}, "Last ticks"),
    (s.recent || []).length
      ? el("ul", {}, ...s.recent.map((r) => el("li", {}, when(r.fire_time), ` ${r.outcome} `,
          r.job_id ? el("a", { href: `${UI}/jobs/${r.job_id}` }, r.job_id) : "", r.detail ? ` ${r.detail}` : "")))
      : el("p", { class: "muted" }, "no tick yet"));
}

load();
