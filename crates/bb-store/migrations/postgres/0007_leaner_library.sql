-- A leaner library for large imports.
--
-- An item's resolution is no longer cached: it is resolved from its sources' current
-- records and its manual edits when read. The cached JSON was the largest column of the
-- library (over a kilobyte an item), written again on every change to the item. What
-- listings filter, search and sort on (status, rating, sort_title, search_text) and the
-- match keys stay. (SQLite also rebuilds its lookup keys as a WITHOUT ROWID table here;
-- PostgreSQL tables have no rowid to drop.)
ALTER TABLE library_items DROP COLUMN resolved;
