// The Batch runs page: draws the JSON of api/overview, api/inflight and api/run. No build step.
"use strict";

// Airflow's UI root: this page is served at <root>batch-runs/ and shown in an iframe of the UI.
const UI_ROOT = location.pathname.replace(/batch-runs\/.*$/, "");
// Each read opens the warehouse for milliseconds; a hidden tab does not read at all.
const INFLIGHT_EVERY_MS = 10000;
const OVERVIEW_EVERY_MS = 30000;
const charts = [];
// Columns of a result row that say where it came from; the sample shows the answer, its key, batch and tokens.
const PROVENANCE_HIDDEN = new Set(["table", "custom_id", "request_fingerprint", "prompt_version", "logical_date", "answered_at", "model"]);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const int = (n) => (n ?? 0).toLocaleString("en-US");
const compact = (n) => (n ?? 0).toLocaleString("en-US", { notation: "compact", maximumFractionDigits: 1 });
// Four decimals below a dollar (a day of a small job costs cents), two above.
function usd(n) {
  if (n === null) return "unpriced"; // a model with no known price: unknown, never zero
  const digits = Math.abs(n ?? 0) < 1 ? 4 : 2;
  return "$" + (n ?? 0).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
const when = (iso) => (iso ? iso.replace("T", " ").slice(0, 19) : "");
function age(seconds) {
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60);
  return h ? `${h} h ${m} min` : `${m} min ${Math.floor(seconds % 60)} s`;
}
const uiLink = (path, text) => (path ? el("a", { href: UI_ROOT + path, target: "_top" }, text) : text);

