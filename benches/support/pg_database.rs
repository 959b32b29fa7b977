//! A PostgreSQL database of a benchmark's own, created next to the admin
//! URL's (`OPS_WORKER_TEST_PG`) and dropped when done; shared by the
//! benchmarks (each includes this file with `#[path]`).

#[path = "../../tests/support/pg_url.rs"]
mod pg_url;
use pg_url::with_database;

use anyhow::{bail, Context as _};
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use ops_worker::db::DatabaseUrl;

/// The admin URL when `OPS_WORKER_TEST_PG` is not set, as in the tests.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// One connection outside any pool, as ops-worker opens them (TLS as the
/// URL's `sslmode` says).
pub async fn pg_connect(url: &str) -> anyhow::Result<AsyncPgConnection> {
    match DatabaseUrl::parse(Some(url))? {
        DatabaseUrl::Postgres(url) => Ok(url.establish().await?),
        DatabaseUrl::Sqlite(_) => bail!("not a PostgreSQL URL: {url}"),
    }
}

/// A fresh PostgreSQL database, dropped (with FORCE) when this is dropped.
pub struct PgDatabase {
    admin: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(admin: &str) -> anyhow::Result<PgDatabase> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let name = format!("ops_worker_bench_{}_{stamp}", std::process::id());
        let mut conn = pg_connect(admin)
            .await
            .with_context(|| format!("connecting to {admin} (OPS_WORKER_TEST_PG)"))?;
        conn.batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .with_context(|| format!("creating database {name}"))?;
        Ok(PgDatabase {
            admin: admin.to_string(),
            url: with_database(admin, &name),
            name,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Own thread and runtime: this may run while a runtime is unwinding.
        let dropped = std::thread::spawn(move || -> anyhow::Result<()> {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(async {
                    let mut conn = pg_connect(&admin).await?;
                    conn.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .await?;
                    anyhow::Ok(())
                })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: dropping database {}: {e:#}", self.name),
            Err(_) => eprintln!("warning: dropping database {} panicked", self.name),
        }
    }
}
