// Job actions (submit, cancel, upload an input) and the submissions this browser keeps for retry.

import { api, randomKey } from "./api.js";

const STORE_KEY = "myspinbot.submissions.v1";
const STORE_MAX = 100; // submissions kept in localStorage, newest first
const memorySubmissions = {}; // this page's submissions, also when localStorage is unavailable

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

/** What was submitted for `jobId` ({body, labels}), or null when this browser does not know. */
export function submissionFor(jobId) {
  return memorySubmissions[jobId] || loadSubmissions()[jobId] || null;
}

/** POST /jobs with a fresh Idempotency-Key; remembers the submission; resolves to the new job. */
export async function submitJob(body, labels) {
  const job = await api("/jobs", {
    method: "POST",
    headers: { "Content-Type": "application/json", "Idempotency-Key": randomKey() },
    body: JSON.stringify(body),
  });
  saveSubmission(job.id, body, labels);
  return job;
}

/** POST /jobs/{id}/cancel; resolves to the job. */
export function cancelJob(id) {
  return api(`/jobs/${encodeURIComponent(id)}/cancel`, { method: "POST" });
}

/** POST /assets with one file; resolves to its asset id. */
export async function uploadAsset(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  const asset = await api("/assets", { method: "POST", body: form });
  return asset.asset_id;
}
