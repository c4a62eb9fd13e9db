// The "Current job" panel: status, stage, progress bar, ETA, error, and the video when it succeeded.
// This module owns which job the panel shows.

import { authHeaders, jobUrl, usingToken } from "./api.js";
import { $, describeError, formatSeconds } from "./dom.js";
import { submissionFor } from "./jobs.js";
import { ACTIVE, CANCELABLE, RETRYABLE } from "./statuses.js";

let current = null; // the job shown
let observed = null; // {id, t, value}: first progress seen while running (for the ETA when the server gives none)
let videoObjectUrl = null; // a blob: URL of a video fetched with the token
let onShown = () => {};

/** The job the panel shows, or null. */
export function currentJob() {
  return current;
}

/** Call `listener(job)` each time the panel shows a job. */
export function onJobShown(listener) {
  onShown = listener;
}

/** Forget the ETA's starting point (a new job is followed). */
export function resetEta() {
  observed = null;
}

/** Show `text` as the job's error line. */
export function showJobError(text) {
  $("job-error").textContent = text;
  $("job-error").hidden = false;
}

function etaSeconds(job) {
  const progress = job.progress || {};
  if (typeof progress.eta_seconds === "number" && isFinite(progress.eta_seconds)) return progress.eta_seconds;
  if (job.status !== "running") return null;
  const value = Number(progress.value) || 0;
  if (!observed || observed.id !== job.id) return null;
  const done = value - observed.value;
  const elapsed = (performance.now() - observed.t) / 1000;
  if (done < 0.02 || elapsed < 1) return null;
  return (elapsed * (1 - value)) / done;
}

/** Show `job` (a Job of the API) in the panel. */
export function renderCurrent(job) {
  current = job;
  const progress = job.progress || {};
  const value = job.status === "succeeded" ? 1 : Math.min(1, Math.max(0, Number(progress.value) || 0));
  if (job.status === "running" && (!observed || observed.id !== job.id)) {
    observed = { id: job.id, t: performance.now(), value };
  }
  $("current-empty").hidden = true;
  onShown(job);
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

  $("current-cancel").hidden = !CANCELABLE.has(job.status);
  $("current-retry").hidden = !(RETRYABLE.has(job.status) && submissionFor(job.id));

  const errorBox = $("job-error");
  errorBox.hidden = !job.error;
  errorBox.textContent = job.error ? describeError(job.error) : "";

  const output = (job.outputs || []).find((o) => o.name === "video") || (job.outputs || []).find((o) => o.type === "video");
  if (job.status === "succeeded" && output) {
    showVideo(jobUrl(job.id, `/outputs/${encodeURIComponent(output.name)}`));
  } else {
    hideVideo();
  }
  const quality = job.status === "succeeded" && output ? qualityText(output.quality) : "";
  $("quality").textContent = quality;
  $("quality").hidden = !quality;
}

/** The line under the video for an output's lip-sync `quality` ("" when there is none). */
function qualityText(quality) {
  if (!quality) return "";
  if (quality.skipped) return `Lip sync not scored: ${quality.skipped.message || quality.skipped.code}`;
  const offset = quality.av_offset_frames;
  return `Lip sync (SyncNet): LSE-D ${quality.lse_d.toFixed(2)} (lower is better), ` +
    `LSE-C ${quality.lse_c.toFixed(2)} (higher is better), offset ${offset > 0 ? "+" : ""}${offset} frames`;
}

// --- the video ----------------------------------------------------------------------------------

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
        videoObjectUrl = URL.createObjectURL(blob);
        $("download").href = videoObjectUrl;
        playVideo(videoObjectUrl);
      })
      .catch((err) => showJobError(`video_unavailable: ${err.message}`));
    return;
  }
  $("download").href = url;
  playVideo(url);
}

/** Say why the video cannot play (a Content-Security-Policy that forbids blob: media, or a load error). */
export function onVideoError() {
  const video = $("video");
  if (!video.dataset.src) return;
  showJobError(videoObjectUrl
    ? "video_blocked: this ComfyUI's Content-Security-Policy does not let the page play a video it fetched " +
      "with the API token; use the download link"
    : `video_unavailable: the browser cannot play ${video.dataset.src} (${video.error ? video.error.message || video.error.code : "error"})`);
}

function releaseVideoUrl() {
  if (videoObjectUrl) URL.revokeObjectURL(videoObjectUrl);
  videoObjectUrl = null;
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
