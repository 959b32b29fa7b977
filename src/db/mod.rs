//! Storage: the one place that knows SQL, Diesel and the two backends.
//!
//! This file owns what every table family shares: reading `DATABASE_URL`
//! ([`DatabaseUrl`]; PostgreSQL's URL and TLS settings in `tls.rs`), the
//! connection pool over PostgreSQL or SQLite ([`Db`]),
//! the `with_conn!` dispatch that lets each query be written once for both
//! backends, the embedded migrations and the error type ([`DbError`]).
//! Queries live in one file per table family (`runs/` and `run_store.rs`
//! for `job_runs`, `health.rs`, `alerts.rs`, `notifications.rs` for the
//! outbox, `run_requests.rs`); `listen.rs` keeps PostgreSQL's one
//! connection outside the pool, for `LISTEN`. Nothing outside `src/db` sees
//! Diesel, a connection or SQL.

/// Timestamps other than slots are stored to the microsecond, what
/// PostgreSQL keeps, so a value reads back the same on both backends.
pub(crate) fn micros(t: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDateTime {
    use chrono::SubsecRound;
    t.naive_utc().trunc_subsecs(6)
}

/// A storage error as the jobs crate sees it: one line with its causes.
pub(crate) fn store_error(e: DbError) -> ops_worker_jobs::StoreError {
    ops_worker_jobs::StoreError(crate::error_chain(&e))
}

mod alerts;
mod audit;
mod health;
mod listen;
mod metrics;
mod notifications;
mod pauses;
mod reports;
mod run_requests;
mod run_store;
mod runs;
pub mod schema;
mod sessions;
mod silences;
mod text_enum;
mod tls;
mod workers;

pub use alerts::AlertDelivery;
pub use audit::{AuditEntry, NewAuditEntry};
pub use listen::Listener;
pub use notifications::{
    Claimed, NewNotification, Notification, NotificationStatus, Notifications,
};
pub use ops_worker_jobs::store::NotificationEvent;
pub use pauses::Pause;
pub use reports::ReportSummary;
pub use run_requests::{Holder, Released, RequestStatus, RunRequest, RUN_REQUESTS_CHANNEL};
pub use runs::{
    AbandonedRun, ExclusiveClaim, Finish, JobSummary, NewRun, OpenPush, RunRecord, RunStatus,
    RunsQuery, Trigger,
};
pub use text_enum::UnknownValue;
pub use tls::{PgUrl, SslMode, TlsSettings};
pub use workers::Worker;

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::migration::MigrationSource;
use diesel::SqliteConnection;
use diesel_async::pooled_connection::bb8::RunError;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError, PoolableConnection,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncPgConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// SQLite file used when `DATABASE_URL` is unset or empty.
pub const DEFAULT_SQLITE_FILE: &str = "ops-worker.db";

/// How long start-up waits for the first connection, and a query for a pooled
/// one: short, so an unreachable database fails fast instead of hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Run on every new SQLite connection. `busy_timeout` comes first so the
/// `journal_mode` switch (which needs a lock) waits for other connections.
/// Without it concurrent writers fail with "database is locked"; WAL with
/// `synchronous = NORMAL` is what makes one fsync-ed run cheap (see
/// shared/DATABASE.md).
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; \
                              PRAGMA journal_mode = WAL; \
                              PRAGMA synchronous = NORMAL; \
                              PRAGMA foreign_keys = ON;";

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Key of the PostgreSQL advisory lock that serialises `migrate` across
/// processes (an arbitrary constant: "ops-work" in ASCII).
const PG_MIGRATION_LOCK: i64 = 0x6f70_732d_776f_726b;

type BoxError = Box<dyn StdError + Send + Sync + 'static>;
type PgPool = diesel_async::pooled_connection::bb8::Pool<AsyncPgConnection>;
type SqlitePool =
    diesel_async::pooled_connection::bb8::Pool<SyncConnectionWrapper<SqliteConnection>>;

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        })
    }
}

/// A parsed `DATABASE_URL`.
///
/// `Debug` is written by hand so a stray `{:?}` cannot print a password.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A `postgres://` or `postgresql://` URL with its TLS settings.
    Postgres(PgUrl),
    /// The path of an SQLite database file.
    Sqlite(PathBuf),
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Postgres(url) => f.debug_tuple("Postgres").field(url).finish(),
            DatabaseUrl::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
        }
    }
}

