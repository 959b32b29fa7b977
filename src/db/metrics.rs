//! `metric_samples` and the `metrics` kind's read-only queries. Implements
//! the jobs crate's [`MetricStore`] for both backends.
//!
//! A configured query is arbitrary SQL, so its rows have a column count and
//! types known only when it runs: they are read as [`DynamicRow`]s of
//! [`Cell`]s. It can never change data: on PostgreSQL it runs alone (the
//! extended protocol refuses a second statement) in a `READ ONLY`
//! transaction with a `statement_timeout`; on SQLite on a connection of its
//! own opened with `mode=ro` and `query_only`, outside the pool.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::sqlite::{Sqlite, SqliteType, SqliteValue};
use diesel::{Connection, ExpressionMethods, Insertable, QueryDsl, SqliteConnection};
use diesel_async::AsyncConnection;
use diesel_dynamic_schema::dynamic_value::{Any, DynamicRow, NamedField};
use ops_worker_jobs::store::{MetricSample, MetricStore, QueryRow, StoreError};

use super::schema::metric_samples;
use super::{micros, store_error, with_conn, Db, DbError, Pool};

/// Rows per INSERT: 6 parameters each, well under SQLite's 32,766.
const INSERT_BATCH: usize = 500;
/// Rows per DELETE of retention.
const PRUNE_BATCH: i64 = 5_000;

#[derive(Insertable)]
#[diesel(table_name = metric_samples)]
struct SampleRow<'a> {
    job_name: &'a str,
    name: &'a str,
    labels: String,
    value: f64,
    collected_at: NaiveDateTime,
}

/// Labels as stored: a JSON object, keys sorted.
fn labels_json(labels: &[(String, String)]) -> String {
    let map: std::collections::BTreeMap<&str, &str> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    serde_json::to_string(&map).expect("a map of strings serializes")
}

/// One value of a query's row, whatever its SQL type.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Int(i64),
    Float(f64),
    Text(String),
    /// A type a label or value cannot use (bytes, timestamps, arrays...).
    Other(&'static str),
}

impl Cell {
    fn number(&self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(*i as f64),
            Cell::Float(f) => Some(*f),
            _ => None,
        }
    }

    fn label(&self) -> Option<String> {
        match self {
            Cell::Int(i) => Some(i.to_string()),
            Cell::Float(f) => Some(f.to_string()),
            Cell::Text(s) => Some(s.clone()),
            Cell::Other(_) => None,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Cell::Int(_) => "an integer",
            Cell::Float(_) => "a float",
            Cell::Text(_) => "text",
            Cell::Other(t) => t,
        }
    }
}

impl FromSql<Any, Pg> for Cell {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        use diesel::sql_types as t;
        Ok(match value.get_oid().get() {
            16 => Cell::Text(<bool as FromSql<t::Bool, Pg>>::from_sql(value)?.to_string()),
            21 => Cell::Int(<i16 as FromSql<t::SmallInt, Pg>>::from_sql(value)?.into()),
            23 => Cell::Int(<i32 as FromSql<t::Integer, Pg>>::from_sql(value)?.into()),
            20 => Cell::Int(<i64 as FromSql<t::BigInt, Pg>>::from_sql(value)?),
            700 => Cell::Float(<f32 as FromSql<t::Float, Pg>>::from_sql(value)?.into()),
            701 => Cell::Float(<f64 as FromSql<t::Double, Pg>>::from_sql(value)?),
            1700 => Cell::Float(numeric_to_f64(
                &<diesel::data_types::PgNumeric as FromSql<t::Numeric, Pg>>::from_sql(value)?,
            )),
            // text, varchar, bpchar, name, unknown (a bare literal), citext-like
            25 | 1043 | 1042 | 19 | 705 => {
                Cell::Text(String::from_utf8(value.as_bytes().to_vec())?)
            }
            _ => Cell::Other("a type other than number or text"),
        })
    }
}

/// PostgreSQL's NUMERIC as f64: base-10000 digits, `weight` the power of
/// the first. Exact enough for a metric.
fn numeric_to_f64(n: &diesel::data_types::PgNumeric) -> f64 {
    use diesel::data_types::PgNumeric;
    let (negative, weight, digits) = match n {
        PgNumeric::Positive { weight, digits, .. } => (false, *weight, digits),
        PgNumeric::Negative { weight, digits, .. } => (true, *weight, digits),
        PgNumeric::NaN => return f64::NAN,
    };
    let magnitude: f64 = digits
        .iter()
        .enumerate()
        .map(|(i, d)| f64::from(*d) * 10_000f64.powi(i32::from(weight) - i as i32))
        .sum();
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

impl FromSql<Any, Sqlite> for Cell {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        use diesel::sql_types as t;
        Ok(match value.value_type() {
            Some(SqliteType::Long | SqliteType::Integer | SqliteType::SmallInt) => {
                Cell::Int(<i64 as FromSql<t::BigInt, Sqlite>>::from_sql(value)?)
            }
            Some(SqliteType::Double | SqliteType::Float) => {
                Cell::Float(<f64 as FromSql<t::Double, Sqlite>>::from_sql(value)?)
            }
            Some(SqliteType::Text) => {
                Cell::Text(<String as FromSql<t::Text, Sqlite>>::from_sql(value)?)
            }
            _ => Cell::Other("bytes"),
        })
    }
}

