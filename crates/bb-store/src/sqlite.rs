//! The embedded SQLite backend: WAL, foreign keys on, a busy timeout.

use crate::{backend_err, migrate_err};
use bb_core::error::StoreError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The page cache of an import's writer connection (see `LibraryWriter`): 16 MiB. A
/// 100k-item library's indexes outgrow SQLite's default 2 MiB, and every insert then
/// rereads pages from the OS; the writer keeps its connection, so its cache stays warm
/// from one chunk to the next. The connection is closed when the import ends.
pub(crate) const WRITER_CACHE: &str = "PRAGMA cache_size = -16384";

/// The page size of a database this store creates.
pub const PAGE_SIZE: u32 = 8192;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| backend_err(&e))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // SQLite's default page cache, 2 MiB per connection: enough for reads, which
            // touch few pages each. An import's writer has a larger one (`WRITER_CACHE`).
            .pragma("cache_size", "-2048")
            // 8 KiB pages for a new database (an existing one keeps its own): items and
            // source versions are rows of about a kilobyte, and 4 KiB pages left a quarter
            // of each page empty. A 100k-row import writes 3% fewer bytes and runs about
            // 6% faster (BENCHMARKS.md, session 7).
            .page_size(PAGE_SIZE)
            // A checkpoint copies every page in the WAL back into the database file. At
            // SQLite's default of 1,000 pages an import checkpointed about every other chunk,
            // rewriting the same index pages each time (8% of a 100k-row import's CPU); at
            // 32 MiB of WAL (emptied at each checkpoint) a page written by several chunks is
            // copied back once.
            .pragma("wal_autocheckpoint", "4000")
            // A multi-row insert inside a transaction opens a statement journal, and SQLite
            // keeps it in a temporary file by default: an import wrote a third of its
            // `pwrite` calls to files in /var/tmp, one per transaction. In memory instead.
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|e| backend_err(&e))?;
        Ok(Self { pool })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(|e| migrate_err(&e))
    }

    /// The pool, for tests that inspect raw rows.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }
}

crate::ports::impl_store_ports!(SqliteStore);
crate::library::impl_library_store!(
    SqliteStore,
    sqlx::Sqlite,
    crate::library::BEGIN_WRITE_SQLITE,
    crate::library::IdSource::AfterMax,
    true,
    Some(crate::sqlite::WRITER_CACHE)
);
crate::jobs::impl_job_store!(SqliteStore, sqlx::Sqlite, crate::jobs::CLAIM_SQLITE);
crate::connections::impl_connection_store!(SqliteStore, sqlx::Sqlite);
