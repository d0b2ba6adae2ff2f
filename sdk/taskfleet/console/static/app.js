// taskfleet console: a single page (hash routes #/jobs, #/jobs/<id>, #/clusters) over the console's /api.
// Everything user-controlled is written with textContent, never as HTML.
"use strict";

// The session token came in the URL `taskfleet console` printed; every request carries it.
const TOKEN = new URLSearchParams(location.search).get("token") || "";
const STATES = ["SUBMITTED", "RUNNING", "COMPLETED", "FAILED", "CANCELED"];
const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELED"]);
let timer = null;
let generation = 0; // a page change makes earlier refreshes stale

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function stateBadge(state) {
  return el("span", { class: `state state-${state}`, "data-state": state }, state);
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...(options.headers || {}), "X-Taskfleet-Token": TOKEN } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = (body && body.error) || {};
    throw new Error(`${error.code || response.status}: ${error.message || response.statusText}`);
  }
  return body;
}

function setStatus(text) {
  document.getElementById("status").textContent = text;
}

function showError(main, error) {
  main.prepend(el("div", { class: "error", role: "alert" }, String(error.message || error)));
}

function schedule(fn, ms) {
  clearTimeout(timer);
  timer = setTimeout(fn, ms);
}

function time(text) {
  return text ? text.replace("T", " ").slice(0, 19) : "";
}

