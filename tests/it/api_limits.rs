//! Slow and many clients: a body that never finishes gets 408 after the
//! request timeout, headers that never finish get the connection closed
//! after the header timeout, and connections beyond the limit are closed at
//! once while the ones within it are still served. Raw sockets, so the test
//! controls exactly what the client sends.

use std::time::{Duration, Instant};

use ops_worker::http::{HEADER_TIMEOUT, MAX_CONNECTIONS, REQUEST_TIMEOUT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::api::{Api, CONFIG, OPERATOR};
use crate::helpers::TestDb;

crate::backend_tests!(slow_and_many_clients_are_bounded);

async fn connect(api: &Api) -> TcpStream {
    TcpStream::connect(api.base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Everything the server sends until it closes, and how long that took.
async fn read_to_close(sock: &mut TcpStream, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    tokio::time::timeout(within, sock.read_to_end(&mut out))
        .await
        .expect("the server closes the connection in time")
        .ok();
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

async fn slow_and_many_clients_are_bounded(db: &TestDb) {
    let api = Api::start(db, CONFIG).await;
    let margin = Duration::from_secs(5);

    // A body announced as 100 bytes, of which 10 come: 408 after the
    // request timeout, not before, and the job is not paused.
    let mut sock = connect(&api).await;
    sock.write_all(
        format!(
            "POST /api/v1/jobs/tick/pause HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {OPERATOR}\r\n\
             Connection: close\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"reason\""
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (reply, took) = read_to_close(&mut sock, REQUEST_TIMEOUT + margin).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("\"error\":\"timeout\""), "{reply}");
    assert!(
        took >= REQUEST_TIMEOUT - Duration::from_millis(500),
        "{took:?}"
    );
    assert!(db.db().pauses().await.unwrap().is_empty());

    // Headers sent in part and never finished: closed after the header
    // timeout with no response.
    let mut sock = connect(&api).await;
    sock.write_all(b"GET /api/v1/jobs HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (reply, took) = read_to_close(&mut sock, HEADER_TIMEOUT + margin).await;
    assert!(!reply.contains("200 OK"), "{reply}");
    assert!(
        took >= HEADER_TIMEOUT - Duration::from_millis(500),
        "{took:?}"
    );

    // MAX_CONNECTIONS idle connections held open: one more is closed at
    // once, unanswered; once they go, requests are served again.
    let mut held = Vec::with_capacity(MAX_CONNECTIONS);
    for _ in 0..MAX_CONNECTIONS {
        held.push(connect(&api).await);
    }
    // The server takes a permit when it accepts: a request on the last of
    // them answers once all are accepted.
    let last = held.last_mut().unwrap();
    last.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), last.read_exact(&mut buf))
        .await
        .expect("a held connection is served")
        .unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
    let mut extra = connect(&api).await;
    extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .ok();
    let (reply, took) = read_to_close(&mut extra, Duration::from_secs(5)).await;
    assert_eq!(reply, "", "one over the limit is not served");
    assert!(took < HEADER_TIMEOUT, "{took:?}");
    drop(held);
    // The server notices the closed connections on its own schedule: ask
    // until it answers, for at most a few seconds.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut sock = connect(&api).await;
        sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok();
        let (reply, _) = read_to_close(&mut sock, Duration::from_secs(5)).await;
        if reply.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not served again after the held connections closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
