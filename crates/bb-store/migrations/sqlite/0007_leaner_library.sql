-- A leaner library for large imports.
--
-- An item's resolution is no longer cached: it is resolved from its sources' current
-- records and its manual edits when read. The cached JSON was the largest column of the
-- library (over a kilobyte an item), written again on every change to the item. What
-- listings filter, search and sort on (status, rating, sort_title, search_text) and the
-- match keys stay.
ALTER TABLE library_items DROP COLUMN resolved;

-- Lookup keys become a WITHOUT ROWID table: its primary key was a second copy of every
-- row (a rowid table plus the key's index), so each key cost three b-tree inserts; now two.
CREATE TABLE library_item_keys_new (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    item_id BIGINT NOT NULL REFERENCES library_items(id) ON DELETE CASCADE,
    key     TEXT   NOT NULL,
    PRIMARY KEY (item_id, key)
) WITHOUT ROWID;
INSERT INTO library_item_keys_new (user_id, item_id, key)
    SELECT user_id, item_id, key FROM library_item_keys;
DROP TABLE library_item_keys;
ALTER TABLE library_item_keys_new RENAME TO library_item_keys;
CREATE INDEX library_item_keys_lookup ON library_item_keys(user_id, key);