function progressBars(progress) {
  const box = el("div", { class: "progress" });
  for (const p of progress) {
    const percent = p.total > 0 ? Math.min(100, (100 * p.done) / p.total) : 0;
    const fill = el("div", { class: "fill" });
    fill.style.width = `${percent}%`;
    box.append(
      el("div", { class: "bar", "data-label": p.label || "" },
        el("span", { class: "label" }, p.label || "progress"),
        el("div", { class: "track", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": String(p.total), "aria-valuenow": String(p.done) }, fill),
        el("span", { class: "count" }, `${p.done} / ${p.total}`)));
  }
  return box;
}

// --- jobs list ------------------------------------------------------------------------------------------

async function jobsPage(main, mine) {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const state = el("select", { id: "filter-state" }, el("option", { value: "" }, "any state"),
    ...STATES.map((s) => el("option", { value: s }, s)));
  state.value = params.get("state") || "";
  const name = el("input", { id: "filter-name", placeholder: "job name", value: params.get("name") || "" });
  const apply = () => { location.hash = `#/jobs?${new URLSearchParams({ state: state.value, name: name.value })}`; };
  state.addEventListener("change", apply);
  name.addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
  const body = el("tbody");
  main.append(el("h1", {}, "Jobs"), el("div", { class: "filters" }, state, name, el("button", { onclick: apply }, "Filter")),
    el("table", { id: "jobs" }, el("thead", {}, el("tr", {}, ...["name", "state", "submitted (UTC)", "tasks", "progress", "id"].map((h) => el("th", {}, h)))), body));
  const refresh = async () => {
    if (mine !== generation) return;
    try {
      const query = new URLSearchParams();
      if (state.value) query.set("state", state.value);
      if (name.value) query.set("name", name.value);
      const { jobs } = await api(`/api/jobs?${query}`);
      if (mine !== generation) return;
      body.replaceChildren(...jobs.map((job) => el("tr", { class: "clickable", "data-job-id": job.id, onclick: () => { location.hash = `#/jobs/${job.id}`; } },
        el("td", {}, job.name), el("td", {}, stateBadge(job.state)), el("td", {}, time(job.submitted_at)),
        el("td", {}, String(job.execution_stats ? job.execution_stats.total_tasks : "")),
        el("td", {}, (job.progress || []).map((p) => `${p.label || "progress"} ${p.done}/${p.total}`).join(", ")),
        el("td", { class: "muted" }, job.id))));
      if (!jobs.length) body.append(el("tr", {}, el("td", { colspan: "6", class: "muted" }, "no jobs match")));
      setStatus(`updated ${new Date().toLocaleTimeString()}`);
    } catch (error) { setStatus(String(error.message)); }
    schedule(refresh, 2000);
  };
  await refresh();
}

// --- one job ----------------------------------------------------------------------------------------------

async function jobPage(main, mine, jobId) {
  const head = el("div");
  const bars = el("div", { id: "progress" });
  const diagram = el("img", { id: "diagram", alt: "job diagram" });
  const tasks = el("tbody");
  const cancel = el("button", { class: "danger", id: "cancel" }, "Cancel job");
  const retry = el("button", { class: "primary", id: "retry" }, "Retry job");
  const act = async (action) => {
    cancel.disabled = retry.disabled = true;
    try {
      const answer = await api(`/api/jobs/${encodeURIComponent(jobId)}/${action}`, { method: "POST" });
      setStatus(action === "retry" ? `retried: ${answer.rescheduled} task(s) rescheduled` : "canceled");
    } catch (error) { showError(main, error); }
    refresh();
  };
  cancel.addEventListener("click", () => act("cancel"));
  retry.addEventListener("click", () => act("retry"));
  main.append(el("p", {}, el("a", { href: "#/jobs" }, "← all jobs")), head, el("div", { class: "actions" }, cancel, retry),
    el("h2", {}, "Progress"), bars, el("h2", {}, "Diagram"), el("div", { class: "diagram" }, diagram),
    el("h2", {}, "Tasks"), el("table", { id: "tasks" }, el("thead", {}, el("tr", {}, ...["task", "name", "state", "attempt", "cluster", "failure"].map((h) => el("th", {}, h)))), tasks));
  let lastKey = "";
  const refresh = async () => {
    if (mine !== generation) return;
    let job;
    try {
      const answer = await api(`/api/jobs/${encodeURIComponent(jobId)}`);
      if (mine !== generation) return;
      job = answer.job;
      const stats = job.execution_stats || {};
      head.replaceChildren(el("h1", {}, job.name, " ", stateBadge(job.state)),
        el("dl", { class: "grid" },
          el("dt", {}, "id"), el("dd", {}, job.id),
          el("dt", {}, "submitted"), el("dd", {}, `${time(job.submitted_at)} UTC`),
          el("dt", {}, "tasks"), el("dd", { id: "tasks-by-state" }, `${stats.total_tasks || 0}: ` + Object.entries(stats.tasks_by_state || {}).map(([s, n]) => `${s} ${n}`).join(", ")),
          el("dt", {}, "compute"), el("dd", {}, `${((stats.compute_time_ms || 0) / 1000).toFixed(2)} s over ${((stats.elapsed_time_ms || 0) / 1000).toFixed(2)} s, parallelism ${(stats.parallelism || 0).toFixed(2)}`),
          job.failure ? el("dt", {}, "failure") : null,
          job.failure ? el("dd", { class: "failure" }, `${job.failure.name}: ${job.failure.message}`) : null));
      cancel.disabled = TERMINAL.has(job.state);
      retry.disabled = !["FAILED", "CANCELED"].includes(job.state);
      bars.replaceChildren(job.progress && job.progress.length ? progressBars(job.progress) : el("p", { class: "muted" }, "no progress reported yet"));
      tasks.replaceChildren(...answer.tasks.map((t) => el("tr", { "data-task-id": t.id },
        el("td", { class: "display" }, t.display), el("td", {}, `${t.name} ${t.version}`), el("td", {}, stateBadge(t.state)),
        el("td", {}, String(t.attempt)), el("td", {}, t.cluster),
        el("td", {}, t.failure ? el("details", {}, el("summary", { class: "failure" }, t.failure.message), el("pre", {}, t.failure.traceback || "(no traceback)")) : ""))));
      const key = `${job.state}|${answer.tasks.map((t) => t.state).join(",")}`;
      if (key !== lastKey) {
        lastKey = key;
        diagram.src = `/api/jobs/${encodeURIComponent(jobId)}/diagram.svg?${new URLSearchParams({ v: Date.now(), token: TOKEN })}`;
      }
      setStatus(`updated ${new Date().toLocaleTimeString()}`);
    } catch (error) { setStatus(String(error.message)); if (!head.childNodes.length) showError(main, error); }
    schedule(refresh, job && TERMINAL.has(job.state) ? 5000 : 1000);
  };
  await refresh();
}

// --- clusters ---------------------------------------------------------------------------------------------

async function clustersPage(main, mine) {
  const body = el("tbody");
  main.append(el("h1", {}, "Clusters"), el("table", { id: "clusters" },
    el("thead", {}, el("tr", {}, ...["slug", "name", "description", "backlog", "lanes"].map((h) => el("th", {}, h)))), body));
  const refresh = async () => {
    if (mine !== generation) return;
    try {
      const { clusters } = await api("/api/clusters");
      if (mine !== generation) return;
      body.replaceChildren(...clusters.map((c) => el("tr", { "data-slug": c.slug },
        el("td", {}, c.slug), el("td", {}, c.display_name || c.name), el("td", {}, c.description || ""),
        el("td", { class: "backlog" }, String(c.backlog)),
        el("td", {}, c.lanes.map((l) => `${l.name} ${l.version}: ${l.backlog}`).join(", ")))));
      setStatus(`updated ${new Date().toLocaleTimeString()}`);
    } catch (error) { setStatus(String(error.message)); }
    schedule(refresh, 3000);
  };
  await refresh();
}

function route() {
  generation += 1;
  clearTimeout(timer);
  const main = document.getElementById("main");
  main.replaceChildren();
  const path = location.hash.replace(/^#/, "").split("?")[0] || "/jobs";
  const parts = path.split("/").filter(Boolean);
  document.getElementById("nav-jobs").classList.toggle("active", parts[0] === "jobs");
  document.getElementById("nav-clusters").classList.toggle("active", parts[0] === "clusters");
  if (parts[0] === "clusters") return clustersPage(main, generation);
  if (parts[0] === "jobs" && parts[1]) return jobPage(main, generation, decodeURIComponent(parts[1]));
  return jobsPage(main, generation);
}

window.addEventListener("hashchange", route);
route();
