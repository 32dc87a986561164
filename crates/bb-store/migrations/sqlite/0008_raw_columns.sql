-- The column names of raw records that are flat rows (a CSV row's header -> value), kept
-- once per user for every version that shares them. A version of such a record stores the
-- row's values as a JSON array and refers to its columns here; a 31-column Goodreads row
-- repeated its header in every version, more than half of its raw bytes. Versions written
-- before keep their whole raw record and no columns.
CREATE TABLE raw_columns (
    id      INTEGER PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    columns TEXT   NOT NULL,
    UNIQUE (user_id, columns)
);
ALTER TABLE item_source_versions ADD COLUMN raw_columns BIGINT REFERENCES raw_columns(id);
