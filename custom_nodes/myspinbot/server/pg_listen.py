"""``LISTEN`` on a PostgreSQL channel from a background thread: each notification calls a
function (on the thread; hand it to the event loop with ``loop.call_soon_threadsafe``).

The shared queue uses it so that an idle server claims a new job at once instead of at its next
poll (the poll stays as the fallback: a notification sent while the listener reconnects is lost).
``notify`` sends one, inside the caller's transaction when there is one (delivered on commit).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

log = logging.getLogger("myspinbot.jobs")

QUEUE_CHANNEL = "myspinbot_queue"
"""Notified (payload: the job id) when a job becomes claimable: submitted, or queued again."""


def notify(conn: Any, channel: str, payload: str = "") -> None:
    """``pg_notify(channel, payload)`` on ``conn`` (a ``pg_db.PgConnection``)."""
    conn.execute("SELECT pg_notify(?, ?)", (channel, payload))


class Listener:
    """A thread holding its own connection to ``url`` that listens on ``channel`` and calls
    ``on_notify(payload)`` for each notification; reconnects after ``retry_s`` when the
    connection fails. ``stop`` ends it within about ``tick_s``."""

    def __init__(self, url: str, channel: str, on_notify: Callable[[str], None], *, tick_s: float = 0.5,
                 retry_s: float = 2.0):
        self.url, self.channel, self.on_notify, self.tick_s, self.retry_s = url, channel, on_notify, tick_s, retry_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()
        """Set while the connection listens (tests wait for it)."""

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"myspinbot-listen-{self.channel}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(self.tick_s * 4 + 5)

    def _run(self) -> None:
        import psycopg
        from psycopg import sql

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self.listening.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=self.tick_s):
                            try:
                                self.on_notify(note.payload)
                            except Exception:
                                log.exception("myspinbot: a %s notification failed", self.channel)
            except Exception as err:  # the database went away: listen again when it is back
                log.warning("myspinbot: listening on %s failed (%s); retrying in %.0f s", self.channel, err, self.retry_s)
            finally:
                self.listening.clear()
            self._stop.wait(self.retry_s)
