// The "New video" form: which fields a pipeline takes (read from GET /pipelines: each pipeline's
// parameters as JSON Schema), reading the fields into a job body, and showing what the API refused.

import { ApiFailure, api } from "./api.js";
import { $ } from "./dom.js";
import { submitJob, uploadAsset } from "./jobs.js";

// Which page field feeds which pipeline parameter (the first one the pipeline has).
const FIELD_PARAMS = {
  profile: ["profile"],
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
// What a chosen profile gives instead (POST /jobs refuses them together with 'profile').
const PROFILE_FILLS = ["portrait", "recording", "transcript"];
// Pipelines the form does not offer: train_profile is submitted by the Profiles card (POST /profiles).
const HIDDEN_PIPELINES = new Set(["train_profile"]);

let pipelines = {}; // name -> {description, params: {name: JSON Schema}}
let onCreated = () => {};

/** Wire the form; `created(job)` runs after each job the form submits. */
export function initForm(created) {
  onCreated = created;
  $("job-form").addEventListener("submit", onSubmit);
  $("pipeline").addEventListener("change", showPipelineFields);
  $("profile").addEventListener("change", showPipelineFields);
  for (const id of [...FILE_FIELDS, ...TEXT_FIELDS]) {
    $(id).addEventListener("input", () => $(id).classList.remove("invalid"));
  }
}

export function pipelineCount() {
  return Object.keys(pipelines).length;
}

/** GET /pipelines and fill the pipeline menu (lite first); rejects with ApiFailure. */
export async function loadPipelines() {
  const listing = await api("/pipelines");
  const loaded = {};
  for (const item of listing.pipelines || []) {
    if (HIDDEN_PIPELINES.has(item.name)) continue;
    const schema = item.parameters || {};
    loaded[item.name] = { description: item.description || "", params: schema.properties || {} };
  }
  pipelines = loaded;
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
  const pipeline = pipelines[pipelineName];
  if (!pipeline) return null;
  return FIELD_PARAMS[field].find((p) => p in pipeline.params) || null;
}

/** Number inputs take their bounds and placeholder (the default) from the parameter's schema. */
function applyNumberSchema(field, schema) {
  const input = $(field);
  for (const [attribute, key] of [["min", "minimum"], ["max", "maximum"]]) {
    if (typeof schema[key] === "number") input.setAttribute(attribute, String(schema[key]));
    else input.removeAttribute(attribute);
  }
  input.placeholder = schema.default === undefined ? "" : String(schema.default);
  input.title = schema.description || "";
}

/** Show the fields of the chosen pipeline (and profile). */
export function showPipelineFields() {
  const name = $("pipeline").value;
  const pipeline = pipelines[name];
  $("pipeline-description").textContent = pipeline ? pipeline.description : "";
  const profiled = Boolean(paramFor("profile", name) && $("profile").value);
  for (const row of document.querySelectorAll("[data-field]")) {
    row.hidden = !paramFor(row.dataset.field, name) || (profiled && PROFILE_FILLS.includes(row.dataset.field));
  }
  for (const field of NUMBER_FIELDS) {
    const param = paramFor(field, name);
    if (param) applyNumberSchema(field, pipeline.params[param]);
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

/** Show `err` under the form and mark the fields its details name (`field`, `fields`). */
export function showFormError(err) {
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

/** The job body of the form: files uploaded as assets first; returns {body, labels}. */
async function readForm(pipeline) {
  const inputs = {};
  const labels = {};
  const profile = paramFor("profile", pipeline) && $("profile").value;
  if (profile) {
    inputs.profile = profile;
    labels.profile = $("profile").selectedOptions[0].textContent;
  }
  for (const field of FILE_FIELDS) {
    if (profile && PROFILE_FILLS.includes(field)) continue;
    const param = paramFor(field, pipeline);
    const file = param && $(field).files[0];
    if (!file) continue;
    $("submit-status").textContent = `uploading ${file.name}…`;
    inputs[param] = { asset_id: await uploadAsset(file) };
    labels[param] = file.name;
  }
  for (const field of TEXT_FIELDS) {
    if (profile && PROFILE_FILLS.includes(field)) continue;
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
  return { body: { pipeline, inputs }, labels };
}

async function onSubmit(event) {
  event.preventDefault();
  clearFormError();
  const button = $("submit");
  button.disabled = true;
  try {
    const { body, labels } = await readForm($("pipeline").value);
    $("submit-status").textContent = "submitting…";
    onCreated(await submitJob(body, labels));
    $("submit-status").textContent = "";
  } catch (err) {
    $("submit-status").textContent = "";
    showFormError(err);
  } finally {
    button.disabled = false;
  }
}
