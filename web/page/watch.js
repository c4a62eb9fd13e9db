// Following the current job: server-sent events (GET /jobs/{id}/events), or polling GET /jobs/{id}
// when EventSource is missing, the stream breaks, or a token is in use (EventSource cannot send it).
// Following stops once the job is in a terminal status.

import { ApiFailure, api, jobUrl, usingToken } from "./api.js";
import { currentJob, renderCurrent, resetEta, showJobError } from "./current.js";
import { TERMINAL } from "./statuses.js";

const POLL_FIRST_MS = 500;
const POLL_MS = 1000;
const POLL_MAX_MS = 8000; // back-off limit while requests fail

let handle = null; // {id, stop()} of what follows the current job
let listeners = { update: () => {}, finished: () => {} };

/** `update(job)` runs on every change of the followed job, `finished(job)` once it is terminal. */
export function onJobChange(update, finished) {
  listeners = { update, finished };
}

function stopWatching() {
  if (handle) handle.stop();
  handle = null;
}

function onJobUpdate(job) {
  const current = currentJob();
  if (!current || current.id !== job.id) return;
  renderCurrent(job);
  listeners.update(job);
  if (TERMINAL.has(job.status)) {
    stopWatching();
    listeners.finished(job);
  }
}

/** Show `job` in the "Current job" panel and follow it until it is terminal. */
export function watch(job) {
  stopWatching();
  resetEta();
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
  const mine = { id, stop: () => source.close() };
  handle = mine;
  const live = () => handle === mine;
  const onJob = (event) => {
    if (live()) onJobUpdate(JSON.parse(event.data));
  };
  source.addEventListener("snapshot", onJob);
  source.addEventListener("status", onJob);
  source.addEventListener("progress", (event) => {
    const current = currentJob();
    if (!live() || !current) return;
    const data = JSON.parse(event.data);
    // A progress event only moves the bar: the terminal state (with the outputs) comes as a status event.
    const status = data.status && !TERMINAL.has(data.status) ? data.status : current.status;
    onJobUpdate({ ...current, status, progress: data.progress });
  });
  source.addEventListener("output", (event) => {
    const current = currentJob();
    if (!live() || !current) return;
    const data = JSON.parse(event.data);
    const outputs = (current.outputs || []).filter((o) => o.name !== data.name);
    const { id: _jobId, ...output } = data;
    onJobUpdate({ ...current, outputs: [...outputs, output] });
  });
  source.onerror = () => {
    if (!live()) return;
    source.close();
    const current = currentJob();
    if (current && !TERMINAL.has(current.status)) watchPolling(id);
  };
}

function watchPolling(id) {
  let timer = null;
  let stopped = false;
  handle = { id, stop: () => { stopped = true; clearTimeout(timer); } };
  let delay = POLL_MS;
  const tick = async () => {
    if (stopped) return;
    try {
      const job = await api(`/jobs/${encodeURIComponent(id)}`);
      delay = POLL_MS;
      if (!stopped) onJobUpdate(job);
      if (TERMINAL.has(job.status)) return;
    } catch (err) {
      delay = Math.min(delay * 2, POLL_MAX_MS);
      if (err instanceof ApiFailure && err.status === 404) {
        showJobError(err.text);
        return;
      }
    }
    if (!stopped) timer = setTimeout(tick, delay);
  };
  timer = setTimeout(tick, POLL_FIRST_MS);
}
