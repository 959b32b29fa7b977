//! `audit_log`: every write made through the HTTP API, allowed or not. The
//! HTTP layer (`src/http`) decides what is recorded; this file only stores
//! and reads rows.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::{ExpressionMethods, Insertable, QueryDsl, Queryable, Selectable, SelectableHelper};
use serde::Serialize;

use super::schema::audit_log;
use super::{micros, with_conn, Db, DbError};

/// A write to record.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = audit_log)]
pub struct NewAuditEntry {
    pub at: NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub source: String,
    /// ok, forbidden, not_found, conflict or invalid (the table checks it).
    pub outcome: String,
    pub detail: Option<String>,
}

impl NewAuditEntry {
    pub fn new(at: DateTime<Utc>, actor: &str, action: &str, target: &str, source: &str) -> Self {
        NewAuditEntry {
            at: micros(at),
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            source: source.to_string(),
            outcome: "ok".to_string(),
            detail: None,
        }
    }
}

/// One row of `audit_log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub id: i64,
    #[serde(serialize_with = "utc")]
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub at: NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub source: String,
    pub outcome: String,
    pub detail: Option<String>,
}

fn utc<S: serde::Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
    t.and_utc().serialize(s)
}

impl Db {
    pub async fn record_audit(&self, entry: &NewAuditEntry) -> Result<(), DbError> {
        use diesel_async::RunQueryDsl;
        with_conn!(self, |conn| {
            diesel::insert_into(audit_log::table)
                .values(entry.clone())
                .execute(conn)
                .await?
        });
        Ok(())
    }

    /// Newest first, at most `limit`, only ids below `before` when given
    /// (the cursor of the next page).
    pub async fn audit_log(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, DbError> {
        use diesel_async::RunQueryDsl;
        Ok(with_conn!(self, |conn| {
            let mut q = audit_log::table
                .select(AuditEntry::as_select())
                .order(audit_log::id.desc())
                .limit(limit.max(0))
                .into_boxed();
            if let Some(before) = before {
                q = q.filter(audit_log::id.lt(before));
            }
            q.load(conn).await?
        }))
    }
}
