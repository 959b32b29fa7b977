//! `service_health` and `health_checks`: what the `health` kind records and
//! what `alerts` and reports read. Implements the jobs crate's
//! [`HealthStore`] for both backends.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::case_when;
use diesel::upsert::excluded;
use diesel::{
    ExpressionMethods, Insertable, OptionalExtension, QueryDsl, Queryable, Selectable,
    SelectableHelper,
};
use diesel_async::AsyncConnection;
use ops_worker_jobs::store::{HealthCheck, HealthStatus, HealthStore, ServiceHealth, StoreError};

use super::schema::{health_checks, service_health};
use super::{micros, store_error, with_conn, Db, DbError};

#[derive(Insertable)]
#[diesel(table_name = health_checks)]
struct CheckRow<'a> {
    service: &'a str,
    job_name: &'a str,
    status: &'a str,
    http_status: Option<i32>,
    latency_ms: Option<i64>,
    error: Option<&'a str>,
    checked_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = service_health)]
struct LatestRow<'a> {
    service: &'a str,
    job_name: &'a str,
    status: &'a str,
    http_status: Option<i32>,
    latency_ms: Option<i64>,
    error: Option<&'a str>,
    checked_at: NaiveDateTime,
    consecutive_failures: i32,
    consecutive_successes: i32,
    since: NaiveDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = service_health)]
struct ServiceRow {
    service: String,
    job_name: String,
    status: String,
    http_status: Option<i32>,
    latency_ms: Option<i64>,
    error: Option<String>,
    checked_at: NaiveDateTime,
    consecutive_failures: i32,
    consecutive_successes: i32,
    since: NaiveDateTime,
}

impl TryFrom<ServiceRow> for ServiceHealth {
    type Error = StoreError;
    fn try_from(r: ServiceRow) -> Result<Self, StoreError> {
        Ok(ServiceHealth {
            status: r.status.parse()?,
            service: r.service,
            job_name: r.job_name,
            http_status: r.http_status,
            latency_ms: r.latency_ms,
            error: r.error,
            checked_at: r.checked_at.and_utc(),
            consecutive_failures: r.consecutive_failures,
            consecutive_successes: r.consecutive_successes,
            since: r.since.and_utc(),
        })
    }
}

impl Db {
    /// Records the checks; returns the services whose status each changed
    /// (or that had none yet).
    async fn record_checks(&self, checks: &[HealthCheck]) -> Result<Vec<String>, DbError> {
        use diesel_async::RunQueryDsl;
        let checks: Vec<_> = checks.to_vec();
        Ok(with_conn!(self, |conn| {
            conn.transaction::<_, diesel::result::Error, _>(async |conn| {
                let mut changed = Vec::new();
                for c in &checks {
                    let at = micros(c.checked_at);
                    let down = c.status == HealthStatus::Down;
                    diesel::insert_into(health_checks::table)
                        .values(CheckRow {
                            service: &c.service,
                            job_name: &c.job_name,
                            status: c.status.as_str(),
                            http_status: c.http_status,
                            latency_ms: c.latency_ms,
                            error: c.error.as_deref(),
                            checked_at: at,
                        })
                        .execute(conn)
                        .await?;
                    // The counters and `since` come from the stored row
                    // (SET expressions see the old values), not from a
                    // read earlier in this process.
                    use service_health::dsl as sh;
                    let is_down = excluded(sh::status).eq(HealthStatus::Down.as_str());
                    let is_healthy = excluded(sh::status).ne(HealthStatus::Down.as_str());
                    let since = diesel::insert_into(service_health::table)
                        .values(LatestRow {
                            service: &c.service,
                            job_name: &c.job_name,
                            status: c.status.as_str(),
                            http_status: c.http_status,
                            latency_ms: c.latency_ms,
                            error: c.error.as_deref(),
                            checked_at: at,
                            consecutive_failures: i32::from(down),
                            consecutive_successes: i32::from(!down),
                            since: at,
                        })
                        .on_conflict(sh::service)
                        .do_update()
                        .set((
                            sh::job_name.eq(excluded(sh::job_name)),
                            sh::http_status.eq(excluded(sh::http_status)),
                            sh::latency_ms.eq(excluded(sh::latency_ms)),
                            sh::error.eq(excluded(sh::error)),
                            sh::checked_at.eq(excluded(sh::checked_at)),
                            sh::consecutive_failures.eq(case_when(
                                is_down,
                                sh::consecutive_failures + 1,
                            )
                            .otherwise(0)),
                            sh::consecutive_successes.eq(case_when(
                                is_healthy,
                                sh::consecutive_successes + 1,
                            )
                            .otherwise(0)),
                            sh::since.eq(case_when(sh::status.eq(excluded(sh::status)), sh::since)
                                .otherwise(excluded(sh::since))),
                            sh::status.eq(excluded(sh::status)),
                        ))
                        // `since` is this check's time exactly when the
                        // status changed with it, or the row is new.
                        .returning(sh::since)
                        .get_result::<NaiveDateTime>(conn)
                        .await?;
                    if since == at {
                        changed.push(c.service.clone());
                    }
                }
                Ok(changed)
            })
            .await?
        }))
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = health_checks)]
struct StoredCheck {
    service: String,
    job_name: String,
    status: String,
    http_status: Option<i32>,
    latency_ms: Option<i64>,
    error: Option<String>,
    checked_at: NaiveDateTime,
}