impl DatabaseUrl {
    /// What the CLI and the daemon connect to: `DATABASE_URL`, with libpq's
    /// `PGSSLMODE` and `PGSSLROOTCERT` for a PostgreSQL URL that has no
    /// `sslmode` or `sslrootcert` of its own.
    pub fn from_env() -> Result<Self, DbError> {
        let url = std::env::var("DATABASE_URL").ok();
        Self::parse_with_env(url.as_deref(), &|var| std::env::var(var).ok())
    }

    /// A URL alone, no environment variable consulted: see
    /// [`DatabaseUrl::parse_with_env`].
    pub fn parse(value: Option<&str>) -> Result<Self, DbError> {
        Self::parse_with_env(value, &|_| None)
    }

    /// `None`/empty -> SQLite file `ops-worker.db` in the working directory;
    /// `postgres://` or `postgresql://` -> Postgres, its TLS settings from
    /// the URL or else from `env` (`PGSSLMODE`, `PGSSLROOTCERT`); `sqlite://PATH` (also
    /// `sqlite:PATH`) -> SQLite; anything else -> [`DbError::BadUrl`] naming
    /// DATABASE_URL (with the URL redacted), or [`DbError::BadEnv`] naming
    /// the variable.
    pub fn parse_with_env(
        value: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, DbError> {
        let value = value.map(str::trim).unwrap_or("");
        if value.is_empty() {
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(DEFAULT_SQLITE_FILE)));
        }
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            return PgUrl::parse(value, env).map(DatabaseUrl::Postgres);
        }
        let bad = |reason: &str| DbError::BadUrl {
            message: format!("{reason}: \"{}\"", redact(value)),
        };
        let Some(path) = value
            .strip_prefix("sqlite://")
            .or_else(|| value.strip_prefix("sqlite:"))
        else {
            return Err(bad(
                "expected postgres://, postgresql://, sqlite://PATH or sqlite:PATH",
            ));
        };
        if path.is_empty() {
            return Err(bad("sqlite URL has no file path"));
        }
        // Each pooled connection would get its own empty in-memory database.
        if path == ":memory:" || path.starts_with("file::memory:") {
            return Err(bad("in-memory SQLite is not supported, use a file path"));
        }
        // Diesel would pass `?mode=..` to SQLite as part of the file name.
        if path.contains('?') {
            return Err(bad("sqlite URL cannot have query parameters"));
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }

    /// For logs and errors: the password (and any `password=` query param)
    /// replaced with `***`. SQLite URLs come back as `sqlite://PATH`.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Postgres(url) => url.redacted(),
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        }
    }

    /// The URL as given, password included: for a child process's
    /// `DATABASE_URL`, never for display (see [`DatabaseUrl::redacted`]).
    pub fn to_url_string(&self) -> String {
        match self {
            DatabaseUrl::Postgres(url) => url.as_str().to_owned(),
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        }
    }

    /// How many connections ops-worker pools. PostgreSQL serves the
    /// claims of one instant in parallel, 16 at a time. SQLite writes one at
    /// a time: more connections only wait for its lock in its busy handler,
    /// which sleeps, and each holds its own page cache, lookaside memory and
    /// prepared statements (about 165 KiB). Two leave room for a slow read
    /// beside the writes; in the 1,000-jobs SQLite benchmark they cost 28 %
    /// less CPU per run than 16 and start runs sooner (README, "Performance").
    pub fn pool_size(&self) -> u32 {
        match self {
            DatabaseUrl::Postgres(_) => 16,
            DatabaseUrl::Sqlite(_) => 2,
        }
    }

    /// The backend this URL selects.
    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Postgres(_) => Backend::Postgres,
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// Hides the password of `scheme://user:password@host` and the value of any
/// `password=` parameter (URL query or libpq `key=value` form). It errs on
/// the side of hiding too much: the userinfo ends at the *last* `@`, so an
/// unescaped `@` or `/` in a password cannot leak the rest of it.
fn redact(url: &str) -> String {
    let mut out = match url.split_once("://") {
        Some((scheme, rest)) => match rest.rfind('@') {
            Some(at) => {
                let (userinfo, host) = (&rest[..at], &rest[at..]);
                match userinfo.split_once(':') {
                    Some((user, _password)) => format!("{scheme}://{user}:***{host}"),
                    None => url.to_owned(),
                }
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    };
    // `password=VALUE` anywhere: VALUE runs to the next `&`, `#` or space
    // (or to the closing quote when quoted, as libpq allows).
    let mut from = 0;
    while let Some(found) = find_ascii_ci(&out[from..], "password=") {
        let key_start = from + found;
        let preceded_ok =
            key_start == 0 || matches!(out.as_bytes()[key_start - 1], b'?' | b'&' | b' ' | b'\t');
        let start = key_start + "password=".len();
        if !preceded_ok {
            from = start;
            continue;
        }
        let rest = &out[start..];
        let end = match rest.chars().next() {
            Some(q @ ('\'' | '"')) => rest[1..].find(q).map_or(rest.len(), |i| i + 2),
            _ => rest
                .find(|c: char| c == '&' || c == '#' || c.is_whitespace())
                .unwrap_or(rest.len()),
        };
        out.replace_range(start..start + end, "***");
        from = start + 3;
    }
    out
}

fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// What opening a database may do when it is not there. Only SQLite can be
/// missing: a PostgreSQL database exists or connecting to it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// Create the SQLite file, and its directory, when missing.
    Create,
    /// Open only a database that exists; a missing SQLite file is
    /// [`DbError::Missing`] and nothing is created.
    Existing,
}

/// Storage errors. `Display` is one lowercase line; the cause, where there is
/// one, is kept as the `source` so `main` can print the chain.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// `DATABASE_URL` cannot be used; the message shows it redacted.
    #[error("DATABASE_URL: {message}")]
    BadUrl { message: String },
    /// An environment variable read with it (`PGSSLMODE`, `PGSSLROOTCERT`)
    /// cannot be used.
    #[error("{var}: {message}")]
    BadEnv { var: &'static str, message: String },
    /// The database cannot be reached: connecting failed, or no pooled
    /// connection became available in time.
    #[error("database {url} is unavailable")]
    Unavailable {
        /// The redacted URL.
        url: String,
        #[source]
        source: BoxError,
    },
    /// The SQLite file is not there and the caller asked only for an
    /// existing database ([`Open::Existing`]): a wrong path must not look
    /// like an empty one.
    #[error("no database at {} (ops-worker run or ops-worker migrate creates it)", .path.display())]
    Missing {
        /// Absolute where the working directory is known.
        path: PathBuf,
    },
    /// A statement failed.
    #[error("database query failed")]
    Query(#[from] diesel::result::Error),
    /// Running the embedded migrations failed.
    #[error("database migration failed")]
    Migration(#[source] BoxError),
}

impl DbError {
    /// True for connection-level failures (pool timeout, closed connection,
    /// unable to connect), where a caller should retry later. SQLite's
    /// "database is locked" (another writer held the lock past
    /// `busy_timeout`) counts too: it is transient in the same way.
    pub fn is_unavailable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            DbError::Unavailable { .. } => true,
            DbError::Query(Error::DatabaseError(kind, info)) => match kind {
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
                    true
                }
                DatabaseErrorKind::Unknown => info.message().starts_with("database is locked"),
                _ => false,
            },
            DbError::Query(Error::BrokenTransactionManager) => true,
            _ => false,
        }
    }
}

