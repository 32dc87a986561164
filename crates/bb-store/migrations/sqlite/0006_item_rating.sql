-- The shown rating beside the cached resolution, in hundredths of a star (3.5 stars = 350),
-- so the library can be listed by rating. Items resolved before this migration get it from
-- their stored resolution, where it is a star value.
ALTER TABLE library_items ADD COLUMN rating INTEGER;
UPDATE library_items
   SET rating = CAST(ROUND(json_extract(resolved, '$.rating') * 100) AS INTEGER)
 WHERE json_extract(resolved, '$.rating') IS NOT NULL;
CREATE INDEX library_items_user_rating ON library_items(user_id, rating);
