-- Synthetic rows for the full Kobo schema (shared/fixtures/real/kobo/kobo.schema.md),
-- used by tests/kobo.rs and to seed the kobo_sqlite fuzz target. Booleans are written as
-- Kobo writes them: text. The `user` row holds fake secrets that must never come out.
INSERT INTO content (ContentID, ContentType, MimeType, BookID, Title, Attribution, Subtitle,
  Publisher, ISBN, Language, Series, SeriesNumber, SeriesNumberFloat, ReadStatus, ___PercentRead,
  DateLastRead, DateAdded, ___UserID, LastTimeFinishedReading, TimeSpentReading)
VALUES
 ('0b7c3f1e-1111-4a5b-9c3d-synthetic001', '6', 'application/x-kobo-epub+zip', NULL,
  'The Drift Between (synthetic)', 'Mara Quinn, Tomás Ó Briain', 'A Novel', 'Example House',
  '9780306406157', 'en', 'The Drift', '2', 2.0, 1, 42, '2024-03-01T20:15:00Z',
  '2024-01-01T10:00:00.000', 'FAKE-USER-ID-PLAIN', NULL, 5400),
 ('file:///mnt/onboard/Example/Finished Book (synthetic).epub', '6', 'application/epub+zip', NULL,
  'Finished Book (synthetic)', 'Ana Example', NULL, NULL, NULL, 'de', NULL, NULL, NULL, 2, 100,
  '2023-12-24 18:00:00.000+00:00', NULL, 'FAKE-USER-ID-PLAIN', '2023-12-24T18:00:00Z', 36000),
 ('0b7c3f1e-3333-4a5b-9c3d-synthetic003', '6', 'application/x-kobo-epub+zip', NULL,
  'Never Opened (synthetic)', 'Bea Reader', NULL, NULL, 'not-an-isbn', 'en', NULL, NULL, NULL,
  0, 0, '0000-00-00T00:00:00.000', '2024-02-02T02:02:02Z', 'FAKE-USER-ID-PLAIN', NULL, 0),
 ('0b7c3f1e-1111-4a5b-9c3d-synthetic001!OEBPS!ch01.xhtml', '9', 'application/xhtml+xml',
  '0b7c3f1e-1111-4a5b-9c3d-synthetic001', 'Chapter One', NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, 0, 0, NULL, NULL, 'FAKE-USER-ID-PLAIN', NULL, NULL),
 ('0b7c3f1e-4444-4a5b-9c3d-synthetic004!OEBPS!ch07.xhtml', '9', 'application/xhtml+xml',
  '0b7c3f1e-4444-4a5b-9c3d-synthetic004', 'Chapter Seven', 'Loaned Author', NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, 'FAKE-USER-ID-PLAIN', NULL, NULL);
UPDATE content SET BookTitle = 'Returned Library Book (synthetic)'
  WHERE ContentID LIKE '0b7c3f1e-4444%';

INSERT INTO Bookmark (BookmarkID, VolumeID, ContentID, StartContainerPath,
  StartContainerChildIndex, StartOffset, EndContainerPath, EndContainerChildIndex, EndOffset,
  Text, Annotation, DateCreated, ChapterProgress, Hidden, Type, UserID)
