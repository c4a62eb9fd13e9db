// The history table: the newest jobs (GET /jobs, paged by cursor), refreshed every few seconds while
// a job is active, with Show / Cancel / Retry on each row. This module owns the list it shows.

import { ApiFailure, api, tokenRefused } from "./api.js";
import { currentJob, renderCurrent } from "./current.js";
import { $, button, describeError, formatWhen } from "./dom.js";
import { cancelJob, submissionFor, submitJob } from "./jobs.js";
import { ACTIVE, CANCELABLE, RETRYABLE } from "./statuses.js";
import { watch } from "./watch.js";

const HISTORY_PAGE = 20;
const BUSY_REFRESH_MS = 3000; // while a job is active
const IDLE_REFRESH_MS = 15000;

let jobs = []; // newest first
let nextCursor = null;
let timer = null;

/** Wire the history's buttons. */
export function initHistory() {
  $("history-refresh").addEventListener("click", refreshHistory);
  $("history-more").addEventListener("click", loadOlder);
}

/** The newest job of the history that is still under way, or undefined. */
export function newestActive() {
  return jobs.find((j) => ACTIVE.has(j.status));
}

/** Mark the row of the job shown in the "Current job" panel. */
export function markSelected(jobId) {
  for (const tr of document.querySelectorAll("#history tbody tr")) tr.classList.toggle("selected", tr.dataset.jobId === jobId);
}

function historyRow(job) {
  const row = document.createElement("tr");
  row.dataset.jobId = job.id;
  row.dataset.status = job.status;
  const current = currentJob();
  if (current && current.id === job.id) row.classList.add("selected");
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
  if (CANCELABLE.has(job.status)) {
    actions.append(button("Cancel", "danger cancel", () => cancel(job.id)));
  }
  if (RETRYABLE.has(job.status)) {
    const known = submissionFor(job.id);
    const retryButton = button("Retry", "secondary retry", () => retry(job.id),
                               known ? "submit the same inputs again" : "the inputs of this job are not known to this browser");
    retryButton.disabled = !known;
    actions.append(retryButton);
  }
  return row;
}

function renderHistory() {
  const body = document.querySelector("#history tbody");
  body.replaceChildren(...jobs.map(historyRow));
  $("history-empty").hidden = jobs.length > 0;
  $("history-more").hidden = !nextCursor;
}

/** Redraw the row of `job` (a newer state of a listed job). */
export function updateHistoryRow(job) {
  const index = jobs.findIndex((j) => j.id === job.id);
  if (index < 0) return;
  jobs[index] = job;
  const old = document.querySelector(`#history tbody tr[data-job-id="${CSS.escape(job.id)}"]`);
  if (old) old.replaceWith(historyRow(job));
}

function showHistoryError(err) {
  $("history-error").textContent = err ? (err instanceof ApiFailure ? err.text : String(err.message || err)) : "";
  $("history-error").hidden = !err;
}

/** Reload the newest page (keeping older pages already loaded), then schedule the next refresh. */
export async function refreshHistory() {
  try {
    const page = await api(`/jobs?limit=${HISTORY_PAGE}`);
    const older = jobs.slice(HISTORY_PAGE).filter((j) => !page.jobs.some((p) => p.id === j.id));
    jobs = [...page.jobs, ...older];
    if (!older.length) nextCursor = page.next_cursor;
    renderHistory();
    showHistoryError(null);
  } catch (err) {
    showHistoryError(err);
  }
  scheduleHistory();
}

async function loadOlder() {
  if (!nextCursor) return;
  try {
    const page = await api(`/jobs?limit=${HISTORY_PAGE}&cursor=${encodeURIComponent(nextCursor)}`);
    const known = new Set(jobs.map((j) => j.id));
    jobs.push(...page.jobs.filter((j) => !known.has(j.id)));
    nextCursor = page.next_cursor;
    renderHistory();
  } catch (err) {
    showHistoryError(err);
  }
}

function scheduleHistory() {
  clearTimeout(timer);
  if (tokenRefused()) return; // until a token is given
  const busy = jobs.some((j) => ACTIVE.has(j.status));
  timer = setTimeout(() => {
    if (document.visibilityState === "hidden") scheduleHistory();
    else refreshHistory();
  }, busy ? BUSY_REFRESH_MS : IDLE_REFRESH_MS);
}

/** Cancel job `id`; errors show above the history. */
export async function cancel(id) {
  try {
    const job = await cancelJob(id);
    updateHistoryRow(job);
    const current = currentJob();
    if (current && current.id === id) renderCurrent(job);
    showHistoryError(null);
  } catch (err) {
    showHistoryError(err);
  }
  refreshHistory();
}

/** Submit job `id`'s inputs again as a new job and follow it; errors show above the history. */
export async function retry(id) {
  const saved = submissionFor(id);
  if (!saved) {
    showHistoryError(new ApiFailure("retry_unavailable", "the inputs of this job are not known to this browser"));
    return;
  }
  try {
    watch(await submitJob(saved.body, saved.labels || {}));
    refreshHistory();
    showHistoryError(null);
  } catch (err) {
    showHistoryError(err);
  }
}