/// The pool did not hand out a connection within [`CONNECT_TIMEOUT`]: every
/// connection was busy, or new ones could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("no database connection became available within {}s", .0.as_secs())]
struct PoolTimeout(Duration);

/// Opening the first connection took longer than [`CONNECT_TIMEOUT`].
#[derive(Debug, thiserror::Error)]
#[error("connecting timed out after {}s", .0.as_secs())]
struct ConnectTimeout(Duration);

#[derive(Clone)]
enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// A pool of connections to PostgreSQL or SQLite. Cheap to clone: clones
/// share the pool.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// Redacted, for errors.
    url: Arc<str>,
    /// SQLite: the file, for connections outside the pool (read-only queries).
    sqlite_file: Option<Arc<str>>,
    /// PostgreSQL: how to open a connection outside the pool (`LISTEN`).
    pg: Option<tls::PgConnector>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend())
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Runs `$body` with `$conn` bound to a `&mut` pooled connection of whichever
/// backend `$db` uses. The body is expanded once per backend, so each query
/// is written once and type-checked against both. A pool failure returns
/// [`DbError::Unavailable`] from the enclosing function.
macro_rules! with_conn {
    ($db:expr, |$conn:ident| $body:expr) => {{
        let db: &$crate::db::Db = $db;
        match db.pool() {
            $crate::db::Pool::Postgres(pool) => {
                let mut pooled = db.checkout(pool).await?;
                let $conn = &mut *pooled;
                $body
            }
            $crate::db::Pool::Sqlite(pool) => {
                let mut pooled = db.checkout(pool).await?;
                let $conn = &mut *pooled;
                $body
            }
        }
    }};
}
pub(crate) use with_conn;