VALUES
 ('bm-1', '0b7c3f1e-1111-4a5b-9c3d-synthetic001', '0b7c3f1e-1111-4a5b-9c3d-synthetic001!OEBPS!ch01.xhtml',
  'span#kobo\.3\.1', 1, 0, 'span#kobo\.3\.2', 1, 40, 'The tide kept its own counsel.', NULL,
  '2024-02-10T09:00:00.000', 0.25, 'false', 'highlight', 'FAKE-USER-ID-PLAIN'),
 ('bm-2', '0b7c3f1e-1111-4a5b-9c3d-synthetic001', '0b7c3f1e-1111-4a5b-9c3d-synthetic001!OEBPS!ch01.xhtml',
  'span#kobo\.9\.1', 1, 0, 'span#kobo\.9\.1', 1, 12, 'Salt and iron.', 'Recurring image?',
  '2024-02-11T09:00:00Z', 0.5, 'false', 'note', 'FAKE-USER-ID-PLAIN'),
 ('bm-3', '0b7c3f1e-1111-4a5b-9c3d-synthetic001', '0b7c3f1e-1111-4a5b-9c3d-synthetic001!OEBPS!ch01.xhtml',
  'span#kobo\.12\.1', 1, 0, 'span#kobo\.12\.1', 1, 0, NULL, 'A note on its own.',
  '2024-02-12T09:00:00Z', 0.75, 'false', 'note', 'FAKE-USER-ID-PLAIN'),
 ('bm-4', '0b7c3f1e-1111-4a5b-9c3d-synthetic001', '0b7c3f1e-1111-4a5b-9c3d-synthetic001!OEBPS!ch01.xhtml',
  'span#kobo\.1\.1', 0, 0, 'span#kobo\.1\.1', 0, 0, NULL, NULL,
  '2024-02-13T09:00:00Z', 0.1, 'false', 'dogear', 'FAKE-USER-ID-PLAIN'),
 ('bm-5', '0b7c3f1e-1111-4a5b-9c3d-synthetic001', '0b7c3f1e-1111-4a5b-9c3d-synthetic001!OEBPS!ch01.xhtml',
  'span#kobo\.2\.1', 1, 0, 'span#kobo\.2\.1', 1, 5, 'Hidden (deleted) highlight.', NULL,
  '2024-02-14T09:00:00Z', 0.2, 'true', 'highlight', 'FAKE-USER-ID-PLAIN'),
 ('bm-6', '0b7c3f1e-4444-4a5b-9c3d-synthetic004', '0b7c3f1e-4444-4a5b-9c3d-synthetic004!OEBPS!ch07.xhtml',
  'span#kobo\.4\.1', 1, 0, 'span#kobo\.4\.1', 1, 9, 'A loaned sentence.', NULL,
  '2023-05-05T05:05:05Z', 0.6, 'false', 'highlight', 'FAKE-USER-ID-PLAIN'),
 ('bm-7', 'vanished-volume', 'vanished-volume!ch1', 'span#kobo\.1\.1', 1, 0, 'span#kobo\.1\.1',
  1, 3, 'Orphaned text.', NULL, '2022-01-01T00:00:00Z', 0.1, 'false', 'highlight',
  'FAKE-USER-ID-PLAIN');

INSERT INTO ratings (ContentID, Rating, Review, DateModified) VALUES
 ('file:///mnt/onboard/Example/Finished Book (synthetic).epub', 4, 'Loved the ending.',
  '2023-12-25T08:00:00Z');

INSERT INTO Shelf (CreationDate, Id, InternalName, LastModified, Name, Type, _IsDeleted,
  _IsVisible, _IsSynced) VALUES
 ('2024-01-01T00:00:00Z', 'shelf-1', 'Holiday', '2024-01-01T00:00:00Z', 'Holiday',
  'UserTag', 'false', 'true', 'true'),
 ('2024-01-01T00:00:00Z', 'shelf-2', 'Old Shelf', '2024-01-01T00:00:00Z', 'Old Shelf',
  'UserTag', 'true', 'false', 'true');
INSERT INTO ShelfContent (ShelfName, ContentId, DateModified, _IsDeleted, _IsSynced) VALUES
 ('Holiday', '0b7c3f1e-1111-4a5b-9c3d-synthetic001', '2024-01-02T00:00:00Z', 'false', 'true'),
 ('Old Shelf', '0b7c3f1e-1111-4a5b-9c3d-synthetic001', '2024-01-02T00:00:00Z', 'false', 'true'),
 ('Holiday', 'file:///mnt/onboard/Example/Finished Book (synthetic).epub',
  '2024-01-02T00:00:00Z', 'true', 'true');

INSERT INTO user (UserID, UserKey, UserDisplayName, UserEmail, ___DeviceID, RefreshToken,
  AuthToken, AuthType, KoboAccessToken, KoboAccessTokenExpiry) VALUES
 ('FAKE-USER-ID-PLAIN', 'FAKE-USER-KEY-5521', 'Synthetic Reader', 'secret-reader@example.invalid',
  'FAKE-DEVICE-ID-0042', 'FAKE-REFRESH-TOKEN-93ab2e', 'FAKE-AUTH-TOKEN-6f1c0d', 'Bearer',
  'FAKE-KOBO-ACCESS-TOKEN-77e1', '2099-01-01T00:00:00Z');
