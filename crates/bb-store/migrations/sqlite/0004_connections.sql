-- Connections: one linked account at a provider. Credentials are vault ciphertext (bound to
-- this row by associated data); the refresh lease and fencing counter make one refresh at a
-- time per connection across processes. Sync runs are import batches tagged with their
-- connection, so a run's contribution is undoable and "remove this account's data" is the
-- undo of every batch it wrote. Outbound request budgets shared by all instances.

CREATE TABLE connections (
    id                  INTEGER PRIMARY KEY,
    user_id             BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider            TEXT   NOT NULL,
    state               TEXT   NOT NULL,
    external_id         TEXT,
    display_name        TEXT,
    scopes              TEXT   NOT NULL DEFAULT '[]',
    settings            TEXT   NOT NULL DEFAULT '{}',
    credentials         BLOB,
    pending             BLOB,
    pending_state_hash  TEXT,
    pending_session     TEXT,
    pending_expires_at  BIGINT,
    expires_at          BIGINT,
    cursor              TEXT,
    -- Bumped by every committed credential write; a writer must hold the lease it took.
    credentials_version BIGINT NOT NULL DEFAULT 0,
    -- When the credentials were last written (linked or refreshed): keep-alive refreshes
    -- go by this, not by syncs, which use the access token but not the refresh token.
    credentials_at      BIGINT,
    lease_owner         TEXT,
    lease_token         BIGINT NOT NULL DEFAULT 0,
    lease_expires_at    BIGINT,
    last_error_code     TEXT,
    last_error          TEXT,
    last_used_at        BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    disconnected_at     BIGINT
);
CREATE INDEX connections_user ON connections(user_id, id);
-- One live link per external account: linking the same account twice is refused.
CREATE UNIQUE INDEX connections_account ON connections(user_id, provider, external_id)
    WHERE external_id IS NOT NULL AND state <> 'disconnected';
CREATE UNIQUE INDEX connections_pending_state ON connections(pending_state_hash)
    WHERE pending_state_hash IS NOT NULL;

ALTER TABLE import_batches ADD COLUMN connection_id BIGINT;
CREATE INDEX import_batches_connection ON import_batches(connection_id);

CREATE TABLE rate_budgets (
    provider     TEXT   PRIMARY KEY,
    -- Thousandths of a request, so the compare-and-set never compares floats.
    tokens_milli BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    granted      BIGINT NOT NULL DEFAULT 0
);