impl Db {
    /// Builds the pool (bb8, `pool_size` max connections, at least 1; no
    /// per-checkout test query, which cost 10-40 %) and opens one connection
    /// so an unreachable database fails here with [`DbError::Unavailable`].
    ///
    /// SQLite: creates the file (and its parent directory) if missing, and
    /// sets `busy_timeout`, WAL, `synchronous = NORMAL` and foreign keys on
    /// every connection.
    pub async fn connect(url: &DatabaseUrl, pool_size: u32) -> Result<Db, DbError> {
        Db::connect_with(url, pool_size, Open::Create).await
    }

    /// [`Db::connect`], but with `open` deciding whether a missing SQLite
    /// file is created or is [`DbError::Missing`].
    pub async fn connect_with(
        url: &DatabaseUrl,
        pool_size: u32,
        open: Open,
    ) -> Result<Db, DbError> {
        let redacted: Arc<str> = match url {
            // Relative to the working directory, which a log reader does not see.
            DatabaseUrl::Sqlite(path) => std::path::absolute(path)
                .map_or_else(|_| url.redacted(), |p| format!("sqlite://{}", p.display()))
                .into(),
            DatabaseUrl::Postgres(_) => url.redacted().into(),
        };
        let unavailable = |source: BoxError| DbError::Unavailable {
            url: redacted.to_string(),
            source,
        };
        let mut sqlite_file = None;
        let mut pg = None;
        let pool = match url {
            DatabaseUrl::Postgres(url) => {
                let connector = url.connector()?;
                pg = Some(connector.clone());
                let mut config = ManagerConfig::default();
                config.custom_setup = Box::new(move |_url| {
                    let connector = connector.clone();
                    Box::pin(async move { connector.establish().await })
                });
                // The manager's URL goes unused (the connector has its own).
                let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
                    redacted.to_string(),
                    config,
                );
                let pool = pool_builder(pool_size).build_unchecked(manager);
                let first = first_connection(&pool).await.map_err(unavailable)?;
                // A fresh pool has room for it; if not, the connection just closes.
                drop(pool.add(first));
                Pool::Postgres(pool)
            }
            DatabaseUrl::Sqlite(path) => {
                let path_str = sqlite_path(path).map_err(|message| DbError::BadUrl {
                    message: format!("{message}: \"{redacted}\""),
                })?;
                match open {
                    Open::Create => {
                        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                            std::fs::create_dir_all(parent)
                                .map_err(|e| unavailable(Box::new(e)))?;
                        }
                    }
                    // SQLite would create it on the first connection.
                    Open::Existing => {
                        if !path.try_exists().map_err(|e| unavailable(Box::new(e)))? {
                            return Err(DbError::Missing {
                                path: std::path::absolute(path).unwrap_or_else(|_| path.clone()),
                            });
                        }
                    }
                }
                let mut config = ManagerConfig::default();
                config.custom_setup = Box::new(|url| Box::pin(establish_sqlite(url.to_owned())));
                let manager = AsyncDieselConnectionManager::<
                    SyncConnectionWrapper<SqliteConnection>,
                >::new_with_config(path_str.clone(), config);
                sqlite_file = Some(Arc::from(path_str.as_str()));
                let pool = pool_builder(pool_size).build_unchecked(manager);
                let first = first_connection(&pool).await.map_err(unavailable)?;
                drop(pool.add(first));
                Pool::Sqlite(pool)
            }
        };
        Ok(Db {
            pool,
            url: redacted,
            sqlite_file,
            pg,
        })
    }

    /// Runs the pending embedded migrations of this backend's tree and
    /// returns the names applied (empty when the schema is current).
    ///
    /// Safe to call from several processes at once: PostgreSQL serialises
    /// them with an advisory lock, SQLite by running them inside one
    /// `BEGIN IMMEDIATE` transaction (so an SQLite migration cannot change
    /// pragmas such as `foreign_keys`, which are no-ops in a transaction).
    pub async fn migrate(&self) -> Result<Vec<String>, DbError> {
        use diesel_async::RunQueryDsl;
        match &self.pool {
            Pool::Postgres(pool) => {
                let mut conn = pool.get_owned().await.map_err(|e| self.unavailable(e))?;
                diesel::sql_query("SELECT pg_advisory_lock($1)")
                    .bind::<diesel::sql_types::BigInt, _>(PG_MIGRATION_LOCK)
                    .execute(&mut conn)
                    .await?;
                let (mut conn, applied) = run_pending(conn, PG_MIGRATIONS);
                let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
                    .bind::<diesel::sql_types::BigInt, _>(PG_MIGRATION_LOCK)
                    .execute(&mut conn)
                    .await;
                let applied = applied.map_err(DbError::Migration)?;
                unlocked?;
                Ok(applied)
            }
            Pool::Sqlite(pool) => {
                let mut conn = pool.get_owned().await.map_err(|e| self.unavailable(e))?;
                // Begun through the connection's own transaction manager, so
                // the harness nests each migration in a savepoint.
                conn.spawn_blocking(|c| {
                    AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
                })
                .await?;
                let (mut conn, applied) = run_pending(conn, SQLITE_MIGRATIONS);
                match applied {
                    Ok(applied) => {
                        conn.spawn_blocking(|c| {
                            <AnsiTransactionManager as TransactionManager<SqliteConnection>>::commit_transaction(c)
                        })
                        .await?;
                        Ok(applied)
                    }
                    Err(e) => {
                        // The migration error matters more than a failed
                        // rollback, and a connection left in a transaction
                        // is discarded by the pool as broken.
                        drop(
                            conn.spawn_blocking(|c| {
                                <AnsiTransactionManager as TransactionManager<SqliteConnection>>::rollback_transaction(c)
                            })
                            .await,
                        );
                        Err(DbError::Migration(e))
                    }
                }
            }
        }
    }

    /// The database, for logs and errors: its URL with the password hidden,
    /// an SQLite file as an absolute path.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Postgres(_) => Backend::Postgres,
            Pool::Sqlite(_) => Backend::Sqlite,
        }
    }

    fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A pooled connection that is not known to be dead. bb8 runs no test
    /// query on checkout, so a PostgreSQL connection the server closed while
    /// it sat idle (a restart, `pg_terminate_backend`) would fail the next
    /// query; its closed state is visible without a round trip, and dropping
    /// it makes bb8 discard it (`has_broken`).
    async fn checkout<'p, C>(
        &self,
        pool: &'p bb8::Pool<AsyncDieselConnectionManager<C>>,
    ) -> Result<bb8::PooledConnection<'p, AsyncDieselConnectionManager<C>>, DbError>
    where
        C: PoolableConnection + 'static,
        AsyncDieselConnectionManager<C>: bb8::ManageConnection<Connection = C, Error = PoolError>,
    {
        let mut tries = pool.state().connections + 1;
        loop {
            let mut conn = pool.get().await.map_err(|e| self.unavailable(e))?;
            tries -= 1;
            if tries == 0 || !PoolableConnection::is_broken(&mut *conn) {
                return Ok(conn);
            }
        }
    }

    /// Wraps a pool failure; bb8's bare "timed out" gets a message of ours.
    fn unavailable(&self, e: RunError) -> DbError {
        let source: BoxError = match e {
            RunError::User(e) => Box::new(e),
            RunError::TimedOut => Box::new(PoolTimeout(CONNECT_TIMEOUT)),
        };
        DbError::Unavailable {
            url: self.url.to_string(),
            source,
        }
    }
}

