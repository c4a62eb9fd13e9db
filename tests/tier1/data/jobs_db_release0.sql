-- A job database as the last unversioned release (commit 6a76060) wrote it: its JobStore and
-- WebhookStore created the file and saved these rows through their public methods; this is
-- `sqlite3 jobs.sqlite3 .dump` of the result, frozen. test_job_db.py opens it with today's code.
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    completed_at REAL,
    progress REAL NOT NULL DEFAULT 0,
    params TEXT NOT NULL DEFAULT '{}',
    outputs TEXT NOT NULL DEFAULT '[]',
    error TEXT
, stage TEXT, message TEXT, progress_detail TEXT);
INSERT INTO jobs VALUES('5b0c1f1e-8a43-4d1c-9a57-0c1d8e3f2a10','lite','succeeded',1767225600.2499999999,1767225601.4999999999,1767225660.7499999999,1.0,'{"portrait": "myspinbot/assets/ab.png", "audio": "myspinbot/assets/cd.wav", "fps": 25}','[{"name": "video", "type": "video", "content_type": "video/mp4", "size_bytes": 123456, "path": "myspinbot/5b0c1f1e-8a43-4d1c-9a57-0c1d8e3f2a10/output_00001.mp4", "storage": {"kind": "s3", "uri": "s3://bucket/v.mp4", "presigned_url": null, "status": "pending", "warning": "upload failed; retrying"}}]',NULL,'store','done','{"stage_index": 2, "stages": 3, "step": null, "steps": null, "eta_seconds": 0.0}');
INSERT INTO jobs VALUES('9d7e2c44-1b6f-4e0a-8c3d-2f5a6b7c8d90','lite','queued',1767225700.0,NULL,NULL,0.0,'{}','[]',NULL,NULL,'waiting in ComfyUI''s queue','{"stage_index": null, "stages": 3}');
INSERT INTO jobs VALUES('c3a1e5f7-2d4b-4c6e-8f0a-1b3d5e7f9a2c','animate','failed',1767225500.0,1767225501.0,1767225502.0,0.125,'{}','[]','{"code": "execution_error", "message": "node 3 failed", "details": {"node": "3"}}','animate',NULL,NULL);
CREATE TABLE assets (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    path TEXT NOT NULL,
    created_at REAL NOT NULL
);
INSERT INTO assets VALUES('abababababababababababababababababababababababababababababababab','image','image/png',2048,'myspinbot/assets/abababababababababababababababababababababababababababababababab.png',1767225590.0);
CREATE TABLE idempotency_keys (
    key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    job_id TEXT NOT NULL,
    created_at REAL NOT NULL
);
INSERT INTO idempotency_keys VALUES('key-1','f00df00df00df00df00df00df00df00df00df00df00df00df00df00df00df00d','5b0c1f1e-8a43-4d1c-9a57-0c1d8e3f2a10',1767225600.0);
INSERT INTO idempotency_keys VALUES('key-2','beefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeef','9d7e2c44-1b6f-4e0a-8c3d-2f5a6b7c8d90',1767225700.0);
CREATE TABLE job_prompts (
    job_id TEXT PRIMARY KEY,
    prompt TEXT NOT NULL,
    output_nodes TEXT NOT NULL DEFAULT '{}',
    node_stages TEXT NOT NULL DEFAULT '{}',
    requeue_count INTEGER NOT NULL DEFAULT 0
, runs INTEGER NOT NULL DEFAULT 0);
INSERT INTO job_prompts VALUES('9d7e2c44-1b6f-4e0a-8c3d-2f5a6b7c8d90','{"1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}}}','{"video": "9"}','{"1": "load"}',1,1);
INSERT INTO job_prompts VALUES('5b0c1f1e-8a43-4d1c-9a57-0c1d8e3f2a10','{"1": {"class_type": "LoadImage", "inputs": {}}}','{"video": "9"}','{"1": "load"}',0,0);
CREATE TABLE output_uploads (
    job_id TEXT NOT NULL,
    name TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (job_id, name)
);
INSERT INTO output_uploads VALUES('5b0c1f1e-8a43-4d1c-9a57-0c1d8e3f2a10','video','{"path": "myspinbot/5b0c1f1e-8a43-4d1c-9a57-0c1d8e3f2a10/output_00001.mp4", "key": "v.mp4", "attempts": 1, "next_at": 1767225700.0}');
CREATE TABLE webhooks (
    job_id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    created_at REAL NOT NULL
);
INSERT INTO webhooks VALUES('5b0c1f1e-8a43-4d1c-9a57-0c1d8e3f2a10','https://hooks.example.com/myspinbot','["job.status", "job.completed"]',1767225600.0);
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    status TEXT NOT NULL,
    response_code INTEGER,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
INSERT INTO webhook_deliveries VALUES('msg_0123456789abcdef0123456789abcdef','5b0c1f1e-8a43-4d1c-9a57-0c1d8e3f2a10','job.completed','https://hooks.example.com/myspinbot','{"type":"job.completed"}',1,1767225672.0,'pending',503,'HTTP 503',1767225661.0,1767225662.0);
CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at REAL NOT NULL,
    outcome TEXT NOT NULL,
    response_code INTEGER,
    error TEXT,
    duration_s REAL,
    next_attempt_at REAL,
    PRIMARY KEY (delivery_id, attempt)
);
INSERT INTO webhook_attempts VALUES('msg_0123456789abcdef0123456789abcdef',1,1767225662.0,'retry',503,'HTTP 503',0.25,1767225672.0);
CREATE INDEX jobs_status ON jobs(status);
CREATE INDEX jobs_created ON jobs(created_at);
CREATE INDEX idempotency_created ON idempotency_keys(created_at);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX webhook_deliveries_job ON webhook_deliveries(job_id);
COMMIT;
