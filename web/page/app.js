// myspinbot page: submit a talking-head job, follow its progress, play the video, manage the history.
// Plain ES module, no build step. Every request goes to the job API below this page's own path, so
// the page works at /myspinbot/, /api/myspinbot/ and behind a reverse-proxy prefix.

const TERMINAL = new Set(["succeeded", "failed", "canceled", "expired"]);
const ACTIVE = new Set(["queued", "running", "canceling"]);
const STORE_KEY = "myspinbot.submissions.v1";
const TOKEN_KEY = "myspinbot.token.v1";
const STORE_MAX = 100;
const HISTORY_PAGE = 20;

/** ".../myspinbot" for a page at ".../myspinbot/" (or ".../myspinbot/page/index.html"). */
export function apiBase(pathname) {
  const marker = "/myspinbot/";
  const at = pathname.lastIndexOf(marker);
  if (at >= 0) return pathname.slice(0, at + marker.length - 1);
  return pathname.endsWith("/myspinbot") ? pathname : "/myspinbot";
}

const BASE = apiBase(location.pathname);

// Which page field feeds which pipeline parameter (the first one the pipeline has).
const FIELD_PARAMS = {
  portrait: ["portrait"],
  recording: ["audio", "voice_sample"],
  transcript: ["voice_transcript"],
  prompt: ["prompt"],
  script: ["script"],
  speech: ["speech"],
  fps: ["fps"],
  seed: ["seed"],
};
const FILE_FIELDS = ["portrait", "recording"];
const TEXT_FIELDS = ["transcript", "prompt", "script"];
const NUMBER_FIELDS = ["fps", "seed"];

// Used only when openapi.json cannot be read.
const KNOWN_PIPELINES = {
  lite: { description: "Portrait + speech recording (or a script spoken by espeak-ng) → MP4, no model weights.",
          params: ["portrait", "audio", "script", "voice", "fps", "seed"] },
  f5: { description: "A prompt or a script, spoken in a cloned voice (F5-TTS), animated.",
        params: ["portrait", "prompt", "script", "voice_sample", "voice_transcript", "speech", "length", "language",
                 "llm_model", "voice", "fps", "seed"] },
};

const $ = (id) => document.getElementById(id);

class ApiFailure extends Error {
  constructor(code, message, details, status) {
    super(message);
    this.code = code;
    this.details = details || {};
    this.status = status;
  }
  get text() {
    return `${this.code}: ${this.message}`;
  }
}

// --- the API token (needed when ComfyUI listens beyond loopback) -----------------------------------

function token() {
  try {
    return localStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

function setToken(value) {
  try {
    if (value) localStorage.setItem(TOKEN_KEY, value);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the token lasts until the page is reloaded
  }
  memoryToken = value;
  $("token-forget").hidden = !value;
}

let memoryToken = "";

function authHeaders(headers = {}) {
  const value = token() || memoryToken;
  return value ? { ...headers, Authorization: `Bearer ${value}` } : headers;
}

function usingToken() {
  return Boolean(token() || memoryToken);
}

// The session cookie carries the token where no header can be sent: <video>, EventSource and, when
// MYSPINBOT_PROTECT_COMFYUI is on, ComfyUI's own frontend.
async function signIn(value) {
  try {
    const response = await fetch(`${BASE}/session`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: value }),
    });
    return response.status === 204;
  } catch {
    return false;
  }
}

// Sent here by the guard of ComfyUI's own routes (?next=/...): go back there once signed in.
function followNext() {
  const next = new URLSearchParams(window.location.search).get("next");
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.includes("\\")) return false;
  window.location.assign(next);
  return true;
}

function showAuth(err) {
  state.needToken = true;
  $("auth").hidden = false;
  $("auth-error").textContent = err ? err.text : "";
  $("auth-error").hidden = !err;
  $("server-status").textContent = "API token needed";
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(BASE + path, { cache: "no-store", ...options, headers: authHeaders(options.headers) });
  } catch (err) {
    throw new ApiFailure("network_error", `cannot reach the server (${err.message})`);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const envelope = body && typeof body === "object" ? body.error : null;
    if (envelope && typeof envelope === "object") {
      const failure = new ApiFailure(envelope.code || `http_${response.status}`, envelope.message || response.statusText,
                                     envelope.details, response.status);
      if (response.status === 401) showAuth(failure);
      throw failure;
    }
    throw new ApiFailure(`http_${response.status}`, `${response.status} ${response.statusText}`.trim(), {},
                         response.status);
  }
  return body;
}

