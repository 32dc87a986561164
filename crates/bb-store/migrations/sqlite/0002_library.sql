-- The library: import batches, items with their cached resolution and lookup keys, item
-- sources with one version per batch that wrote them (so undo can fall back), manual edits,
-- never-merge pairs and possible duplicates. Everything cascades from users.

CREATE TABLE import_batches (
    id          INTEGER PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    format      TEXT   NOT NULL,
    provider    TEXT   NOT NULL,
    label       TEXT,
    state       TEXT   NOT NULL,
    counts      TEXT   NOT NULL,
    errors      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    finished_at BIGINT,
    undone_at   BIGINT
);
CREATE INDEX import_batches_user ON import_batches(user_id, id);

CREATE TABLE library_items (
    id          INTEGER PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    resolved    TEXT   NOT NULL,
    match_keys  TEXT   NOT NULL,
    sort_title  TEXT   NOT NULL,
    search_text TEXT   NOT NULL,
    status      TEXT,
    created_by  BIGINT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX library_items_user_sort ON library_items(user_id, sort_title, id);
CREATE INDEX library_items_user_status ON library_items(user_id, status);

-- Lookup keys: `id:<scheme>:<value>`, `block:<blocking key>`, `src:<provider>:<key>` for
-- candidate lookup; `shelf:`, `format:`, `prov:` for list filters.
CREATE TABLE library_item_keys (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    item_id BIGINT NOT NULL REFERENCES library_items(id) ON DELETE CASCADE,
    key     TEXT   NOT NULL,
    PRIMARY KEY (item_id, key)
);
CREATE INDEX library_item_keys_lookup ON library_item_keys(user_id, key);

CREATE TABLE item_sources (
    id              INTEGER PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    item_id         BIGINT NOT NULL REFERENCES library_items(id) ON DELETE CASCADE,
    provider        TEXT   NOT NULL,
    source_key      TEXT   NOT NULL,
    UNIQUE (user_id, provider, source_key)
);
CREATE INDEX item_sources_item ON item_sources(item_id);

-- Every version a batch (or connection) wrote; a source's current version is its newest
-- (highest id), so undo only has to delete the batch's rows.
CREATE TABLE item_source_versions (
    id          INTEGER PRIMARY KEY,
    source_id   BIGINT NOT NULL REFERENCES item_sources(id) ON DELETE CASCADE,
    origin_kind TEXT   NOT NULL,
    origin_id   BIGINT NOT NULL,
    record      TEXT   NOT NULL,
    raw         TEXT   NOT NULL,
    seen_at     BIGINT NOT NULL
);
CREATE INDEX item_source_versions_source ON item_source_versions(source_id, id);
CREATE INDEX item_source_versions_origin ON item_source_versions(origin_kind, origin_id);

CREATE TABLE item_edits (
    item_id    BIGINT PRIMARY KEY REFERENCES library_items(id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    edits      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Pairs the user split apart; stored with item_a < item_b.
CREATE TABLE never_merge (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    item_a  BIGINT NOT NULL REFERENCES library_items(id) ON DELETE CASCADE,
    item_b  BIGINT NOT NULL REFERENCES library_items(id) ON DELETE CASCADE,
    PRIMARY KEY (item_a, item_b)
);
CREATE INDEX never_merge_b ON never_merge(item_b);

-- Stored with item_a < item_b; one row per pair, so a dismissed pair stays dismissed.
CREATE TABLE possible_duplicates (
    id         INTEGER PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    item_a     BIGINT NOT NULL REFERENCES library_items(id) ON DELETE CASCADE,
    item_b     BIGINT NOT NULL REFERENCES library_items(id) ON DELETE CASCADE,
    reason     TEXT   NOT NULL,
    state      TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    decided_at BIGINT,
    UNIQUE (item_a, item_b)
);
CREATE INDEX possible_duplicates_user ON possible_duplicates(user_id, state);
CREATE INDEX possible_duplicates_b ON possible_duplicates(item_b);
