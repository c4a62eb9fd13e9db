// The "Profiles" card: create a character profile from photos + a voice (POST /profiles, which
// starts its training job), follow training (the list is polled while a profile trains), delete
// one, and offer the ready ones to the "New video" form's profile menu.

import { ApiFailure, api } from "./api.js";
import { $, button, describeError } from "./dom.js";

const POLL_MS = 2000;
let profiles = [];
let timer = null;
let onChange = () => {};

/** Wire the card; `changed()` runs when the form's chosen profile had to change (it was deleted). */
export function initProfiles(changed) {
  onChange = changed;
  $("profile-form").addEventListener("submit", onCreate);
  $("profiles-refresh").addEventListener("click", () => refreshProfiles());
}

/** The ready profiles ({id, name}), newest first. */
export function readyProfiles() {
  return profiles.filter((p) => p.status === "ready");
}

/** GET /profiles, redraw the table and the menu; polls again while a profile trains. */
export async function refreshProfiles() {
  clearTimeout(timer);
  try {
    profiles = (await api("/profiles")).profiles || [];
    $("profiles-error").hidden = true;
  } catch (err) {
    showError(err);
    return;
  }
  render();
  const before = $("profile").value;
  fillMenu();
  if ($("profile").value !== before) onChange();
  if (profiles.some((p) => p.status === "training")) timer = setTimeout(refreshProfiles, POLL_MS);
}

function render() {
  const body = $("profiles").querySelector("tbody");
  body.replaceChildren();
  for (const profile of profiles) {
    const row = document.createElement("tr");
    row.dataset.profileId = profile.id;
    row.dataset.status = profile.status;
    const name = document.createElement("td");
    name.textContent = profile.name;
    const status = document.createElement("td");
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.dataset.status = profile.status === "ready" ? "succeeded" : profile.status === "training" ? "running" : profile.status;
    badge.textContent = profile.status;
    status.append(badge);
    const note = document.createElement("td");
    note.className = "muted";
    note.textContent = profileNote(profile);
    const actions = document.createElement("td");
    actions.append(button("Delete", "danger small", () => remove(profile)));
    row.append(name, status, note, actions);
    body.append(row);
  }
  $("profiles-empty").hidden = profiles.length > 0;
}

function profileNote(profile) {
  if (profile.status === "failed") {
    const photos = (profile.error && profile.error.details && profile.error.details.photos) || [];
    const dropped = photos.map((p) => `${p.photo}: ${p.message}`).join("; ");
    return [describeError(profile.error).split("\n")[0], dropped].filter(Boolean).join(" — ");
  }
  if (profile.status === "training") return `training on ${profile.photos.length} photo(s)…`;
  const voice = profile.voice_model ? ", with a fine-tuned voice" : profile.voice ? ", with voice" : "";
  return `${profile.photos.length} photo(s)${voice} · ${profile.trigger_word}`;
}

function fillMenu() {
  const select = $("profile");
  const chosen = select.value;
  select.replaceChildren(new Option("none — upload a portrait and a voice", ""));
  for (const profile of readyProfiles()) select.append(new Option(profile.name, profile.id));
  select.value = readyProfiles().some((p) => p.id === chosen) ? chosen : "";
}

async function remove(profile) {
  try {
    await api(`/profiles/${profile.id}`, { method: "DELETE" });
  } catch (err) {
    showError(err);
    return;
  }
  refreshProfiles();
}

async function onCreate(event) {
  event.preventDefault();
  const form = new FormData();
  form.append("name", $("profile-name").value);
  [...$("profile-photos").files].forEach((file, i) => form.append(`image_${i + 1}`, file, file.name));
  const voice = $("profile-voice").files[0];
  if (voice) {
    form.append("voice_sample", voice, voice.name);
    form.append("voice_transcript", $("profile-transcript").value);
  }
  const clips = [...$("profile-clips").files].sort((a, b) => a.name.localeCompare(b.name));
  clips.forEach((file, i) => form.append(`voice_clip_${i + 1}`, file, file.name));
  if (clips.length) {
    const lines = $("profile-clip-transcripts").value.split("\n").map((l) => l.trim()).filter(Boolean);
    form.append("voice_clip_transcripts", JSON.stringify(lines));
  }
  if ($("profile-fine-tune").checked) form.append("fine_tune_voice", "true");
  const steps = $("profile-steps").value.trim();
  if (steps) form.append("steps", steps);
  $("profile-create").disabled = true;
  try {
    await api("/profiles", { method: "POST", body: form });
    $("profile-form").reset();
    $("profiles-error").hidden = true;
  } catch (err) {
    showError(err);
  } finally {
    $("profile-create").disabled = false;
  }
  refreshProfiles();
}

function showError(err) {
  $("profiles-error").textContent = err instanceof ApiFailure ? err.text : String(err.message || err);
  $("profiles-error").hidden = false;
}
