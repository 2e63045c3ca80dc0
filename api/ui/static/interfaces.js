// The InterfaceMasters with their input and output schemas.
import { api, el, flash, pretty, when } from "./api.js";

async function load() {
  const holder = document.getElementById("masters");
  let masters;
  try {
    masters = await api("/interface-masters");
  } catch (error) {
    flash(String(error.message));
    holder.replaceChildren();
    return;
  }
  const items = Array.isArray(masters) ? masters : masters.items || [];
  if (!items.length) {
    holder.replaceChildren(el("p", { class: "muted" }, "No InterfaceMaster yet (POST /api/v1/interface-masters)."));
    return;
  }
  holder.replaceChildren(...items.map((m) =>
    el("article", { class: "master", "data-master": m.name },
      el("h2", {}, m.name, " ", el("span", { class: "muted" }, `v${m.version}`)),
      el("p", {}, m.description || el("span", { class: "muted" }, "no description")),
      el("p", { class: "muted" }, `id ${m.id} · updated ${when(m.updated_at)}`),
      el("div", { class: "schemas" },
        el("div", {}, el("h3", {}, "input schema"), pretty(m.input_schema)),
        el("div", {}, el("h3", {}, "output schema"), pretty(m.output_schema))))));
}

load();