async function getJSON(path) {
  const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    const error = new Error(`${response.status}: ${detail}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

function showStatus(text) { document.getElementById("status").textContent = text; }

function card(label, value, kind, testid, title) {
  return el("div", { class: "card " + (kind || ""), "data-testid": testid, title }, el("div", { class: "label" }, label), el("div", { class: "value" }, value));
}

function figureCards(f, prefix) {
  return [
    card("runs", int(f.runs), "", `${prefix}-runs`),
    card("rows in", int(f.rows_in), "", `${prefix}-rows-in`),
    card("results", int(f.results), "", `${prefix}-results`),
    card("failed", int(f.failures), f.failures ? "fail" : "", `${prefix}-failures`, "requests that failed after they were sent"),
    card("rejected", int(f.rejected), "", `${prefix}-rejected`, "rows refused before sending: blank or too long"),
    card("tokens in / out", `${compact(f.input_tokens)} / ${compact(f.output_tokens)}`, "wide", `${prefix}-tokens`),
    card("at batch prices", usd(f.cost_usd) + (f.unpriced_runs ? ` + ${int(f.unpriced_runs)} unpriced` : ""), "", `${prefix}-cost`, "what the runs cost through the Batch API; runs of a model with no known price are counted apart"),
    card("at sync prices", usd(f.sync_cost_usd), "", `${prefix}-sync-cost`, "what the same tokens cost through the synchronous API"),
    card("saved", usd(f.saved_usd), "saved", `${prefix}-saved`),
  ];
}

function reasonChips(reasons) {
  const entries = Object.entries(reasons || {}).sort((a, b) => b[1] - a[1]);
  if (!entries.length) return el("div", { class: "muted" }, "no failures");
  return el("div", { class: "reasons" }, entries.map(([reason, n]) => el("span", { class: "reason", "data-reason": reason }, reason, " ", el("b", {}, int(n)))));
}

// Charts ------------------------------------------------------------------------------------------

function chartWidth() {
  const room = document.getElementById("jobs").clientWidth - 40;
  return Math.max(320, Math.floor((room - 24) / 2));
}

// The time axis in whole days, labelled by date.
const DAY = 86400;
const dayAxis = {
  space: 50,
  incrs: [DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 91 * DAY],
  values: (u, ticks) => ticks.map((t) => new Date(t * 1000).toISOString().slice(5, 10)),
};

// Half a day either side of the first and last day, so a single day is a bar and not a scale of years.
const dayRange = (u) => [u.data[0][0] - 43200, u.data[0][u.data[0].length - 1] + 43200];

function dayStamps(days) { return days.map((d) => Date.parse(d.day + "T00:00:00Z") / 1000); }

function rowsChart(job, container) {
  const bars = uPlot.paths.bars({ size: [0.6, 40] });
  const opts = {
    width: chartWidth(), height: 220,
    series: [
      {},
      { label: "results", stroke: "#3182ce", fill: "rgba(49,130,206,0.35)", paths: bars, points: { show: false } },
      { label: "failures", stroke: "#e53e3e", fill: "rgba(229,62,62,0.6)", paths: bars, points: { show: false } },
      { label: "rows in", stroke: "#2d3748", width: 1.5, dash: [4, 3], points: { show: true, size: 4 } },
    ],
    axes: [dayAxis, { size: 60, values: (u, v) => v.map(int) }],
    legend: { live: false },
    scales: { x: { time: true, range: dayRange } },
  };
  const d = job.days;
  return new uPlot(opts, [dayStamps(d), d.map((x) => x.results), d.map((x) => x.failures), d.map((x) => x.rows_in)], container);
}

function moneyChart(job, container) {
  let saved = 0;
  const d = job.days;
  const cumulative = d.map((x) => (saved += x.saved_usd));
  const money = (u, v) => v.map((x) => (x == null ? "" : usd(x)));
  const opts = {
    width: chartWidth(), height: 220,
    series: [
      {},
      { label: "at synchronous prices", stroke: "#a0aec0", width: 2, dash: [6, 4], value: (u, v) => (v == null ? "" : usd(v)) },
      { label: "at batch prices", stroke: "#3182ce", width: 2, fill: "rgba(49,130,206,0.15)", value: (u, v) => (v == null ? "" : usd(v)) },
      { label: "saved, running total", stroke: "#38a169", width: 2, scale: "saved", value: (u, v) => (v == null ? "" : usd(v)) },
    ],
    legend: { live: false },
    axes: [dayAxis, { size: 70, values: money }, { side: 1, scale: "saved", size: 70, grid: { show: false }, stroke: "#38a169", values: money }],
    scales: { x: { time: true, range: dayRange } },
  };
  return new uPlot(opts, [dayStamps(d), d.map((x) => x.sync_cost_usd), d.map((x) => x.cost_usd), cumulative], container);
}

// Sections ----------------------------------------------------------------------------------------

function renderOverview(data) {
  const totals = { runs: 0, rows_in: 0, results: 0, failures: 0, rejected: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0, sync_cost_usd: 0, saved_usd: 0, unpriced_runs: 0 };
  for (const job of data.jobs) for (const key of Object.keys(totals)) totals[key] += job.totals[key];
  document.getElementById("totals").replaceChildren(...figureCards(totals, "total"));

  while (charts.length) charts.pop().destroy();
  const jobs = document.getElementById("jobs");
  if (!data.jobs.length) {
    jobs.replaceChildren(el("p", { class: "muted" }, "No run has reported in this period yet."));
  } else {
    jobs.replaceChildren(...data.jobs.map((job) => {
      const rows = el("div");
      const money = el("div");
      const section = el("div", { class: "job", "data-job": job.job },
        el("h3", {}, job.job, " ", el("a", { href: UI_ROOT + "dags/" + encodeURIComponent(job.job), target: "_top", class: "muted" }, "DAG")),
        el("div", { class: "cards" }, figureCards(job.totals, `job-${job.job}`)),
        el("div", { class: "charts" },
          el("div", {}, el("div", { class: "chart-title" }, "Rows per day of data: results and failures"), rows),
          el("div", {}, el("div", { class: "chart-title" }, "Cost per day of data, and the money saved"), money)),
        el("div", { class: "chart-title" }, "Failures by reason"), reasonChips(job.totals.reasons));
      jobs.append(section);
      charts.push(rowsChart(job, rows), moneyChart(job, money));
      return section;
    }));
  }

  document.getElementById("run-count").textContent = `(${int(data.run_count)} in this period${data.run_count > data.runs.length ? `, the latest ${data.runs.length} shown` : ""})`;
  const head = el("tr", {}, ["reported", "job", "window", "run", "rows in", "results", "failures", "batch cost", "sync cost", "saved"].map((h, i) => el("th", { class: i > 3 ? "num" : "" }, h)));
  const body = data.runs.map((r) => el("tr", { class: "clickable", "data-run-id": r.run_id, onclick: () => openRun(r.job, r.run_id) },
    el("td", {}, when(r.reported_at)), el("td", {}, r.job), el("td", {}, r.window),
    el("td", {}, r.run_id, r.dry_run ? el("span", { class: "tag" }, " dry run") : null),
    el("td", { class: "num" }, int(r.rows_in)), el("td", { class: "num" }, int(r.results)),
    el("td", { class: "num" }, int(r.failures)), el("td", { class: "num" }, usd(r.cost_usd)),
    el("td", { class: "num" }, usd(r.sync_cost_usd)), el("td", { class: "num" }, usd(r.saved_usd))));
  document.getElementById("runs").replaceChildren(el("div", { class: "scroll" }, el("table", {}, el("thead", {}, head), el("tbody", {}, body))));
}

function renderInflight(data) {
  const box = document.getElementById("inflight");
  document.getElementById("inflight-count").textContent = `(${data.batches.length})`;
  if (!data.batches.length) { box.replaceChildren(el("p", { class: "muted" }, "No batch in flight.")); return; }
  const head = el("tr", {}, ["job", "window", "shard", "round", "batch", "status", "progress", "done / failed / total", "age (share of 24 h)", ""].map((h) => el("th", {}, h)));
  const rows = data.batches.map((b) => {
    const done = b.total ? (100 * b.completed) / b.total : 0, failed = b.total ? (100 * b.failed) / b.total : 0;
    return el("tr", { "data-batch-id": b.batch_id || "" },
      el("td", {}, b.job), el("td", {}, b.interval_label), el("td", { class: "num" }, b.shard), el("td", { class: "num" }, b.attempt),
      el("td", {}, b.batch_id || el("span", { class: "muted" }, "being created")),
      el("td", {}, b.status, b.live ? null : el("span", { class: "tag", title: "the provider did not answer: the ledger's view" }, " ledger")),
      el("td", {}, el("div", { class: "bar" }, el("div", { class: "done", style: `width:${done}%` }), el("div", { class: "failed", style: `width:${failed}%` }))),
      el("td", { class: "num", "data-testid": "progress" }, `${int(b.completed)} / ${int(b.failed)} / ${int(b.total)}`),
      el("td", { class: "age" + (b.window_share > 0.75 ? " late" : "") }, `${age(b.age_seconds)} (${Math.round(100 * b.window_share)} %)`),
      el("td", {}, uiLink(b.task_path, "task")));
  });
  box.replaceChildren(el("div", { class: "scroll" }, el("table", {}, el("thead", {}, head), el("tbody", {}, rows))));
}

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/;
function cell(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  if (typeof value === "number" && !Number.isInteger(value)) return String(Number(value.toFixed(6)));
  if (typeof value === "number") return int(value);
  return ISO_TIME.test(value) ? when(value) : String(value);
}

function table(rows, columns) {
  const head = el("tr", {}, columns.map((c) => el("th", {}, c.replaceAll("_", " "))));
  const body = rows.map((r) => el("tr", {}, columns.map((c) => el("td", {}, cell(r[c])))));
  return el("div", { class: "scroll" }, el("table", {}, el("thead", {}, head), el("tbody", {}, body)));
}

async function openRun(job, runId) {
  const box = document.getElementById("run-detail");
  document.querySelectorAll("tr.selected").forEach((r) => r.classList.remove("selected"));
  document.querySelector(`tr[data-run-id="${CSS.escape(runId)}"]`)?.classList.add("selected");
  box.hidden = false;
  box.replaceChildren(el("p", { class: "muted" }, "Loading run…"));
  let run;
  try {
    run = await getJSON(`api/run?job=${encodeURIComponent(job)}&run_id=${encodeURIComponent(runId)}`);
  } catch (error) {
    box.replaceChildren(el("p", { class: "muted" }, `Could not read the run: ${error.message}`));
    return;
  }
  const report = run.reports[run.reports.length - 1] || {};
  const batchCost = run.batches.reduce((s, b) => s + (b.cost_usd || 0), 0);
  box.replaceChildren(
    el("h2", {}, `Run ${run.run_id} `, el("span", { class: "muted" }, `${run.job}, window ${report.window || run.batches[0]?.interval_label || ""} · `), uiLink(run.dag_run_path, "open the DAG run")),
    el("div", { class: "cards" },
      card("shards", int(run.shards), "", "run-shards"), card("batches", int(run.batch_count), "", "run-batches"),
      card("rounds", int(run.rounds), "", "run-rounds"),
      card("rows in", int(report.rows_in), "", "run-rows-in"), card("results", int(report.results), "", "run-results"),
      card("failed", int(report.failures), report.failures ? "fail" : "", "run-failures", "requests that failed after they were sent"),
      card("rejected", int(report.rejected), "", "run-rejected", "rows refused before sending: blank or too long"),
      card("tokens in / out", `${compact(report.input_tokens)} / ${compact(report.output_tokens)}`, "wide", "run-tokens"),
      card("at batch prices", usd(report.cost_usd ?? batchCost), "", "run-cost"),
      card("at sync prices", usd(report.sync_cost_usd), "", "run-sync-cost"),
      card("saved", usd(report.saved_usd), "saved", "run-saved")),
    el("h3", {}, "Batches"),
    table(run.batches, ["attempt", "shard", "batch_id", "status", "requests", "completed", "failed", "input_tokens", "output_tokens", "cost_usd", "submitted_at", "finished_at"]),
    el("h3", {}, "Failures by reason"),
    run.failures.length ? el("div", {}, run.failures.map((g) => el("div", { class: "failure-group", "data-reason": g.reason },
      el("div", {}, el("b", {}, g.reason), ` (${g.stage}): ${int(g.count)}`),
      table(g.examples, ["key", "detail"])))) : el("p", { class: "muted" }, "No failure rows."),
    el("h3", {}, `A sample of result rows (${run.results_sample.length})`),
    run.results_sample.length ? table(run.results_sample, Object.keys(run.results_sample[0]).filter((c) => !PROVENANCE_HIDDEN.has(c))) : el("p", { class: "muted" }, "No result rows for this run's batches."),
  );
  box.scrollIntoView({ behavior: "instant", block: "start" });
}

// Refresh -----------------------------------------------------------------------------------------

async function refresh(path, render, every) {
  if (document.hidden) {
    setTimeout(() => refresh(path, render, every), every);
    return;
  }
  try {
    render(await getJSON(path()));
    showStatus(`updated ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    showStatus(error.status === 503 ? "the pipeline is writing; reading again shortly" : `could not read: ${error.message}`);
    if (error.status === 503) every = 2000;
  }
  setTimeout(() => refresh(path, render, every), every);
}

const days = document.getElementById("days");
const overviewPath = () => `api/overview?days=${days.value}`;
days.addEventListener("change", async () => renderOverview(await getJSON(overviewPath())));
refresh(overviewPath, renderOverview, OVERVIEW_EVERY_MS);
refresh(() => "api/inflight", renderInflight, INFLIGHT_EVERY_MS);
