-- Durable jobs: the queue with leases and fencing tokens, one history row per attempt, and
-- schedules. Times are Unix milliseconds; payload, progress are JSON text.

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY,
    kind             TEXT    NOT NULL,
    key              TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    state            TEXT    NOT NULL
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'dead')),
    run_at           BIGINT  NOT NULL,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    max_attempts     BIGINT  NOT NULL,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    fencing_token    BIGINT  NOT NULL DEFAULT 0,
    progress         TEXT    NOT NULL DEFAULT 'null',
    last_error_code  TEXT,
    last_error       TEXT,
    created_at       BIGINT  NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT
);
-- At most one active job per key: this is both the dedupe rule and "one running sync per
-- connection", enforced by the database rather than by the workers' good behaviour.
CREATE UNIQUE INDEX jobs_active_key ON jobs(key) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_due ON jobs(state, run_at);
CREATE INDEX jobs_key ON jobs(key, id);

CREATE TABLE job_runs (
    id            INTEGER PRIMARY KEY,
    job_id        BIGINT  NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    attempt       BIGINT  NOT NULL,
    fencing_token BIGINT  NOT NULL,
    worker        TEXT    NOT NULL,
    started_at    BIGINT  NOT NULL,
    finished_at   BIGINT,
    outcome       TEXT
        CHECK (outcome IN ('succeeded', 'retry', 'failed', 'dead', 'lease_expired')),
    created       BIGINT  NOT NULL DEFAULT 0,
    updated       BIGINT  NOT NULL DEFAULT 0,
    unchanged     BIGINT  NOT NULL DEFAULT 0,
    removed       BIGINT  NOT NULL DEFAULT 0,
    failed        BIGINT  NOT NULL DEFAULT 0,
    error_code    TEXT,
    error_message TEXT,
    UNIQUE (job_id, fencing_token)
);
-- Attempts still running, which every claim checks for lost leases.
CREATE INDEX job_runs_open ON job_runs(job_id) WHERE finished_at IS NULL;

CREATE TABLE job_schedules (
    key          TEXT   PRIMARY KEY,
    kind         TEXT   NOT NULL,
    payload      TEXT   NOT NULL,
    interval_ms  BIGINT NOT NULL CHECK (interval_ms > 0),
    max_attempts BIGINT NOT NULL,
    next_run_at  BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX job_schedules_due ON job_schedules(next_run_at);