/// bb8 settings for both backends. No `test_on_check_out`: its `SELECT 1`
/// per checkout cost 10-40 % of a run; a dead PostgreSQL connection is
/// noticed when a query on it fails and is then discarded (`has_broken`).
fn pool_builder<M: bb8::ManageConnection>(pool_size: u32) -> bb8::Builder<M> {
    bb8::Pool::builder()
        .max_size(pool_size.max(1))
        .test_on_check_out(false)
        .connection_timeout(CONNECT_TIMEOUT)
}

/// Opens one connection outside the pool's retry loop, so start-up sees the
/// driver's own error ("connection refused", "password authentication
/// failed") instead of bb8's timeout.
async fn first_connection<C>(
    pool: &diesel_async::pooled_connection::bb8::Pool<C>,
) -> Result<C, BoxError>
where
    C: PoolableConnection + 'static,
    AsyncDieselConnectionManager<C>: bb8::ManageConnection<Connection = C, Error = PoolError>,
{
    match tokio::time::timeout(CONNECT_TIMEOUT, pool.dedicated_connection()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(Box::new(e)),
        Err(_elapsed) => Err(Box::new(ConnectTimeout(CONNECT_TIMEOUT))),
    }
}

/// The file name SQLite is given. A relative path that happens to start with
/// `file:` would be read as an SQLite URI, so it gets a `./` prefix.
fn sqlite_path(path: &Path) -> Result<String, &'static str> {
    let s = path.to_str().ok_or("sqlite path is not valid UTF-8")?;
    Ok(if s.starts_with("file:") {
        format!("./{s}")
    } else {
        s.to_owned()
    })
}

