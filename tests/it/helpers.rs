//! Shared fixtures for the integration tests: a fresh database per test on
//! either backend, and `backend_tests!`, which runs one test body on both.
//!
//! PostgreSQL: each `TestDb` creates `ops_worker_t_<random>` through the
//! admin URL in `OPS_WORKER_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and drops it when dropped.
//! SQLite: a file in a temporary directory (never `:memory:`, which a pool
//! would split into one database per connection).
#![allow(dead_code)] // each helper is used by some test files, not all

use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use ops_worker::db::{Backend, DatabaseUrl, Db};

#[path = "../support/pg_url.rs"]
mod pg_url;
use pg_url::with_database;

/// Pool size of every test database, on both backends: enough for the
/// concurrency tests. Not the daemon's (`DatabaseUrl::pool_size`: 16 for
/// PostgreSQL, 2 for SQLite); the CLI tests run the real binary with those.
pub const POOL_SIZE: u32 = 8;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The PostgreSQL URL used to create and drop test databases.
pub fn pg_admin_url() -> String {
    std::env::var("OPS_WORKER_TEST_PG")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_ADMIN_URL.to_owned())
}

/// A database of its own for one test, dropped with it.
pub struct TestDb {
    // Dropped before `_dir`, so the pool closes its files first.
    db: Db,
    url: DatabaseUrl,
    /// PostgreSQL: the database to drop.
    pg_name: Option<String>,
    /// SQLite: the directory holding the file.
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh database with all migrations applied.
    pub async fn new(backend: Backend) -> TestDb {
        let test_db = TestDb::empty(backend).await;
        test_db
            .db
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("migrating the {backend} test database: {e:?}"));
        test_db
    }

    /// A fresh database with no tables (to test migrating itself).
    pub async fn empty(backend: Backend) -> TestDb {
        match backend {
            Backend::Postgres => {
                let admin = pg_admin_url();
                let name = format!("ops_worker_t_{}", unique_suffix());
                let mut conn = pg_connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("connecting to {admin} (OPS_WORKER_TEST_PG): {e}"));
                conn.batch_execute(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
                let url = DatabaseUrl::parse(Some(&with_database(&admin, &name)))
                    .unwrap_or_else(|e| panic!("OPS_WORKER_TEST_PG: {e}"));
                let db = connect(&url).await;
                TestDb {
                    db,
                    url,
                    pg_name: Some(name),
                    _dir: None,
                }
            }
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("creating a temporary directory");
                let url = DatabaseUrl::Sqlite(dir.path().join("ops-worker.db"));
                let db = connect(&url).await;
                TestDb {
                    db,
                    url,
                    pg_name: None,
                    _dir: Some(dir),
                }
            }
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The URL as a `DATABASE_URL` value, e.g. for a child process.
    pub fn url_string(&self) -> String {
        self.url.to_url_string()
    }

    /// SQLite: the database file.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => Some(path),
            DatabaseUrl::Postgres(_) => None,
        }
    }

    /// A second, independent pool on the same database (another "process").
    pub async fn connect_again(&self) -> Db {
        connect(&self.url).await
    }

    /// A connection outside the pool, for raw SQL in tests (PostgreSQL only).
    pub async fn pg_conn(&self) -> AsyncPgConnection {
        match &self.url {
            DatabaseUrl::Postgres(url) => url.establish().await.unwrap_or_else(|e| {
                panic!(
                    "connecting to the test database: {}",
                    ops_worker::error_chain(&e)
                )
            }),
            DatabaseUrl::Sqlite(_) => panic!("pg_conn on an SQLite TestDb"),
        }
    }

    /// A connection outside the pool, for raw SQL in tests (SQLite only).
    pub async fn sqlite_conn(&self) -> SyncConnectionWrapper<SqliteConnection> {
        let path = self
            .sqlite_path()
            .expect("sqlite_conn on a PostgreSQL TestDb");
        let mut conn = SyncConnectionWrapper::<SqliteConnection>::establish(
            path.to_str().expect("temporary path is UTF-8"),
        )
        .await
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
        conn.batch_execute("PRAGMA busy_timeout = 5000")
            .await
            .expect("setting busy_timeout");
        conn
    }

    /// Makes the database unusable until [`Outage::end`]: PostgreSQL refuses
    /// new connections and drops the open ones; SQLite is locked by another
    /// connection's exclusive transaction, so writes fail after busy_timeout.
    pub async fn outage(&self) -> Outage {
        match self.backend() {
            Backend::Postgres => {
                let name = self.pg_name.clone().expect("a PostgreSQL test database");
                let mut admin = pg_connect(&pg_admin_url()).await.expect("admin connection");
                admin
                    .batch_execute(&format!(
                        "ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS false; \
                         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
                    ))
                    .await
                    .expect("cutting the test database off");
                Outage::Postgres {
                    admin: Box::new(admin),
                    name,
                }
            }
            Backend::Sqlite => {
                let mut conn = self.sqlite_conn().await;
                conn.batch_execute("BEGIN EXCLUSIVE")
                    .await
                    .expect("locking the test database");
                Outage::Sqlite(conn)
            }
        }
    }

    /// Runs SQL statements on a connection outside the pool.
    pub async fn batch_execute(&self, sql: &str) -> diesel::QueryResult<()> {
        match self.backend() {
            Backend::Postgres => self.pg_conn().await.batch_execute(sql).await,
            Backend::Sqlite => self.sqlite_conn().await.batch_execute(sql).await,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs inside the test's runtime, where blocking on another
        // future is not allowed: drop the database from a thread of its own.
        // FORCE ends the pool's connections, which are still open here.
        let admin = pg_admin_url();
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut conn = pg_connect(&admin).await?;
                conn.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .map_err(|e| format!("dropping test database {name}: {e}"))
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: {e}"),
            Err(_) => eprintln!("warning: dropping a test database panicked"),
        }
    }
}