impl TryFrom<StoredCheck> for HealthCheck {
    type Error = StoreError;
    fn try_from(r: StoredCheck) -> Result<Self, StoreError> {
        Ok(HealthCheck {
            status: r.status.parse()?,
            service: r.service,
            job_name: r.job_name,
            http_status: r.http_status,
            latency_ms: r.latency_ms,
            error: r.error,
            checked_at: r.checked_at.and_utc(),
        })
    }
}

impl Db {
    /// Checks in `[start, end)` and, per service, the newest before `start`;
    /// sorted by service, then time. One probe of `health_checks_service_time`
    /// per service for the carry-in.
    pub(super) async fn checks_in(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<HealthCheck>, StoreError> {
        use diesel_async::RunQueryDsl;
        let (start, end) = (micros(start), micros(end));
        let rows: Result<Vec<StoredCheck>, DbError> = async {
            Ok(with_conn!(self, |conn| {
                let services: Vec<String> = health_checks::table
                    .select(health_checks::service)
                    .distinct()
                    .load(conn)
                    .await?;
                let mut rows = Vec::new();
                for service in services {
                    let before: Option<StoredCheck> = health_checks::table
                        .select(StoredCheck::as_select())
                        .filter(health_checks::service.eq(&service))
                        .filter(health_checks::checked_at.lt(start))
                        .order((health_checks::checked_at.desc(), health_checks::id.desc()))
                        .first(conn)
                        .await
                        .optional()?;
                    rows.extend(before);
                    let inside: Vec<StoredCheck> = health_checks::table
                        .select(StoredCheck::as_select())
                        .filter(health_checks::service.eq(&service))
                        .filter(health_checks::checked_at.ge(start))
                        .filter(health_checks::checked_at.lt(end))
                        .order((health_checks::checked_at, health_checks::id))
                        .load(conn)
                        .await?;
                    rows.extend(inside);
                }
                rows
            }))
        }
        .await;
        let mut checks: Vec<HealthCheck> = rows
            .map_err(store_error)?
            .into_iter()
            .map(HealthCheck::try_from)
            .collect::<Result<_, _>>()?;
        checks.sort_by(|a, b| {
            a.service
                .cmp(&b.service)
                .then(a.checked_at.cmp(&b.checked_at))
        });
        Ok(checks)
    }
}

impl Db {
    /// The newest `limit` checks of `service`, newest first.
    pub async fn recent_checks(
        &self,
        service: &str,
        limit: i64,
    ) -> Result<Vec<HealthCheck>, StoreError> {
        use diesel_async::RunQueryDsl;
        let rows: Result<Vec<StoredCheck>, DbError> = async {
            Ok(with_conn!(self, |conn| {
                health_checks::table
                    .select(StoredCheck::as_select())
                    .filter(health_checks::service.eq(service))
                    .order((health_checks::checked_at.desc(), health_checks::id.desc()))
                    .limit(limit.max(0))
                    .load(conn)
                    .await?
            }))
        }
        .await;
        rows.map_err(store_error)?
            .into_iter()
            .map(HealthCheck::try_from)
            .collect()
    }
}

impl Db {
    /// `service`'s checks in `[start, end)`, oldest first, preceded by the
    /// newest one before `start` (the status in force at `start`), if any:
    /// what the console's services page draws and measures uptime from. Two
    /// probes of `health_checks_service_time`.
    pub async fn service_checks(
        &self,
        service: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<HealthCheck>, StoreError> {
        use diesel_async::RunQueryDsl;
        let (start, end) = (micros(start), micros(end));
        let rows: Result<Vec<StoredCheck>, DbError> = async {
            Ok(with_conn!(self, |conn| {
                let before: Option<StoredCheck> = health_checks::table
                    .select(StoredCheck::as_select())
                    .filter(health_checks::service.eq(service))
                    .filter(health_checks::checked_at.lt(start))
                    .order((health_checks::checked_at.desc(), health_checks::id.desc()))
                    .first(conn)
                    .await
                    .optional()?;
                let inside: Vec<StoredCheck> = health_checks::table
                    .select(StoredCheck::as_select())
                    .filter(health_checks::service.eq(service))
                    .filter(health_checks::checked_at.ge(start))
                    .filter(health_checks::checked_at.lt(end))
                    .order((health_checks::checked_at, health_checks::id))
                    .load(conn)
                    .await?;
                before.into_iter().chain(inside).collect::<Vec<_>>()
            }))
        }
        .await;
        rows.map_err(store_error)?
            .into_iter()
            .map(HealthCheck::try_from)
            .collect()
    }
}

#[async_trait]
impl HealthStore for Db {
    async fn record_health(&self, checks: &[HealthCheck]) -> Result<Vec<String>, StoreError> {
        self.record_checks(checks).await.map_err(store_error)
    }

    async fn prune_health_checks(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        use diesel_async::RunQueryDsl;
        let before = micros(before);
        let deleted: Result<usize, DbError> = async {
            Ok(with_conn!(self, |conn| {
                diesel::delete(health_checks::table.filter(health_checks::checked_at.lt(before)))
                    .execute(conn)
                    .await?
            }))
        }
        .await;
        deleted.map(|n| n as u64).map_err(store_error)
    }

    async fn service_health(&self) -> Result<Vec<ServiceHealth>, StoreError> {
        use diesel_async::RunQueryDsl;
        let rows: Result<Vec<ServiceRow>, DbError> = async {
            Ok(with_conn!(self, |conn| {
                service_health::table
                    .select(ServiceRow::as_select())
                    .order(service_health::service)
                    .load(conn)
                    .await?
            }))
        }
        .await;
        rows.map_err(store_error)?
            .into_iter()
            .map(ServiceHealth::try_from)
            .collect()
    }
}