type Row = DynamicRow<NamedField<Option<Cell>>>;

/// Rows to samples: labels from every column but the last, the number from
/// the last. A NULL label is an empty string; a NULL number is an error.
fn to_query_rows(rows: Vec<Row>) -> Result<Vec<QueryRow>, String> {
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        let fields: Vec<&NamedField<Option<Cell>>> = (0..).map_while(|c| row.get(c)).collect();
        let Some((value, labels)) = fields.split_last() else {
            return Err("the query returns no columns".into());
        };
        let number = match &value.value {
            None => return Err(format!("row {}: column {:?} is NULL", i + 1, value.name)),
            Some(cell) => cell.number().ok_or_else(|| {
                format!(
                    "row {}: the last column ({:?}) must be a number, not {}",
                    i + 1,
                    value.name,
                    cell.type_name()
                )
            })?,
        };
        let mut named = Vec::with_capacity(labels.len());
        for f in labels {
            let text = match &f.value {
                None => String::new(),
                Some(cell) => cell.label().ok_or_else(|| {
                    format!(
                        "row {}: label column {:?} is {}; cast it to text",
                        i + 1,
                        f.name,
                        cell.type_name()
                    )
                })?,
            };
            named.push((f.name.clone(), text));
        }
        out.push(QueryRow {
            labels: named,
            value: number,
        });
    }
    Ok(out)
}

/// `file:` URI of an SQLite path, read-only (`%` and `#` escaped; paths
/// with `?` are refused by `DATABASE_URL` already).
fn read_only_uri(path: &str) -> String {
    let escaped = path.replace('%', "%25").replace('#', "%23");
    format!("file:{escaped}?mode=ro")
}

impl Db {
    async fn query_rows(&self, sql: &str, timeout: Duration) -> Result<Vec<QueryRow>, String> {
        use diesel_async::RunQueryDsl;
        let describe = |e: DbError| crate::error_chain(&e);
        let rows: Vec<Row> = match self.pool() {
            Pool::Postgres(pool) => {
                let mut conn = self.checkout(pool).await.map_err(describe)?;
                let sql = sql.to_string();
                // At least 1 ms: 0 would mean no limit.
                let limit_ms = timeout.as_millis().clamp(1, i32::MAX as u128);
                conn.build_transaction()
                    .read_only()
                    .run(async move |conn| {
                        diesel::sql_query(format!("SET LOCAL statement_timeout = {limit_ms}"))
                            .execute(conn)
                            .await?;
                        diesel::sql_query(sql).load::<Row>(conn).await
                    })
                    .await
                    .map_err(|e: diesel::result::Error| e.to_string())?
            }
            Pool::Sqlite(_) => {
                let path = self
                    .sqlite_file
                    .clone()
                    .ok_or("no SQLite file to open read-only")?;
                let sql = sql.to_string();
                let query = tokio::task::spawn_blocking(move || -> Result<Vec<Row>, String> {
                    let mut conn = SqliteConnection::establish(&read_only_uri(&path))
                        .map_err(|e| format!("opening the database read-only: {e}"))?;
                    diesel::RunQueryDsl::execute(
                        diesel::sql_query("PRAGMA query_only = ON"),
                        &mut conn,
                    )
                    .and_then(|_| {
                        diesel::RunQueryDsl::execute(
                            diesel::sql_query("PRAGMA busy_timeout = 5000"),
                            &mut conn,
                        )
                    })
                    .map_err(|e| e.to_string())?;
                    diesel::RunQueryDsl::load::<Row>(diesel::sql_query(sql), &mut conn)
                        .map_err(|e| e.to_string())
                });
                // SQLite cannot be interrupted from here: past the timeout
                // the run stops waiting and the statement finishes alone.
                match tokio::time::timeout(timeout, query).await {
                    Ok(joined) => joined.map_err(|e| format!("the query thread failed: {e}"))??,
                    Err(_) => {
                        return Err(format!(
                            "timed out after {}",
                            humantime::format_duration(timeout)
                        ))
                    }
                }
            }
        };
        to_query_rows(rows)
    }

    async fn insert_samples(&self, samples: &[MetricSample]) -> Result<(), DbError> {
        use diesel_async::RunQueryDsl;
        let rows: Vec<SampleRow<'_>> = samples
            .iter()
            .map(|s| SampleRow {
                job_name: &s.job_name,
                name: &s.name,
                labels: labels_json(&s.labels),
                value: s.value,
                collected_at: micros(s.collected_at),
            })
            .collect();
        // PostgreSQL takes a chunk per INSERT; SQLite (diesel has no
        // multi-row INSERT for it) a row per INSERT, all in one transaction,
        // which is what makes it cheap there.
        match self.pool() {
            Pool::Postgres(pool) => {
                let mut conn = self.checkout(pool).await?;
                conn.transaction::<_, diesel::result::Error, _>(async |conn| {
                    for chunk in rows.chunks(INSERT_BATCH) {
                        diesel::insert_into(metric_samples::table)
                            .values(chunk)
                            .execute(conn)
                            .await?;
                    }
                    Ok(())
                })
                .await?;
            }
            Pool::Sqlite(pool) => {
                let mut conn = self.checkout(pool).await?;
                conn.transaction::<_, diesel::result::Error, _>(async |conn| {
                    for row in &rows {
                        diesel::insert_into(metric_samples::table)
                            .values(row)
                            .execute(conn)
                            .await?;
                    }
                    Ok(())
                })
                .await?;
            }
        }
        Ok(())
    }