function jobUrl(id, tail = "") {
  return `${BASE}/jobs/${encodeURIComponent(id)}${tail}`;
}

function randomKey() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// --- submissions kept in this browser (for retry) ------------------------------------------

function loadSubmissions() {
  try {
    const value = JSON.parse(localStorage.getItem(STORE_KEY) || "{}");
    return value && typeof value === "object" ? value : {};
  } catch {
    return {};
  }
}

function saveSubmission(jobId, body, labels) {
  const all = loadSubmissions();
  all[jobId] = { body, labels, at: Date.now() };
  const ids = Object.keys(all).sort((a, b) => all[b].at - all[a].at);
  for (const id of ids.slice(STORE_MAX)) delete all[id];
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify(all));
  } catch {
    // storage full or disabled: retry is then unavailable for this job
  }
  memorySubmissions[jobId] = { body, labels };
}

const memorySubmissions = {};

function submissionFor(jobId) {
  return memorySubmissions[jobId] || loadSubmissions()[jobId] || null;
}

// --- pipelines and the form -----------------------------------------------------------------

const state = {
  pipelines: {}, // name -> {description, params: Set}
  current: null, // the job shown in the "Current job" panel
  watch: null, // {id, stop()}
  observed: null, // {id, t, value}: first progress seen while running (for the ETA)
  history: [],
  nextCursor: null,
  historyTimer: null,
  needToken: false,
  videoObjectUrl: null,
};

async function loadPipelines() {
  let pipelines = {};
  try {
    const spec = await api("/openapi.json");
    const schemas = (spec.components && spec.components.schemas) || {};
    for (const [key, schema] of Object.entries(schemas)) {
      if (!key.startsWith("Inputs_")) continue;
      const name = key.slice("Inputs_".length);
      const description = String(schema.description || "").replace(/^Inputs of pipeline '[^']*':\s*/, "");
      pipelines[name] = { description, params: new Set(Object.keys(schema.properties || {})) };
    }
  } catch (err) {
    console.warn("myspinbot: openapi.json unreadable, using the health route", err);
  }
  if (Object.keys(pipelines).length === 0) {
    const health = await api("/health");
    for (const name of health.pipelines || []) {
      const known = KNOWN_PIPELINES[name];
      pipelines[name] = known
        ? { description: known.description, params: new Set(known.params) }
        : { description: "", params: new Set(Object.values(FIELD_PARAMS).flat()) };
    }
  }
  state.pipelines = pipelines;
  const select = $("pipeline");
  select.replaceChildren();
  const names = Object.keys(pipelines).sort((a, b) => (a === "lite" ? -1 : b === "lite" ? 1 : a.localeCompare(b)));
  for (const name of names) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name;
    select.append(option);
  }
  select.disabled = names.length === 0;
  $("submit").disabled = names.length === 0;
  showPipelineFields();
}

function paramFor(field, pipelineName = $("pipeline").value) {
  const pipeline = state.pipelines[pipelineName];
  if (!pipeline) return null;
  return FIELD_PARAMS[field].find((p) => pipeline.params.has(p)) || null;
}

function showPipelineFields() {
  const name = $("pipeline").value;
  const pipeline = state.pipelines[name];
  $("pipeline-description").textContent = pipeline ? pipeline.description : "";
  for (const row of document.querySelectorAll("[data-field]")) {
    row.hidden = !paramFor(row.dataset.field, name);
  }
  const recording = paramFor("recording", name);
  if (recording === "voice_sample") {
    $("recording-label").textContent = "Voice sample";
    $("recording-hint").textContent = "3–12 s of the voice to clone (wav, mp3, flac, m4a).";
  } else {
    $("recording-label").textContent = "Speech recording";
    $("recording-hint").textContent = "What the portrait says (wav, mp3, flac, m4a).";
  }
  $("script-hint").textContent = paramFor("prompt", name)
    ? "A finished script, spoken as written (instead of a prompt)."
    : "Or type what to say instead of a recording (spoken by espeak-ng).";
  $("advanced").hidden = !["speech", "fps", "seed"].some((f) => paramFor(f, name));
  clearFormError();
}

