// aigve web page: upload videos, pick metrics, watch the job, read the results. No external resources.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("aigve-token") || "", jobId: null, timer: null, reportHtml: null };

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (state.token) h["Authorization"] = "Bearer " + state.token;
  return h;
}

async function api(method, url, body, isForm) {
  const opts = { method, headers: headers(isForm || body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) opts.body = isForm ? body : JSON.stringify(body);
  const r = await fetch(url, opts);
  const type = r.headers.get("content-type") || "";
  const data = type.includes("application/json") ? await r.json() : await r.text();
  if (!r.ok) {
    let msg = data && data.detail !== undefined ? data.detail : data;
    if (Array.isArray(msg)) msg = msg.map((e) => (e.loc || []).join(".") + ": " + e.msg).join("; ");
    const err = new Error(r.status + ": " + msg);
    err.status = r.status;
    throw err;
  }
  return data;
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  if (typeof v !== "number") return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e4 || a < 1e-3) ? v.toExponential(3) : v.toFixed(4);
}

async function loadHealth() {
  try {
    const h = await api("GET", "/healthz");
    $("server-info").textContent = `aigve ${h.aigve} · torch ${h.torch} · CUDA ${h.cuda_available ? "yes (" + h.device_count + ")" : "no"} · workers ${h.workers.alive}/${h.workers.configured} · queue ${h.queue_depth}`;
    $("auth-section").hidden = !h.auth;
  } catch (e) {
    $("server-info").textContent = "server unreachable: " + e.message;
  }
}

async function loadMetrics() {
  const box = $("metric-list");
  try {
    const cat = await api("GET", "/v1/metrics");
    box.textContent = "";
    for (const m of cat.metrics) {
      const label = document.createElement("label");
      const cb = document.createElement("input");
      cb.type = "checkbox";
      cb.value = m.name;
      cb.name = "metric";
      cb.dataset.family = m.family;
      cb.disabled = !m.available;
      label.title = m.description || "";
      if (!m.available) label.className = "unavailable";
      label.appendChild(cb);
      label.appendChild(document.createTextNode(" " + m.name + " (" + m.family + ")"));
      box.appendChild(label);
    }
    $("auth-status").textContent = state.token ? "token accepted" : "";
  } catch (e) {
    box.textContent = e.status === 401 ? "enter the API token above to load the metrics" : "could not load the catalogue: " + e.message;
  }
}

function chosenMetrics() {
  return Array.from(document.querySelectorAll("input[name=metric]:checked")).map((c) => c.value);
}

function numberOrNull(id) {
  const v = $(id).value.trim();
  return v === "" ? null : Number(v);
}

async function run() {
  const files = $("videos").files;
  const metrics = chosenMetrics();
  const status = $("run-status");
  status.className = "";
  if (!files.length) { status.textContent = "choose one or more videos"; return; }
  if (!metrics.length) { status.textContent = "pick at least one metric"; return; }
  $("run").disabled = true;
  try {
    status.textContent = "uploading…";
    const form = new FormData();
    for (const f of files) form.append("videos", f, f.name);
    if ($("prompts").files.length) form.append("prompts", $("prompts").files[0]);
    const up = await api("POST", "/v1/uploads", form, true);
    status.textContent = `uploaded: ${up.dataset.entries} video(s), ${up.dataset.pairs} paired; submitting…`;
    const body = { dataset: { upload_id: up.upload_id }, metrics };
    for (const [key, id] of [["max_seconds", "max-seconds"], ["max_len", "max-len"], ["fps", "fps"]]) {
      const v = numberOrNull(id);
      if (v !== null) body[key] = v;
    }
    const job = await api("POST", "/v1/jobs", body);
    status.textContent = "job queued";
    watch(job.job_id);
  } catch (e) {
    status.textContent = e.message;
    status.className = "error";
  } finally {
    $("run").disabled = false;
  }
}