    async fn delete_samples_before(&self, before: DateTime<Utc>) -> Result<u64, DbError> {
        use diesel_async::RunQueryDsl;
        let before = micros(before);
        let mut total = 0u64;
        loop {
            let deleted = with_conn!(self, |conn| {
                let ids: Vec<i64> = metric_samples::table
                    .select(metric_samples::id)
                    .filter(metric_samples::collected_at.lt(before))
                    .limit(PRUNE_BATCH)
                    .load(conn)
                    .await?;
                diesel::delete(metric_samples::table.filter(metric_samples::id.eq_any(&ids)))
                    .execute(conn)
                    .await?
            });
            total += deleted as u64;
            if (deleted as i64) < PRUNE_BATCH {
                return Ok(total);
            }
        }
    }
}

#[derive(diesel::Queryable)]
struct StoredSample {
    job_name: String,
    name: String,
    labels: String,
    value: f64,
    collected_at: NaiveDateTime,
}

impl Db {
    /// Samples of series `name` (every series when `None`), oldest first.
    pub async fn metric_samples(&self, name: Option<&str>) -> Result<Vec<MetricSample>, DbError> {
        let names = name.map(|n| vec![n.to_string()]);
        self.samples_in(names.as_deref(), None).await
    }

    /// Samples of the series `names` (all when `None`) collected in
    /// `[start, end)` (any time when `None`), oldest first.
    pub(super) async fn samples_in(
        &self,
        names: Option<&[String]>,
        range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> Result<Vec<MetricSample>, DbError> {
        use diesel_async::RunQueryDsl;
        let range = range.map(|(s, e)| (micros(s), micros(e)));
        let rows: Vec<StoredSample> = with_conn!(self, |conn| {
            let mut q = metric_samples::table
                .select((
                    metric_samples::job_name,
                    metric_samples::name,
                    metric_samples::labels,
                    metric_samples::value,
                    metric_samples::collected_at,
                ))
                .order((metric_samples::collected_at, metric_samples::id))
                .into_boxed();
            if let Some(names) = names {
                q = q.filter(metric_samples::name.eq_any(names.to_vec()));
            }
            if let Some((start, end)) = range {
                q = q
                    .filter(metric_samples::collected_at.ge(start))
                    .filter(metric_samples::collected_at.lt(end));
            }
            q.load(conn).await?
        });
        Ok(rows
            .into_iter()
            .map(|r| MetricSample {
                job_name: r.job_name,
                name: r.name,
                // Written by `labels_json`: a flat object of strings.
                labels: serde_json::from_str::<std::collections::BTreeMap<String, String>>(
                    &r.labels,
                )
                .map(|m| m.into_iter().collect())
                .unwrap_or_default(),
                value: r.value,
                collected_at: r.collected_at.and_utc(),
            })
            .collect())
    }
}

#[async_trait]
impl MetricStore for Db {
    async fn query_read_only(
        &self,
        sql: &str,
        timeout: Duration,
    ) -> Result<Vec<QueryRow>, StoreError> {
        self.query_rows(sql, timeout).await.map_err(StoreError)
    }

    async fn record_samples(&self, samples: &[MetricSample]) -> Result<(), StoreError> {
        self.insert_samples(samples).await.map_err(store_error)
    }

    async fn prune_samples(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.delete_samples_before(before)
            .await
            .map_err(store_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_stored_sorted() {
        let labels = vec![
            ("mount".to_string(), "/".to_string()),
            ("device".to_string(), "sda\"1".to_string()),
        ];
        assert_eq!(labels_json(&labels), r#"{"device":"sda\"1","mount":"/"}"#);
        assert_eq!(labels_json(&[]), "{}");
    }

    #[test]
    fn numeric_digits_become_a_float() {
        use diesel::data_types::PgNumeric;
        // 12345.678 = [1, 2345, 6780] with weight 1
        let n = PgNumeric::Positive {
            weight: 1,
            scale: 3,
            digits: vec![1, 2345, 6780],
        };
        assert!((numeric_to_f64(&n) - 12345.678).abs() < 1e-9);
        let n = PgNumeric::Negative {
            weight: -1,
            scale: 2,
            digits: vec![500],
        };
        assert!((numeric_to_f64(&n) + 0.05).abs() < 1e-12);
    }

    #[test]
    fn read_only_uri_escapes_uri_characters() {
        assert_eq!(read_only_uri("data/x.db"), "file:data/x.db?mode=ro");
        assert_eq!(read_only_uri("/t/a%b#c.db"), "file:/t/a%25b%23c.db?mode=ro");
    }
}
