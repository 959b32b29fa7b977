//! PostgreSQL `LISTEN`: a dedicated connection, outside the pool, opened
//! with the pool's URL and TLS settings (`tls.rs`), whose notifications on
//! one channel become wake-ups. What a wake-up means is the listener's
//! owner's business (the run-request claimer); SQLite has no such thing.

use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::{AsyncMessage, Client, Connection};

use super::{Db, DbError};

/// A connection listening on one channel. Dropping it closes the
/// connection.
pub struct Listener {
    /// Kept so the connection stays open; no statement is sent after
    /// `LISTEN`.
    _client: Client,
    wakeups: tokio::sync::mpsc::UnboundedReceiver<()>,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Listener {
    /// Waits for the next notification; false when the connection ended
    /// (the server restarted or the network went), after which nothing more
    /// comes: listen again.
    pub async fn notified(&mut self) -> bool {
        let woke = self.wakeups.recv().await.is_some();
        // Several notifications that arrived together wake once.
        while self.wakeups.try_recv().is_ok() {}
        woke
    }
}

/// Drives `connection`, forwarding each notification, then `LISTEN`s on
/// `channel` (an identifier of ours, not user input).
pub(super) async fn start<S, T>(
    client: Client,
    mut connection: Connection<S, T>,
    channel: &str,
) -> Result<Listener, tokio_postgres::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, wakeups) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    if tx.send(()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %crate::error_chain(&e), "the LISTEN connection ended");
                    return;
                }
            }
        }
    });
    let listener = Listener {
        _client: client,
        wakeups,
        driver,
    };
    listener
        ._client
        .batch_execute(&format!("LISTEN \"{channel}\""))
        .await?;
    Ok(listener)
}

impl Db {
    /// A dedicated connection `LISTEN`ing on `channel`; `None` on SQLite.
    pub async fn listen(&self, channel: &str) -> Result<Option<Listener>, DbError> {
        let Some(connector) = &self.pg else {
            return Ok(None);
        };
        connector
            .listen(channel)
            .await
            .map(Some)
            .map_err(|source| DbError::Unavailable {
                url: self.url.to_string(),
                source,
            })
    }
}
