// The review page: shows one sampled row at a time and records a verdict per key press.
// All text from the run is placed with textContent, never parsed as HTML.
"use strict";

const RULES = {
  stated: "stated in the request",
  stated_number: "number stated in the request",
  stated_time: "time stated in the request",
  stated_date: "date stated in the request",
  enum: "one of the parameter's allowed values",
  default: "the parameter's default",
  passed_on: "not judged from text (left to the semantic check)",
  "implied:place_qualifier": "implied: a stated place with its region",
  "implied:place_nickname": "implied: the city a stated nickname stands for",
  "implied:region_code": "implied: the code or name of a stated state or country",
  "implied:currency_code": "implied: the code of a stated currency",
  "implied:month_day": "implied: a stated month and day, with the year written elsewhere",
  "implied:joined_list": "implied: stated values joined into one string",
  "implied:json_text": "implied: stated values written as JSON",
  "implied:near_spelling": "implied: a stated word the request misspells by one letter",
  "implied:date_format": "implied: a stated date (and time) written in another format",
  "implied:relative_date": "implied: a date counted from the day the request states as today",
  "implied:word_order": "implied: stated words in another order",
  "implied:month_number": "implied: the number of a stated month",
  "implied:unspaced_text": "implied: text the request holds inside a longer run of its script",
  "implied:described_code": "implied: the code the parameter's description gives for what the request names",
  "implied:described_default": "implied: the value the parameter's description says to use when none is given",
  "implied:described_format": "implied: stated values laid out by the description's template",
};
const POLL_MS = 3000;

let state = null;
let currentId = null;     // id of the row on screen: the sample can change around it while a run writes
let choosing = false;     // the error-class list is open
let busy = false;         // a label is being saved: keys that label wait for its answer
let issued = 0;           // requests sent, and the newest whose answer was applied: an older answer
let applied = 0;          // arriving late never overwrites a newer state
const undoStack = [];     // [{row, previous: {label, error_class} | null}] of this tab's labels

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.entries(props || {}).forEach(([key, value]) => {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  });
  children.flat().forEach((child) => {
    if (child === null || child === undefined) return;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  });
  return node;
}

function labelOf(row) {
  return state.labels[String(row.id)] || null;
}

function currentIndex() {
  const index = state.rows.findIndex((row) => row.id === currentId);
  return index >= 0 ? index : 0;
}

function show(index) {
  currentId = state.rows.length ? state.rows[(index + state.rows.length) % state.rows.length].id : null;
}

function firstUnlabelled(from) {
  const rows = state.rows;
  for (let step = 0; step < rows.length; step += 1) {
    const index = (from + step) % rows.length;
    if (!labelOf(rows[index])) return index;
  }
  return -1;
}