/// One PostgreSQL connection outside any pool, opened as ops-worker opens
/// them (TLS as the URL's `sslmode` says); errors with their causes.
pub async fn pg_connect(url: &str) -> Result<AsyncPgConnection, String> {
    match DatabaseUrl::parse(Some(url)).map_err(|e| ops_worker::error_chain(&e))? {
        DatabaseUrl::Postgres(url) => url
            .establish()
            .await
            .map_err(|e| ops_worker::error_chain(&e)),
        DatabaseUrl::Sqlite(_) => Err(format!("not a PostgreSQL URL: {url}")),
    }
}

async fn connect(url: &DatabaseUrl) -> Db {
    Db::connect(url, POOL_SIZE)
        .await
        .unwrap_or_else(|e| panic!("connecting to {}: {e:?}", url.redacted()))
}

/// Unique enough for database names across parallel tests and processes.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    if let Ok(since) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(since.as_nanos());
    }
    format!("{:016x}", hasher.finish())
}

/// Turns each named `async fn case(db: &TestDb)` of the calling module into
/// two tests, `case::postgres` and `case::sqlite`, each on a fresh migrated
/// database and a multi-thread runtime (the migration harness and SQLite's
/// blocking tasks need it). `cargo test sqlite` runs one backend.
#[macro_export]
macro_rules! backend_tests {
    ($($case:ident),+ $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                let db = $crate::helpers::TestDb::new(::ops_worker::db::Backend::Postgres).await;
                super::$case(&db).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                let db = $crate::helpers::TestDb::new(::ops_worker::db::Backend::Sqlite).await;
                super::$case(&db).await;
            }
        }
    )+};
}

/// A database outage in progress; see [`TestDb::outage`].
pub enum Outage {
    Postgres {
        admin: Box<AsyncPgConnection>,
        name: String,
    },
    Sqlite(SyncConnectionWrapper<SqliteConnection>),
}

impl Outage {
    pub async fn end(self) {
        match self {
            Outage::Postgres { mut admin, name } => admin
                .batch_execute(&format!(
                    "ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS true"
                ))
                .await
                .expect("reopening the test database"),
            Outage::Sqlite(mut conn) => conn
                .batch_execute("ROLLBACK")
                .await
                .expect("unlocking the test database"),
        }
    }
}