function clearFormError() {
  $("form-error").hidden = true;
  $("form-error").textContent = "";
  for (const el of document.querySelectorAll(".invalid")) el.classList.remove("invalid");
}

function showFormError(err) {
  const box = $("form-error");
  box.textContent = err instanceof ApiFailure ? err.text : String(err.message || err);
  box.hidden = false;
  const fields = [];
  if (err.details) {
    if (err.details.field) fields.push(err.details.field);
    if (Array.isArray(err.details.fields)) fields.push(...err.details.fields);
  }
  for (const param of fields) {
    const field = Object.keys(FIELD_PARAMS).find((f) => FIELD_PARAMS[f].includes(param));
    const el = field && $(field);
    if (el) el.classList.add("invalid");
  }
}

async function uploadAsset(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  const asset = await api("/assets", { method: "POST", body: form });
  return asset.asset_id;
}

async function onSubmit(event) {
  event.preventDefault();
  clearFormError();
  const pipeline = $("pipeline").value;
  const inputs = {};
  const labels = {};
  const button = $("submit");
  button.disabled = true;
  try {
    for (const field of FILE_FIELDS) {
      const param = paramFor(field, pipeline);
      const file = param && $(field).files[0];
      if (!file) continue;
      $("submit-status").textContent = `uploading ${file.name}…`;
      inputs[param] = { asset_id: await uploadAsset(file) };
      labels[param] = file.name;
    }
    for (const field of TEXT_FIELDS) {
      const param = paramFor(field, pipeline);
      const value = param ? $(field).value : "";
      if (value.trim()) inputs[param] = value;
    }
    const speech = paramFor("speech", pipeline);
    if (speech) inputs[speech] = $("speech").value;
    for (const field of NUMBER_FIELDS) {
      const param = paramFor(field, pipeline);
      const raw = param ? $(field).value.trim() : "";
      if (raw !== "") inputs[param] = Number(raw);
    }
    $("submit-status").textContent = "submitting…";
    await createJob({ pipeline, inputs }, labels);
    $("submit-status").textContent = "";
  } catch (err) {
    $("submit-status").textContent = "";
    showFormError(err);
  } finally {
    button.disabled = false;
  }
}

async function createJob(body, labels) {
  const job = await api("/jobs", {
    method: "POST",
    headers: { "Content-Type": "application/json", "Idempotency-Key": randomKey() },
    body: JSON.stringify(body),
  });
  saveSubmission(job.id, body, labels);
  watch(job);
  refreshHistory();
  return job;
}

// --- the current job: progress, ETA, video ----------------------------------------------------