async function call(method, path, body) {
  const sequence = ++issued;
  const response = await fetch(path, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const payload = await response.json();
  if (!response.ok) throw new Error(payload.error || response.statusText);
  if (sequence > applied) {  // the newest answer so far: it holds the newest state
    applied = sequence;
    state = payload;
    if (currentId === null || !state.rows.some((row) => row.id === currentId)) show(Math.max(0, firstUnlabelled(0)));
  }
}

function notice(text, kind) {
  const box = document.getElementById("notices");
  box.append(el("div", { class: "notice " + (kind || ""), role: kind === "error" ? "alert" : "status", text }));
}

function queryWithMarks(row) {
  const spans = [];
  row.calls.forEach((c) => c.arguments.forEach((a) => a.evidence.forEach((e) => {
    if (e.span) spans.push(e.span);
  })));
  spans.sort((a, b) => a[0] - b[0]);
  const parts = [];
  let at = 0;
  spans.forEach(([start, end]) => {
    if (start < at) return;  // overlapping: the first wins
    parts.push(row.query.slice(at, start));
    parts.push(el("mark", { text: row.query.slice(start, end) }));
    at = end;
  });
  parts.push(row.query.slice(at));
  return el("div", { class: "query", id: "query" }, parts);
}

function callTable(row) {
  if (!row.calls.length) {
    const removed = row.removed.length ? " Taken out of the offered tools: " + row.removed.join(", ") + "." : "";
    return el("p", { class: "muted", id: "no-call", text: "No calls: the answer is to call nothing." + removed });
  }
  return row.calls.map((c, index) => {
    const body = el("tbody");
    c.arguments.forEach((a) => {
      a.evidence.forEach((e, i) => {
        const grounded = e.rule !== null;
        body.append(el("tr", { class: grounded ? "" : "ungrounded" },
          el("td", {}, i === 0 ? el("code", { text: a.name }) : ""),
          el("td", {}, el("code", { text: (e.path ? e.path + " = " : "") + e.value })),
          el("td", { class: "rule", text: grounded ? RULES[e.rule] || e.rule : "not stated in the request" })));
      });
      if (!a.evidence.length) {
        body.append(el("tr", {}, el("td", {}, el("code", { text: a.name })),
          el("td", {}, el("code", { text: a.value })), el("td", { class: "rule muted", text: "empty" })));
      }
    });
    const ran = c.outcome ? [el("span", { class: c.outcome === "ok" ? "badge" : "badge bad", text: c.outcome }),
      " ", el("code", { class: "result", text: c.result })] : [el("span", { class: "muted", text: "not run" })];
    return el("div", { class: "call", "data-index": String(index) },
      el("div", { class: "call-head" }, el("b", {}, el("code", { text: c.name })), " → ", ran),
      el("table", { class: "args" },
        el("thead", {}, el("tr", {}, el("th", { text: "argument" }), el("th", { text: "value" }),
          el("th", { text: "grounding" }))), body));
  });
}

function toolList(row) {
  return row.tools.map((t) => el("details", { class: row.called.includes(t.name) ? "tool called" : "tool" },
    el("summary", {}, el("code", { text: t.name }), " — ", t.description),
    el("pre", { text: t.parameters })));
}

function renderCurrent() {
  const box = document.getElementById("current");
  box.replaceChildren();
  if (!state.rows.length) {
    box.append(el("p", { class: "empty", text: state.being_written
      ? "No " + state.kind + " rows are written yet. This page looks again every few seconds."
      : "This run has no " + state.kind + " rows to review." }));
    return;
  }
  const current = currentIndex();
  const row = state.rows[current];
  const label = labelOf(row);
  const status = row.accepted ? el("span", { class: "badge", text: "accepted" })
    : el("span", { class: "badge bad", text: "rejected at " + row.stage + ": " + row.reason });
  const verdict = label ? el("span", { class: "verdict " + label.label, id: "verdict",
    text: label.label === "wrong" ? "wrong: " + label.error_class : label.label }) : null;
  box.append(
    el("header", { class: "row-head" }, el("span", { text: "row " + row.id }),
      el("span", { text: (current + 1) + " of " + state.rows.length }), el("span", { text: row.style }),
      status, verdict),
    el("article", { class: "row", "data-id": String(row.id) },
      queryWithMarks(row),
      row.detail ? el("div", { class: "why", text: "why rejected: " + row.detail }) : null,
      el("h3", { text: "Calls" }), callTable(row),
      row.thought ? el("div", { class: "thought", text: "judge: " + row.thought }) : null,
      el("h3", { text: "Offered tools" }), toolList(row)));
}

function renderSide() {
  const list = document.getElementById("sample");
  const current = currentIndex();
  list.replaceChildren(...state.rows.map((row, index) => {
    const label = labelOf(row);
    const mark = !label ? "·" : label.label === "correct" ? "✓" : label.label === "wrong" ? "✗" : "–";
    const item = el("li", { class: (index === current ? "here " : "") + (label ? label.label : ""),
      "data-id": String(row.id) }, el("span", { class: "mark", text: mark }), " ", row.query.slice(0, 60));
    item.addEventListener("click", () => { currentId = row.id; render(); });
    return item;
  }));
  [["styles", state.figures.styles], ["functions", state.figures.functions]].forEach(([id, groups]) => {
    const body = document.querySelector("#" + id + " tbody");
    body.replaceChildren(...Object.entries(groups).map(([name, share]) =>
      el("tr", { "data-name": name }, el("td", { text: name }), el("td", { class: "num", text: share.text }))));
  });
}

function render() {
  const f = state.figures;
  const share = state.kind === "accepted" ? f.precision : f.rejected_correct;
  document.getElementById("precision").textContent = share.total ? share.text : "no labels yet";
  document.getElementById("precision-label").textContent = state.kind === "accepted"
    ? "precision of accepted rows (Wilson 95 % interval)" : "correct among rejected rows (Wilson 95 % interval)";
  const done = state.rows.filter(labelOf).length;
  document.getElementById("progress").textContent = done + " / " + state.rows.length;
  document.getElementById("run").textContent = state.run_dir + " · " + state.kind + " rows, sample of "
    + state.sample_size + ", seed " + state.seed + (state.reviewer ? " · reviewer " + state.reviewer : "");
  const notices = document.getElementById("notices");
  notices.replaceChildren();
  if (state.being_written) {
    notice("This run is still being written (" + state.written_rows + " rows so far). Only written rows are "
      + "reviewed; new ones join the sample as they arrive.", "warn");
  }
  if (state.bad_lines.length) {
    notice("labels.jsonl has " + state.bad_lines.length + " unreadable line(s) (" + state.bad_lines.join(", ")
      + "): they are skipped; every good line is kept.", "warn");
  }
  if (state.rows.length && done === state.rows.length) notice("Every row of the sample is labelled.", "done");
  renderCurrent();
  renderSide();
}

async function refresh() {
  await call("GET", "/api/state");
  render();
}

async function send(rowId, label, errorClass) {
  busy = true;
  try {
    await call("POST", "/api/label", { row: rowId, label, error_class: errorClass || null });
    return true;
  } catch (error) {
    notice(error.message.charAt(0).toUpperCase() + error.message.slice(1), "error");
    return false;
  } finally {
    busy = false;
  }
}

async function labelCurrent(label, errorClass) {
  const row = state.rows[currentIndex()];
  if (!row || busy) return;
  const previous = labelOf(row);
  if (await send(row.id, label, errorClass)) {
    undoStack.push({ row: row.id, previous: previous && { ...previous } });
    const index = state.rows.findIndex((r) => r.id === row.id);
    const next = firstUnlabelled(((index >= 0 ? index : 0) + 1) % Math.max(1, state.rows.length));
    if (next >= 0) show(next);
  }
  render();
}

async function undo() {
  if (busy) return;
  const last = undoStack.pop();
  if (!last) { notice("Nothing to undo in this page.", ""); return; }
  const previous = last.previous;
  if (await send(last.row, previous ? previous.label : null, previous ? previous.error_class : null)) {
    if (state.rows.some((row) => row.id === last.row)) currentId = last.row;
  } else {
    undoStack.push(last);  // not undone: it can be tried again
  }
  render();
}

function openClasses() {
  choosing = true;
  document.getElementById("classes").hidden = false;
}

function closeClasses() {
  choosing = false;
  document.getElementById("classes").hidden = true;
}

function move(step) {
  if (!state.rows.length) return;
  show(currentIndex() + step);
  render();
}

document.addEventListener("keydown", (event) => {
  if (!state || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.repeat) {  // a held key labels nothing: each label is one press
    event.preventDefault();
    return;
  }
  const key = event.key;
  if (choosing) {
    const index = "123456789".indexOf(key);
    if (index >= 0 && index < state.classes.length) {
      closeClasses();
      labelCurrent("wrong", state.classes[index]);
    } else if (key === "Escape") {
      closeClasses();
    }
    event.preventDefault();
    return;
  }
  const actions = {
    y: () => labelCurrent("correct"), n: openClasses, s: () => labelCurrent("skip"), u: undo,
    j: () => move(1), k: () => move(-1),
  };
  if (actions[key]) {
    event.preventDefault();
    actions[key]();
  }
});

async function start() {
  await refresh();
  document.getElementById("class-list").replaceChildren(...state.classes.map((name, index) => {
    const item = el("li", {}, el("kbd", { text: String(index + 1) }), " ", name.replace(/_/g, " "));
    item.addEventListener("click", () => { closeClasses(); labelCurrent("wrong", name); });
    return item;
  }));
  setInterval(() => {
    if (state && state.being_written && !choosing && !busy) refresh().catch(() => {});
  }, POLL_MS);
}

start().catch((error) => notice("The review could not load: " + error.message, "error"));
