"""Repositories of the job database, one per table family, all over one ``db.Database`` (SQLite)
or ``pg_db.PgDatabase`` (PostgreSQL): the same statements on both (``pg_db.pg_sql``).

``jobs`` (the job rows and the job list), ``prompts`` (what a restart re-queues),
``idempotency`` (Idempotency-Key records), ``assets`` (uploaded inputs), ``pending_uploads``
(output uploads to retry) and ``webhooks`` (subscriptions, deliveries, attempts). Each method
is one read or one transaction; ``store.JobStore`` combines them where a change spans families.
"""