function watch(jobId) {
  state.jobId = jobId;
  $("job-section").hidden = false;
  $("results-section").hidden = true;
  $("job-id").textContent = jobId;
  $("job-error").textContent = "";
  if (state.timer) clearInterval(state.timer);
  const tick = async () => {
    try {
      const j = await api("GET", "/v1/jobs/" + jobId);
      $("job-status").textContent = j.status;
      const p = j.progress;
      $("job-progress").value = p.fraction;
      $("job-progress-text").textContent = `${p.done} / ${p.total || "?"} videos`;
      if (["succeeded", "failed", "cancelled"].includes(j.status)) {
        clearInterval(state.timer);
        state.timer = null;
        $("cancel").disabled = true;
        $("run-status").textContent = "";
        if (j.status === "succeeded") await showResults(j);
        else $("job-error").textContent = j.error || j.status;
        loadJobs();
      } else {
        $("cancel").disabled = false;
      }
    } catch (e) {
      $("job-error").textContent = e.message;
    }
  };
  tick();
  state.timer = setInterval(tick, 700);
}

async function showResults(job) {
  const sum = $("summary-table").querySelector("tbody");
  sum.textContent = "";
  for (const [name, m] of Object.entries((job.summary || {}).metrics || {})) {
    const tr = document.createElement("tr");
    cell(tr, name);
    cell(tr, m.error ? "error" : fmt(m.value), "num");
    cell(tr, m.higher_is_better === true ? "↑" : m.higher_is_better === false ? "↓" : "·");
    cell(tr, String(m.n_errors), "num");
    sum.appendChild(tr);
  }
  const rows = (await api("GET", `/v1/jobs/${job.id}/per_video?format=json`)).rows;
  const cols = ["video_id", "metric", "output", "value", "error"];
  const thead = $("results-table").querySelector("thead");
  const tbody = $("results-table").querySelector("tbody");
  thead.textContent = "";
  tbody.textContent = "";
  const hr = document.createElement("tr");
  for (const c of cols) { const th = document.createElement("th"); th.textContent = c; hr.appendChild(th); }
  thead.appendChild(hr);
  for (const r of rows) {
    const tr = document.createElement("tr");
    for (const c of cols) cell(tr, c === "value" ? fmt(r[c]) : (r[c] ?? ""), c === "value" ? "num" : (c === "error" ? "error" : ""));
    tbody.appendChild(tr);
  }
  const csv = await api("GET", `/v1/jobs/${job.id}/per_video?format=csv`);
  $("download-csv").href = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
  state.reportHtml = null;
  $("report-frame").hidden = true;
  $("results-section").hidden = false;
}

async function openReport() {
  if (!state.jobId) return;
  try {
    if (!state.reportHtml) state.reportHtml = await api("GET", `/v1/jobs/${state.jobId}/report`);
    const frame = $("report-frame");
    frame.srcdoc = state.reportHtml;
    frame.hidden = false;
  } catch (e) {
    $("job-error").textContent = e.message;
  }
}

async function cancelJob(jobId) {
  try {
    await api("DELETE", "/v1/jobs/" + jobId);
  } catch (e) {
    $("job-error").textContent = e.message;
  }
  loadJobs();
}

async function loadJobs() {
  const tbody = $("jobs-table").querySelector("tbody");
  try {
    const data = await api("GET", "/v1/jobs?limit=20");
    tbody.textContent = "";
    for (const j of data.jobs) {
      const tr = document.createElement("tr");
      const idCell = cell(tr, j.id.slice(0, 12));
      idCell.title = j.id;
      cell(tr, j.status);
      cell(tr, `${j.progress.done}/${j.progress.total}`, "num");
      cell(tr, (j.request.metrics || []).join(", "));
      const td = document.createElement("td");
      const view = document.createElement("button");
      view.textContent = "view";
      view.addEventListener("click", () => watch(j.id));
      td.appendChild(view);
      if (["queued", "running"].includes(j.status)) {
        const c = document.createElement("button");
        c.textContent = "cancel";
        c.addEventListener("click", () => cancelJob(j.id));
        td.appendChild(c);
      }
      tr.appendChild(td);
      tbody.appendChild(tr);
    }
  } catch (e) {
    tbody.textContent = "";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("token").value = state.token;
  $("save-token").addEventListener("click", () => {
    state.token = $("token").value.trim();
    sessionStorage.setItem("aigve-token", state.token);
    loadMetrics();
    loadJobs();
  });
  $("run").addEventListener("click", run);
  $("cancel").addEventListener("click", () => state.jobId && cancelJob(state.jobId));
  $("open-report").addEventListener("click", openReport);
  $("refresh-jobs").addEventListener("click", loadJobs);
  loadHealth();
  loadMetrics();
  loadJobs();
});
