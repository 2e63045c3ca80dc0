// Paste a workflow (YAML or JSON: YAML reads both), validate it, or submit it and go to its page.
import { api, el, fill, UI } from "./api.js";

const textarea = document.getElementById("document");
const report = document.getElementById("report");

function send(path) {
  return api(path, {
    method: "POST",
    body: textarea.value,
    headers: { "Content-Type": "application/yaml" },
  });
}

function problemTable(title, problems, kind) {
  if (!problems || !problems.length) return null;
  const columns = ["code", "task", "location", "line", "edge", "message"];
  const shown = columns.filter((c) => problems.some((p) => p[c] !== undefined && p[c] !== null));
  return el("section", { class: `problems ${kind}` },
    el("h2", {}, `${problems.length} ${problems.length === 1 ? title.slice(0, -1) : title}`),
    el("table", {},
      el("thead", {}, el("tr", {}, ...shown.map((c) => el("th", {}, c)))),
      el("tbody", {}, ...problems.map((p) =>
        el("tr", { class: kind },
          ...shown.map((c) => el("td", { class: c }, c === "location" ? el("code", {}, p[c] ?? "") : (p[c] ?? ""))))))));
}

function showReport(error) {
  const detail = error.detail || {};
  if (detail.errors) {
    fill(
      report,
      el("p", { class: "invalid" }, "The workflow is not valid: nothing was created."),
      problemTable("errors", detail.errors, "error"),
      problemTable("warnings", detail.warnings, "warning"),
    );
  } else {
    report.replaceChildren(el("p", { class: "invalid" }, `HTTP ${error.status}: ${error.message}`));
  }
}

document.getElementById("validate").addEventListener("click", async () => {
  report.replaceChildren(el("p", { class: "muted" }, "Validating…"));
  try {
    const answer = await send("/jobs/validate");
    fill(
      report,
      el("p", { class: "valid" }, "The workflow is valid."),
      problemTable("warnings", answer.warnings, "warning"),
    );
  } catch (error) {
    showReport(error);
  }
});

document.getElementById("submit-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  report.replaceChildren(el("p", { class: "muted" }, "Submitting…"));
  try {
    const answer = await send("/jobs");
    location.assign(`${UI}/jobs/${answer.job_id}`);
  } catch (error) {
    showReport(error);
  }
});
