//! `console_sessions`: the web console's signed-in sessions, keyed by the
//! SHA-256 of the cookie's id (the id itself is never stored). What a
//! session may do, its cookie and its expiry policy are the console's
//! business (`src/http/console/session.rs`); this file stores and reads rows.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::{ExpressionMethods, Insertable, OptionalExtension, QueryDsl};

use super::schema::console_sessions;
use super::{micros, with_conn, Db, DbError};

#[derive(Insertable)]
#[diesel(table_name = console_sessions)]
struct Row<'a> {
    id_hash: &'a str,
    token_name: &'a str,
    created_at: NaiveDateTime,
    expires_at: NaiveDateTime,
}

impl Db {
    /// Stores a session of `token_name` until `expires_at`, and deletes the
    /// sessions that expired before `now`.
    pub async fn create_session(
        &self,
        id_hash: &str,
        token_name: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        use diesel_async::RunQueryDsl;
        let row = Row {
            id_hash,
            token_name,
            created_at: micros(now),
            expires_at: micros(expires_at),
        };
        with_conn!(self, |conn| {
            diesel::delete(
                console_sessions::table.filter(console_sessions::expires_at.le(micros(now))),
            )
            .execute(conn)
            .await?;
            diesel::insert_into(console_sessions::table)
                .values(&row)
                .execute(conn)
                .await?
        });
        Ok(())
    }

    /// The token name of the session `id_hash` if it has not expired at `now`.
    pub async fn session_token(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, DbError> {
        use diesel_async::RunQueryDsl;
        Ok(with_conn!(self, |conn| {
            console_sessions::table
                .filter(console_sessions::id_hash.eq(id_hash))
                .filter(console_sessions::expires_at.gt(micros(now)))
                .select(console_sessions::token_name)
                .first::<String>(conn)
                .await
                .optional()?
        }))
    }

    /// Ends the session `id_hash` (sign-out); no error when there is none.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), DbError> {
        use diesel_async::RunQueryDsl;
        with_conn!(self, |conn| {
            diesel::delete(console_sessions::table.filter(console_sessions::id_hash.eq(id_hash)))
                .execute(conn)
                .await?
        });
        Ok(())
    }
}