function formatSeconds(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${String(s % 60).padStart(2, "0")} s`;
}

function etaSeconds(job) {
  const progress = job.progress || {};
  if (typeof progress.eta_seconds === "number" && isFinite(progress.eta_seconds)) return progress.eta_seconds;
  if (job.status !== "running") return null;
  const value = Number(progress.value) || 0;
  const seen = state.observed;
  if (!seen || seen.id !== job.id) return null;
  const done = value - seen.value;
  const elapsed = (performance.now() - seen.t) / 1000;
  if (done < 0.02 || elapsed < 1) return null;
  return (elapsed * (1 - value)) / done;
}

function describeError(error) {
  if (!error) return "";
  if (typeof error === "string") return error;
  return [error.code, error.message].filter(Boolean).join(": ") || JSON.stringify(error);
}

function renderCurrent(job) {
  state.current = job;
  const progress = job.progress || {};
  const value = job.status === "succeeded" ? 1 : Math.min(1, Math.max(0, Number(progress.value) || 0));
  if (job.status === "running" && (!state.observed || state.observed.id !== job.id)) {
    state.observed = { id: job.id, t: performance.now(), value };
  }
  $("current-empty").hidden = true;
  for (const tr of document.querySelectorAll("#history tbody tr")) tr.classList.toggle("selected", tr.dataset.jobId === job.id);
  $("job-id").textContent = job.id.slice(0, 8);
  $("job-id").title = job.id;
  const box = $("progress");
  box.hidden = false;
  box.dataset.status = job.status;
  $("job-status").textContent = job.status;
  $("job-status").dataset.status = job.status;
  let stage = progress.stage || (job.status === "queued" ? "queued" : job.status === "running" ? "starting" : "");
  if (job.status === "queued" && job.queue_position) stage = `queued (#${job.queue_position} in line)`;
  $("stage").textContent = stage;
  const count = Number.isInteger(progress.stage_index) && progress.stages ? `${progress.stage_index + 1}/${progress.stages}` : "";
  $("stage-count").textContent = count && ACTIVE.has(job.status) ? `(stage ${count})` : "";
  const percent = Math.round(value * 100);
  $("percent").textContent = `${percent}%`;
  $("progress-fill").style.width = `${value * 100}%`;
  $("progress-bar").setAttribute("aria-valuenow", String(percent));
  $("job-message").textContent = progress.message || "";
  const eta = ACTIVE.has(job.status) ? etaSeconds(job) : null;
  $("eta").textContent = eta == null ? "" : `ETA ${formatSeconds(eta)}`;

  $("current-cancel").hidden = !(job.status === "queued" || job.status === "running");
  $("current-retry").hidden = !((job.status === "failed" || job.status === "canceled") && submissionFor(job.id));

  const errorBox = $("job-error");
  errorBox.hidden = !job.error;
  errorBox.textContent = job.error ? describeError(job.error) : "";

  const output = (job.outputs || []).find((o) => o.name === "video") || (job.outputs || []).find((o) => o.type === "video");
  if (job.status === "succeeded" && output) {
    showVideo(jobUrl(job.id, `/outputs/${encodeURIComponent(output.name)}`));
  } else {
    hideVideo();
  }
}

function showVideo(url) {
  const player = $("player");
  const video = $("video");
  player.hidden = false;
  if (video.dataset.src === url) return;
  video.dataset.src = url;
  if (usingToken()) {
    // A <video> cannot send the Authorization header: fetch the file and play it from memory.
    fetch(url, { headers: authHeaders(), cache: "no-store" })
      .then((response) => {
        if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
        return response.blob();
      })
      .then((blob) => {
        if (video.dataset.src !== url) return;
        releaseVideoUrl();
        state.videoObjectUrl = URL.createObjectURL(blob);
        $("download").href = state.videoObjectUrl;
        playVideo(state.videoObjectUrl);
      })
      .catch((err) => {
        $("job-error").textContent = `video_unavailable: ${err.message}`;
        $("job-error").hidden = false;
      });
    return;
  }
  $("download").href = url;
  playVideo(url);
}

function onVideoError() {
  const video = $("video");
  if (!video.dataset.src) return;
  const box = $("job-error");
  box.textContent = state.videoObjectUrl
    ? "video_blocked: this ComfyUI's Content-Security-Policy does not let the page play a video it fetched " +
      "with the API token; use the download link"
    : `video_unavailable: the browser cannot play ${video.dataset.src} (${video.error ? video.error.message || video.error.code : "error"})`;
  box.hidden = false;
}

function releaseVideoUrl() {
  if (state.videoObjectUrl) URL.revokeObjectURL(state.videoObjectUrl);
  state.videoObjectUrl = null;
}

function playVideo(src) {
  const video = $("video");
  video.src = src;
  video.load();
  // With sound when the browser allows it, muted otherwise (the controls unmute).
  video.muted = false;
  video.play().catch(() => {
    video.muted = true;
    video.play().catch(() => {});
  });
}

function hideVideo() {
  const video = $("video");
  if (video.dataset.src) {
    video.pause();
    video.removeAttribute("src");
    delete video.dataset.src;
    video.load();
  }
  releaseVideoUrl();
  $("player").hidden = true;
}

function stopWatching() {
  if (state.watch) state.watch.stop();
  state.watch = null;
}

function onJobUpdate(job) {
  if (!state.current || state.current.id !== job.id) return;
  renderCurrent(job);
  updateHistoryRow(job);
  if (TERMINAL.has(job.status)) {
    stopWatching();
    refreshHistory();
  }
}

/** Follow a job: server-sent events, or polling when EventSource is missing or the stream breaks. */
function watch(job) {
  stopWatching();
  state.observed = null;
  renderCurrent(job);
  if (TERMINAL.has(job.status)) return;
  // EventSource cannot send the Authorization header: with a token, poll instead.
  if (typeof EventSource === "function" && !usingToken()) {
    watchEvents(job.id);
  } else {
    watchPolling(job.id);
  }
}

function watchEvents(id) {
  const source = new EventSource(jobUrl(id, "/events"));
  const handle = { id, stop: () => source.close() };
  state.watch = handle;
  const live = () => state.watch === handle;
  const onJob = (event) => {
    if (live()) onJobUpdate(JSON.parse(event.data));
  };
  source.addEventListener("snapshot", onJob);
  source.addEventListener("status", onJob);
  source.addEventListener("progress", (event) => {
    if (!live() || !state.current) return;
    const data = JSON.parse(event.data);
    // A progress event only moves the bar: the terminal state (with the outputs) comes as a status event.
    const status = data.status && !TERMINAL.has(data.status) ? data.status : state.current.status;
    onJobUpdate({ ...state.current, status, progress: data.progress });
  });
  source.addEventListener("output", (event) => {
    if (!live() || !state.current) return;
    const data = JSON.parse(event.data);
    const outputs = (state.current.outputs || []).filter((o) => o.name !== data.name);
    const { id: _jobId, ...output } = data;
    onJobUpdate({ ...state.current, outputs: [...outputs, output] });
  });
  source.onerror = () => {
    if (!live()) return;
    source.close();
    if (state.current && !TERMINAL.has(state.current.status)) watchPolling(id);
  };
}

function watchPolling(id) {
  let timer = null;
  let stopped = false;
  const handle = { id, stop: () => { stopped = true; clearTimeout(timer); } };
  state.watch = handle;
  let delay = 1000;
  const tick = async () => {
    if (stopped) return;
    try {
      const job = await api(`/jobs/${encodeURIComponent(id)}`);
      delay = 1000;
      if (!stopped) onJobUpdate(job);
      if (TERMINAL.has(job.status)) return;
    } catch (err) {
      delay = Math.min(delay * 2, 8000);
      if (err instanceof ApiFailure && err.status === 404) {
        $("job-error").textContent = err.text;
        $("job-error").hidden = false;
        return;
      }
    }
    if (!stopped) timer = setTimeout(tick, delay);
  };
  timer = setTimeout(tick, 500);
}

// --- history ------------------------------------------------------------------------------------

function formatWhen(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (isNaN(date)) return iso;
  const today = new Date();
  return date.toDateString() === today.toDateString() ? date.toLocaleTimeString() : date.toLocaleString();
}

function button(label, className, onClick, title = "") {
  const el = document.createElement("button");
  el.type = "button";
  el.className = className;
  el.textContent = label;
  if (title) el.title = title;
  el.addEventListener("click", onClick);
  return el;
}

function historyRow(job) {
  const row = document.createElement("tr");
  row.dataset.jobId = job.id;
  row.dataset.status = job.status;
  if (state.current && state.current.id === job.id) row.classList.add("selected");
  const cell = (text, className = "") => {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.append(td);
    return td;
  };
  cell(formatWhen(job.created_at)).title = job.id;
  cell(job.pipeline);
  const status = cell("");
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.dataset.status = job.status;
  badge.textContent = job.status;
  status.append(badge);
  const progress = job.progress || {};
  let detail = "";
  if (job.status === "failed" && job.error) detail = describeError(job.error);
  else if (ACTIVE.has(job.status)) detail = `${progress.stage || job.status} ${Math.round((progress.value || 0) * 100)}%`;
  else if (job.status === "succeeded") detail = "video ready";
  cell(detail, "detail");
  const actions = cell("", "row-actions");
  actions.append(button(job.status === "succeeded" ? "Play" : "Show", "secondary show", () => watch(job)));
  if (job.status === "queued" || job.status === "running") {
    actions.append(button("Cancel", "danger cancel", () => cancelJob(job.id)));
  }
  if (job.status === "failed" || job.status === "canceled") {
    const known = submissionFor(job.id);
    const retry = button("Retry", "secondary retry", () => retryJob(job.id),
                         known ? "submit the same inputs again" : "the inputs of this job are not known to this browser");
    retry.disabled = !known;
    actions.append(retry);
  }
  return row;
}

function renderHistory() {
  const body = document.querySelector("#history tbody");
  body.replaceChildren(...state.history.map(historyRow));
  $("history-empty").hidden = state.history.length > 0;
  $("history-more").hidden = !state.nextCursor;
}

function updateHistoryRow(job) {
  const index = state.history.findIndex((j) => j.id === job.id);
  if (index < 0) return;
  state.history[index] = job;
  const old = document.querySelector(`#history tbody tr[data-job-id="${CSS.escape(job.id)}"]`);
  if (old) old.replaceWith(historyRow(job));
}

function showHistoryError(err) {
  $("history-error").textContent = err ? (err instanceof ApiFailure ? err.text : String(err.message || err)) : "";
  $("history-error").hidden = !err;
}

async function refreshHistory() {
  try {
    const page = await api(`/jobs?limit=${HISTORY_PAGE}`);
    const older = state.history.slice(HISTORY_PAGE).filter((j) => !page.jobs.some((p) => p.id === j.id));
    state.history = [...page.jobs, ...older];
    if (!older.length) state.nextCursor = page.next_cursor;
    renderHistory();
    showHistoryError(null);
  } catch (err) {
    showHistoryError(err);
  }
  scheduleHistory();
}

async function loadOlder() {
  if (!state.nextCursor) return;
  try {
    const page = await api(`/jobs?limit=${HISTORY_PAGE}&cursor=${encodeURIComponent(state.nextCursor)}`);
    const known = new Set(state.history.map((j) => j.id));
    state.history.push(...page.jobs.filter((j) => !known.has(j.id)));
    state.nextCursor = page.next_cursor;
    renderHistory();
  } catch (err) {
    showHistoryError(err);
  }
}

function scheduleHistory() {
  clearTimeout(state.historyTimer);
  if (state.needToken) return;
  const busy = state.history.some((j) => ACTIVE.has(j.status));
  state.historyTimer = setTimeout(() => {
    if (document.visibilityState === "hidden") scheduleHistory();
    else refreshHistory();
  }, busy ? 3000 : 15000);
}

async function cancelJob(id) {
  try {
    const job = await api(`/jobs/${encodeURIComponent(id)}/cancel`, { method: "POST" });
    updateHistoryRow(job);
    if (state.current && state.current.id === id) renderCurrent(job);
    showHistoryError(null);
  } catch (err) {
    showHistoryError(err);
  }
  refreshHistory();
}

async function retryJob(id) {
  const saved = submissionFor(id);
  if (!saved) {
    showHistoryError(new ApiFailure("retry_unavailable", "the inputs of this job are not known to this browser"));
    return;
  }
  try {
    await createJob(saved.body, saved.labels || {});
    showHistoryError(null);
  } catch (err) {
    showHistoryError(err);
  }
}

// --- start ----------------------------------------------------------------------------------------

async function connect() {
  state.needToken = false;
  try {
    await loadPipelines();
    $("auth").hidden = true;
    $("server-status").textContent = `connected · ${Object.keys(state.pipelines).length} pipelines`;
  } catch (err) {
    if (state.needToken) return;
    $("server-status").textContent = "";
    showFormError(err);
    return;
  }
  await refreshHistory();
  // After a reload, follow the newest unfinished job.
  const active = state.history.find((j) => ACTIVE.has(j.status));
  if (!state.current && active) watch(active);
  document.body.dataset.ready = "true";
}

function start() {
  $("job-form").addEventListener("submit", onSubmit);
  $("pipeline").addEventListener("change", showPipelineFields);
  $("history-refresh").addEventListener("click", refreshHistory);
  $("history-more").addEventListener("click", loadOlder);
  $("current-cancel").addEventListener("click", () => state.current && cancelJob(state.current.id));
  $("current-retry").addEventListener("click", () => state.current && retryJob(state.current.id));
  for (const id of ["portrait", "recording", "transcript", "prompt", "script"]) {
    $(id).addEventListener("input", () => $(id).classList.remove("invalid"));
  }
  $("auth-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    if (!value) return;
    setToken(value);
    $("token").value = "";
    if ((await signIn(value)) && followNext()) return;
    connect();
  });
  $("token-forget").addEventListener("click", async () => {
    setToken("");
    await fetch(`${BASE}/session`, { method: "DELETE" }).catch(() => null);
    connect();
  });
  $("token-forget").hidden = !usingToken();
  $("video").addEventListener("error", onVideoError);
  document.addEventListener("securitypolicyviolation", (event) => {
    if (String(event.blockedURI).startsWith("blob")) onVideoError();
  });
  const saved = token();
  if (saved) {
    signIn(saved).then((ok) => (ok && followNext()) || connect());
  } else {
    connect();
  }
}

start();
