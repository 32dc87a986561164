//! Fresh databases for tests (feature `testing`): a new SQLite file, and a new PostgreSQL
//! database created from `BOOKBRIDGE_TEST_POSTGRES_URL`, or a loud skip when it is unset.

use crate::{PgStore, SqliteStore, backend_err};
use bb_core::error::StoreError;
use bb_core::ports::Store;
use sqlx::Connection;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

pub const POSTGRES_ENV: &str = "BOOKBRIDGE_TEST_POSTGRES_URL";

/// A fresh, migrated store and the URL that reaches it.
#[derive(Debug)]
pub struct TestDb {
    pub name: &'static str,
    pub url: String,
    pub store: Arc<dyn Store>,
    pub sqlite: Option<SqliteStore>,
    pub postgres: Option<PgStore>,
}

pub async fn fresh_sqlite(dir: &Path) -> Result<TestDb, StoreError> {
    let url = format!("sqlite://{}", dir.join("bookbridge.db").display());
    let store = SqliteStore::connect(&url).await?;
    store.migrate().await?;
    Ok(TestDb {
        name: "sqlite",
        url,
        store: Arc::new(store.clone()),
        sqlite: Some(store),
        postgres: None,
    })
}

/// The base URL for test databases, or `None` after printing a loud skip notice.
pub fn postgres_base_url(test: &str) -> Option<String> {
    if let Ok(url) = std::env::var(POSTGRES_ENV)
        && !url.is_empty()
    {
        return Some(url);
    }
    eprintln!(
        "\n*** SKIPPED on PostgreSQL: {test} — set {POSTGRES_ENV} \
         (e.g. postgres://postgres@127.0.0.1:5432/postgres) to run it ***\n"
    );
    None
}

/// Creates an empty database with a unique name next to the one `base` names and returns
/// a URL for it (unmigrated).
pub async fn create_postgres_database(base: &str) -> Result<String, StoreError> {
    let mut url = url::Url::parse(base).map_err(|e| StoreError::Backend(e.to_string()))?;
    let name = format!("bb_test_{:016x}", rand_u64());
    let mut admin = sqlx::PgConnection::connect(base)
        .await
        .map_err(|e| backend_err(&e))?;
    // `name` is generated above from hex digits only.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .map_err(|e| backend_err(&e))?;
    url.set_path(&name);
    Ok(url.to_string())
}

/// A fresh, migrated PostgreSQL store, or `None` (skipped loudly) without the env variable.
pub async fn fresh_postgres(test: &str) -> Result<Option<TestDb>, StoreError> {
    let Some(base) = postgres_base_url(test) else {
        return Ok(None);
    };
    let url = create_postgres_database(&base).await?;
    let store = PgStore::connect(&url).await?;
    store.migrate().await?;
    Ok(Some(TestDb {
        name: "postgres",
        url,
        store: Arc::new(store.clone()),
        sqlite: None,
        postgres: Some(store),
    }))
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    // RandomState is seeded per process from the OS; mixing in the time-free counter keeps
    // names unique within one process too.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    RandomState::new().hash_one((n, std::process::id()))
}

/// Runs `check` on a fresh SQLite database and then, when `BOOKBRIDGE_TEST_POSTGRES_URL` is
/// set, on a fresh PostgreSQL one (skipped loudly otherwise): every store test, both backends.
pub async fn on_both<F, Fut>(test: &str, check: F)
where
    F: Fn(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("a temporary directory for the SQLite test database");
    check(
        fresh_sqlite(dir.path())
            .await
            .expect("a fresh SQLite test database"),
    )
    .await;
    if let Some(db) = fresh_postgres(test)
        .await
        .expect("a fresh PostgreSQL test database")
    {
        check(db).await;
    }
}
