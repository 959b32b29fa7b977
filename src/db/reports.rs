//! `reports`: what the `report` kind writes and `ops-worker report show`
//! reads. Implements the jobs crate's [`ReportStore`]; the reads it needs
//! from other tables live with those tables (`run_store.rs`, `health.rs`,
//! `alerts.rs`, `metrics.rs`).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::upsert::excluded;
use diesel::{ExpressionMethods, Insertable, QueryDsl, Queryable, Selectable, SelectableHelper};
use diesel_async::AsyncConnection;
use ops_worker_jobs::store::{
    Alert, HealthCheck, MetricSample, ReportStore, RunFact, StoreError, StoredReport,
};

use super::notifications::Outbox;
use super::schema::reports;
use super::{micros, store_error, with_conn, Db, DbError, NewNotification, NotificationEvent};

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = reports)]
struct ReportRow {
    name: String,
    period: String,
    period_start: NaiveDateTime,
    period_end: NaiveDateTime,
    generated_at: NaiveDateTime,
    json: String,
    markdown: String,
}

impl From<ReportRow> for StoredReport {
    fn from(r: ReportRow) -> Self {
        StoredReport {
            name: r.name,
            period: r.period,
            period_start: r.period_start.and_utc(),
            period_end: r.period_end.and_utc(),
            generated_at: r.generated_at.and_utc(),
            json: r.json,
            markdown: r.markdown,
        }
    }
}

/// A stored report without its bodies.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ReportSummary {
    pub name: String,
    pub period: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
}

impl Db {
    async fn upsert_report(
        &self,
        r: &StoredReport,
        notify: &[String],
        payload: &serde_json::Value,
    ) -> Result<(), DbError> {
        use diesel_async::RunQueryDsl;
        let row = ReportRow {
            name: r.name.clone(),
            period: r.period.clone(),
            period_start: micros(r.period_start),
            period_end: micros(r.period_end),
            generated_at: micros(r.generated_at),
            json: r.json.clone(),
            markdown: r.markdown.clone(),
        };
        let notices: Vec<NewNotification> = notify
            .iter()
            .map(|target| NewNotification {
                idempotency_key: format!("report:{}:{}:{target}", r.name, r.period),
                target: target.clone(),
                alert_id: None,
                event: NotificationEvent::Report,
                payload: payload.clone(),
                created_at: r.generated_at,
            })
            .collect();
        with_conn!(self, |conn| {
            conn.transaction::<_, diesel::result::Error, _>(async |conn| {
                diesel::insert_into(reports::table)
                    .values(&row)
                    .on_conflict((reports::name, reports::period))
                    .do_update()
                    .set((
                        reports::period_start.eq(excluded(reports::period_start)),
                        reports::period_end.eq(excluded(reports::period_end)),
                        reports::generated_at.eq(excluded(reports::generated_at)),
                        reports::json.eq(excluded(reports::json)),
                        reports::markdown.eq(excluded(reports::markdown)),
                    ))
                    .execute(conn)
                    .await?;
                for n in &notices {
                    conn.enqueue_notification(n).await?;
                }
                Ok(())
            })
            .await?
        });
        Ok(())
    }

    /// The stored report of `name` (any when `None`) for `period` (the newest
    /// period when `None`).
    pub async fn report(
        &self,
        name: Option<&str>,
        period: Option<&str>,
    ) -> Result<Option<StoredReport>, DbError> {
        use diesel_async::RunQueryDsl;
        let rows: Vec<ReportRow> = with_conn!(self, |conn| {
            let mut q = reports::table
                .select(ReportRow::as_select())
                .order((reports::period_start.desc(), reports::name, reports::id))
                .limit(1)
                .into_boxed();
            if let Some(name) = name {
                q = q.filter(reports::name.eq(name.to_string()));
            }
            if let Some(period) = period {
                q = q.filter(reports::period.eq(period.to_string()));
            }
            q.load(conn).await?
        });
        Ok(rows.into_iter().next().map(StoredReport::from))
    }

    /// The stored reports without their bodies, newest period first: (name,
    /// period, period start, period end, generated at), at most `limit`.
    pub async fn report_list(
        &self,
        name: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ReportSummary>, DbError> {
        use diesel_async::RunQueryDsl;
        let rows: Vec<(String, String, NaiveDateTime, NaiveDateTime, NaiveDateTime)> =
            with_conn!(self, |conn| {
                let mut q = reports::table
                    .select((
                        reports::name,
                        reports::period,
                        reports::period_start,
                        reports::period_end,
                        reports::generated_at,
                    ))
                    .order((reports::period_start.desc(), reports::name, reports::id))
                    .limit(limit.max(0))
                    .into_boxed();
                if let Some(name) = name {
                    q = q.filter(reports::name.eq(name.to_string()));
                }
                q.load(conn).await?
            });
        Ok(rows
            .into_iter()
            .map(|(name, period, start, end, at)| ReportSummary {
                name,
                period,
                period_start: start.and_utc(),
                period_end: end.and_utc(),
                generated_at: at.and_utc(),
            })
            .collect())
    }

    /// How many reports are stored for `name`: what re-running a period
    /// must not change.
    pub async fn report_count(&self, name: &str) -> Result<i64, DbError> {
        use diesel_async::RunQueryDsl;
        Ok(with_conn!(self, |conn| {
            reports::table
                .filter(reports::name.eq(name.to_string()))
                .count()
                .get_result::<i64>(conn)
                .await?
        }))
    }
}

#[async_trait]
impl ReportStore for Db {
    async fn runs_between(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<RunFact>, StoreError> {
        self.runs_in(start, end).await.map_err(store_error)
    }

    async fn checks_between(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<HealthCheck>, StoreError> {
        self.checks_in(start, end).await
    }

    async fn alerts_between(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Alert>, StoreError> {
        self.alerts_overlapping(start, end)
            .await
            .map_err(store_error)
    }

    async fn samples_between(
        &self,
        names: &[String],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<MetricSample>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        self.samples_in(Some(names), Some((start, end)))
            .await
            .map_err(store_error)
    }

    async fn save_report(
        &self,
        report: &StoredReport,
        notify: &[String],
        payload: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.upsert_report(report, notify, payload)
            .await
            .map_err(store_error)
    }
}
