//! The PostgreSQL backend, for several bookbridge instances sharing one database.

use crate::{backend_err, migrate_err};
use bb_core::error::StoreError;
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
}

impl PgStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| backend_err(&e))?;
        Ok(Self { pool })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(|e| migrate_err(&e))
    }

    /// The pool, for tests that inspect raw rows.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }
}

crate::ports::impl_store_ports!(PgStore);
crate::library::impl_library_store!(
    PgStore,
    sqlx::Postgres,
    crate::library::BEGIN_WRITE_POSTGRES,
    crate::library::IdSource::Sequence,
    false,
    None
);
crate::jobs::impl_job_store!(PgStore, sqlx::Postgres, crate::jobs::CLAIM_POSTGRES);
crate::connections::impl_connection_store!(PgStore, sqlx::Postgres);
