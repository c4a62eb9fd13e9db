// Job statuses, in one place for the whole page. They mirror the job API's contract (the Job.status
// enum of openapi.json; the server's own definition is custom_nodes/myspinbot/server/model.py), and a
// tier-1 browser test checks that they still match it.

/** Every status a job can have. */
export const STATUSES = Object.freeze(["queued", "running", "canceling", "succeeded", "failed", "canceled", "expired"]);

/** A job in one of these never changes again: stop following it. `expired` = finished and past retention. */
export const TERMINAL = new Set(["succeeded", "failed", "canceled", "expired"]);

/** A job in one of these is still under way. */
export const ACTIVE = new Set(STATUSES.filter((s) => !TERMINAL.has(s)));

/** Statuses a job can be canceled from. */
export const CANCELABLE = new Set(["queued", "running"]);

/** Statuses a job can be retried from (same inputs, a new job). */
export const RETRYABLE = new Set(["failed", "canceled"]);
