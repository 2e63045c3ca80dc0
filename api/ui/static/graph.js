// The DAG as SVG: a layered layout (each task one column right of its furthest upstream task,
// rows ordered by the mean row of their neighbours to limit crossings), edges as curves.

const SVG = "http://www.w3.org/2000/svg";
const W = 150;
const H = 32;
const GAP_X = 60;
const GAP_Y = 14;
const PAD = 12;

export function layout(nodes, edges) {
  const names = nodes.map((n) => n.name);
  const preds = new Map(names.map((n) => [n, []]));
  const succs = new Map(names.map((n) => [n, []]));
  for (const e of edges) {
    if (!preds.has(e.to) || !succs.has(e.from)) continue;
    preds.get(e.to).push(e.from);
    succs.get(e.from).push(e.to);
  }
  // Kahn's order, so that every task's column is known before its successors'.
  const indegree = new Map(names.map((n) => [n, preds.get(n).length]));
  const queue = names.filter((n) => indegree.get(n) === 0);
  const column = new Map();
  for (let i = 0; i < queue.length; i++) {
    const name = queue[i];
    column.set(name, Math.max(0, ...preds.get(name).map((p) => column.get(p) + 1)));
    for (const s of succs.get(name)) {
      indegree.set(s, indegree.get(s) - 1);
      if (indegree.get(s) === 0) queue.push(s);
    }
  }
  for (const name of names) if (!column.has(name)) column.set(name, 0); // a cycle cannot be stored
  const columns = [];
  for (const name of names) (columns[column.get(name)] ||= []).push(name);
  const row = new Map();
  const place = (col) => col.forEach((name, i) => row.set(name, i));
  columns.forEach(place);
  const mean = (list) => (list.length ? list.reduce((a, n) => a + row.get(n), 0) / list.length : null);
  for (let sweep = 0; sweep < 2; sweep++) {
    for (const col of columns.slice(1)) {
      sortBy(col, (n) => mean(preds.get(n)));
      place(col);
    }
    for (const col of columns.slice(0, -1).reverse()) {
      sortBy(col, (n) => mean(succs.get(n)));
      place(col);
    }
  }
  const tallest = Math.max(...columns.map((c) => c.length));
  const position = new Map();
  columns.forEach((col, x) => {
    const offset = ((tallest - col.length) * (H + GAP_Y)) / 2;
    col.forEach((name, y) => {
      position.set(name, { x: PAD + x * (W + GAP_X), y: PAD + offset + y * (H + GAP_Y) });
    });
  });
  return {
    position,
    width: PAD * 2 + columns.length * W + (columns.length - 1) * GAP_X,
    height: PAD * 2 + tallest * H + (tallest - 1) * GAP_Y,
  };
}

function sortBy(list, key) {
  const keyed = list.map((name, i) => [key(name) ?? i, i, name]);
  keyed.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  keyed.forEach(([, , name], i) => (list[i] = name));
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// Draws the graph into <svg>; returns name -> node group (whose data-status the page updates).
export function drawGraph(target, nodes, edges, onSelect) {
  const { position, width, height } = layout(nodes, edges);
  target.replaceChildren();
  target.setAttribute("width", width);
  target.setAttribute("height", height);
  target.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const defs = svg("defs");
  const marker = svg("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5",
    markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse",
  });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }));
  defs.append(marker);
  target.append(defs);
  for (const e of edges) {
    const a = position.get(e.from);
    const b = position.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const mid = (x1 + x2) / 2;
    target.append(svg("path", {
      d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`,
      class: "edge", "marker-end": "url(#arrow)", "data-edge": `${e.from}->${e.to}`,
    }));
  }
  const groups = new Map();
  for (const n of nodes) {
    const p = position.get(n.name);
    const group = svg("g", {
      class: "node", tabindex: "0", role: "button", "data-task": n.name, "data-status": n.status,
      transform: `translate(${p.x} ${p.y})`,
    });
    const title = svg("title");
    title.textContent = `${n.name}: ${n.status}`;
    const label = svg("text", { x: 10, y: H / 2 + 4 });
    label.textContent = n.name.length > 19 ? `${n.name.slice(0, 18)}…` : n.name;
    group.append(title, svg("rect", { width: W, height: H, rx: 6 }), label);
    group.addEventListener("click", () => onSelect(n.name));
    group.addEventListener("keydown", (ev) => ev.key === "Enter" && onSelect(n.name));
    target.append(group);
    groups.set(n.name, group);
  }
  return groups;
}

export function setStatus(group, status) {
  if (group.getAttribute("data-status") === status) return;
  group.setAttribute("data-status", status);
  group.querySelector("title").textContent = `${group.dataset.task}: ${status}`;
}