async fn establish_sqlite(
    path: String,
) -> diesel::ConnectionResult<SyncConnectionWrapper<SqliteConnection>> {
    use diesel_async::SimpleAsyncConnection;
    let mut conn = SyncConnectionWrapper::<SqliteConnection>::establish(&path).await?;
    conn.batch_execute(SQLITE_PRAGMAS)
        .await
        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// Applies the pending migrations one by one, collecting their names, and
/// hands the connection back whatever happened. The harness blocks the
/// worker thread (`block_in_place`), hence the multi-thread runtime.
fn run_pending<C>(conn: C, source: EmbeddedMigrations) -> (C, Result<Vec<String>, BoxError>)
where
    C: AsyncConnection + 'static,
    AsyncMigrationHarness<C>: MigrationHarness<C::Backend>,
    EmbeddedMigrations: MigrationSource<C::Backend>,
{
    let mut harness = AsyncMigrationHarness::new(conn);
    let mut applied = Vec::new();
    let result = harness
        .pending_migrations(source)
        .and_then(|pending| {
            pending.iter().try_for_each(|m| {
                harness.run_migration(m.as_ref())?;
                applied.push(m.name().to_string());
                Ok(())
            })
        })
        .map(|()| applied);
    (harness.into_inner(), result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<DatabaseUrl, DbError> {
        DatabaseUrl::parse(Some(s))
    }

    #[test]
    fn unset_or_empty_is_the_default_sqlite_file() {
        let default = DatabaseUrl::Sqlite(PathBuf::from("ops-worker.db"));
        assert_eq!(DatabaseUrl::parse(None).unwrap(), default);
        assert_eq!(parse("").unwrap(), default);
        assert_eq!(parse("   ").unwrap(), default);
    }

    #[test]
    fn postgres_schemes() {
        for url in [
            "postgres://u:p@h:5432/db",
            "postgresql://h/db?sslmode=disable",
        ] {
            let parsed = parse(url).unwrap();
            assert!(matches!(parsed, DatabaseUrl::Postgres(_)), "{url}");
            assert_eq!(parsed.backend(), Backend::Postgres);
            assert_eq!(parsed.to_url_string(), url);
        }
    }

    #[test]
    fn sqlite_forms() {
        let cases = [
            ("sqlite://ops.db", "ops.db"),
            ("sqlite:ops.db", "ops.db"),
            ("sqlite:///var/lib/ops/ops.db", "/var/lib/ops/ops.db"),
            ("sqlite:/var/lib/ops/ops.db", "/var/lib/ops/ops.db"),
            ("sqlite://data/ops.db", "data/ops.db"),
        ];
        for (url, path) in cases {
            let parsed = parse(url).unwrap();
            assert_eq!(parsed, DatabaseUrl::Sqlite(PathBuf::from(path)), "{url}");
            assert_eq!(parsed.backend(), Backend::Sqlite);
        }
    }

    #[test]
    fn rejected_urls_name_database_url_and_hide_the_password() {
        let cases = [
            ("mysql://root:hunter2@db/ops", "mysql://root:***@db/ops"),
            ("/var/lib/ops.db", "/var/lib/ops.db"),
            ("host=db password=hunter2", "host=db password=***"),
            ("sqlite://", "sqlite://"),
            ("sqlite::memory:", "sqlite::memory:"),
            ("sqlite://ops.db?mode=rwc", "sqlite://ops.db?mode=rwc"),
        ];
        for (url, shown) in cases {
            let err = parse(url).unwrap_err();
            assert!(matches!(err, DbError::BadUrl { .. }), "{url}: {err:?}");
            let msg = err.to_string();
            assert!(msg.starts_with("DATABASE_URL: "), "{msg}");
            assert!(msg.contains(shown), "{msg} should show {shown}");
            assert!(!msg.contains("hunter2"), "{msg}");
            assert!(!msg.ends_with('.') && !msg.contains('\n'), "{msg}");
        }
    }

    #[test]
    fn redaction_hides_passwords() {
        let cases = [
            (
                "postgres://ops:hunter2@db:5432/ops",
                "postgres://ops:***@db:5432/ops",
            ),
            ("postgres://ops@db/ops", "postgres://ops@db/ops"),
            ("postgres://db/ops", "postgres://db/ops"),
            ("postgres://:hunter2@db/ops", "postgres://:***@db/ops"),
            // An unescaped `@` or `/` in the password is still hidden.
            (
                "postgres://ops:hun@t/er2@db/ops",
                "postgres://ops:***@db/ops",
            ),
            (
                "postgres://ops@db/ops?sslmode=require&password=hunter2&connect_timeout=1",
                "postgres://ops@db/ops?sslmode=require&password=***&connect_timeout=1",
            ),
            (
                "postgresql://db/ops?PASSWORD=hunter2",
                "postgresql://db/ops?PASSWORD=***",
            ),
            (
                "postgres://ops:a@db/ops?password=b",
                "postgres://ops:***@db/ops?password=***",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(redact(url), want);
            // A URL the driver refuses (`PASSWORD` is not its spelling) is
            // shown redacted in the error too.
            match parse(url) {
                Ok(parsed) => {
                    assert_eq!(parsed.redacted(), want);
                    assert!(!format!("{parsed:?}").contains("hunter2"));
                }
                Err(e) => assert!(e.to_string().contains(want), "{e}"),
            }
        }
        assert_eq!(
            DatabaseUrl::Sqlite(PathBuf::from("/tmp/x.db")).redacted(),
            "sqlite:///tmp/x.db"
        );
    }

    #[test]
    fn unavailable_classification() {
        use diesel::result::{DatabaseErrorKind, Error};
        let db_err =
            |kind, msg: &str| DbError::Query(Error::DatabaseError(kind, Box::new(msg.to_owned())));
        assert!(db_err(DatabaseErrorKind::ClosedConnection, "closed").is_unavailable());
        assert!(db_err(DatabaseErrorKind::UnableToSendCommand, "eof").is_unavailable());
        assert!(db_err(DatabaseErrorKind::Unknown, "database is locked").is_unavailable());
        assert!(!db_err(DatabaseErrorKind::UniqueViolation, "dup").is_unavailable());
        assert!(!db_err(DatabaseErrorKind::Unknown, "syntax error").is_unavailable());
        assert!(!DbError::Query(Error::NotFound).is_unavailable());
        assert!(DbError::Unavailable {
            url: "postgres://h/db".into(),
            source: Box::new(PoolTimeout(CONNECT_TIMEOUT)),
        }
        .is_unavailable());
    }
}
