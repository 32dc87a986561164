-- Large uploads wait here for their import job: the file in pieces of up to 1 MiB, so
-- neither the upload nor the job holds it whole, and it survives a restart. The pieces go
-- when the import has run; everything goes with its batch.
CREATE TABLE import_uploads (
    batch_id BIGINT NOT NULL REFERENCES import_batches(id) ON DELETE CASCADE,
    seq      BIGINT NOT NULL,
    data     BYTEA  NOT NULL,
    PRIMARY KEY (batch_id, seq)
);
