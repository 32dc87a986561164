//! Storage for bookbridge: the `bb_core::ports` store traits implemented for SQLite
//! (embedded default) and PostgreSQL (several instances), each with its own migrations.
//!
//! Both backends run the same SQL, written once in `ports.rs` (a macro stamps it onto each
//! concrete pool type, so there is no `sqlx::Any`); a query that must differ per dialect
//! lives in that backend's module.

mod connections;
mod jobs;
mod library;
mod ports;
pub mod postgres;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
mod time;

use bb_core::error::StoreError;
use bb_core::ports::Store;
use std::sync::Arc;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Which database a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Backend(
                "database URL must start with sqlite:// or postgres://".into(),
            ))
        }
    }
}

/// Opens the database at `url`, applying pending migrations when `migrate` is set.
pub async fn open(url: &str, migrate: bool) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match Backend::from_url(url)? {
        Backend::Sqlite => {
            let store = SqliteStore::connect(url).await?;
            if migrate {
                store.migrate().await?;
            }
            Arc::new(store)
        }
        Backend::Postgres => {
            let store = PgStore::connect(url).await?;
            if migrate {
                store.migrate().await?;
            }
            Arc::new(store)
        }
    })
}

pub(crate) fn backend_err(e: &sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict("unique constraint")
        }
        other => StoreError::Backend(other.to_string()),
    }
}

fn migrate_err(e: &sqlx::migrate::MigrateError) -> StoreError {
    StoreError::Backend(format!("migration failed: {e}"))
}
