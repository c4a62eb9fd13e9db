// myspinbot page: submit a talking-head job, follow its progress, play the video, manage the history.
// Plain ES modules, no build step (index.html loads this one with <script type="module">):
//   api.js      where the API is, the token and session, requests and the error envelope
//   statuses.js the job statuses (terminal, active, ...)
//   form.js     the "New video" form, built from GET /pipelines
//   jobs.js     submit / cancel / upload, and the submissions kept for retry
//   current.js  the "Current job" panel and its video
//   watch.js    following the current job (server-sent events or polling)
//   history.js  the history table
//   profiles.js the "Profiles" card (create, follow training, delete) and the form's profile menu
// This module wires them together, asks for the API token when the server wants one, and starts.

import { onTokenRefused, resetRefused, setToken, signIn, signOut, token, tokenRefused, usingToken } from "./api.js";
import { currentJob, onJobShown, onVideoError } from "./current.js";
import { $ } from "./dom.js";
import { initForm, loadPipelines, pipelineCount, showFormError, showPipelineFields } from "./form.js";
import { cancel, initHistory, markSelected, newestActive, refreshHistory, retry, updateHistoryRow } from "./history.js";
import { initProfiles, refreshProfiles } from "./profiles.js";
import { onJobChange, watch } from "./watch.js";

function showAuth(err) {
  $("auth").hidden = false;
  $("auth-error").textContent = err ? err.text : "";
  $("auth-error").hidden = !err;
  $("server-status").textContent = "API token needed";
}

function keepToken(value) {
  setToken(value);
  $("token-forget").hidden = !value;
}

// Sent here by the guard of ComfyUI's own routes (?next=/...): go back there once signed in.
function followNext() {
  const next = new URLSearchParams(window.location.search).get("next");
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.includes("\\")) return false;
  window.location.assign(next);
  return true;
}

async function connect() {
  resetRefused();
  try {
    await loadPipelines();
    $("auth").hidden = true;
    $("server-status").textContent = `connected · ${pipelineCount()} pipelines`;
  } catch (err) {
    if (tokenRefused()) return;
    $("server-status").textContent = "";
    showFormError(err);
    return;
  }
  await refreshHistory();
  await refreshProfiles();
  // After a reload, follow the newest unfinished job.
  const active = newestActive();
  if (!currentJob() && active) watch(active);
  document.body.dataset.ready = "true";
}

function start() {
  onTokenRefused(showAuth);
  onJobShown((job) => markSelected(job.id));
  onJobChange(updateHistoryRow, () => refreshHistory());
  initForm((job) => {
    watch(job);
    refreshHistory();
  });
  initHistory();
  initProfiles(showPipelineFields);
  $("current-cancel").addEventListener("click", () => currentJob() && cancel(currentJob().id));
  $("current-retry").addEventListener("click", () => currentJob() && retry(currentJob().id));
  $("auth-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    if (!value) return;
    keepToken(value);
    $("token").value = "";
    if ((await signIn(value)) && followNext()) return;
    connect();
  });
  $("token-forget").addEventListener("click", async () => {
    keepToken("");
    await signOut();
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
