// Small DOM and formatting helpers shared by the page's modules (no state).

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** A <button type="button"> with a label, classes, a click handler and an optional tooltip. */
export function button(label, className, onClick, title = "") {
  const el = document.createElement("button");
  el.type = "button";
  el.className = className;
  el.textContent = label;
  if (title) el.title = title;
  el.addEventListener("click", onClick);
  return el;
}

/** "42 s" or "3 min 05 s". */
export function formatSeconds(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${String(s % 60).padStart(2, "0")} s`;
}

/** An ISO time as local time of day (today) or local date and time. */
export function formatWhen(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (isNaN(date)) return iso;
  const today = new Date();
  return date.toDateString() === today.toDateString() ? date.toLocaleTimeString() : date.toLocaleString();
}

/** A job's `error` ({code, message} or a string) as one line. */
export function describeError(error) {
  if (!error) return "";
  if (typeof error === "string") return error;
  return [error.code, error.message].filter(Boolean).join(": ") || JSON.stringify(error);
}
