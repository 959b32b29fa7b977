//! Local HTTP for the tests: wiremock servers on 127.0.0.1, and ports that
//! nothing listens on. Tests that need more than a fixed answer (a
//! receiver that records requests, answers from a script or never answers)
//! mount their own responder on a wiremock server, as `notify.rs` does.

use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A wiremock server on 127.0.0.1 that answers every request with
/// `status`, a `content_type` header and `body`, for as long as it lives.
pub async fn answering(status: u16, content_type: &str, body: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(status).set_body_raw(body, content_type))
        .mount(&server)
        .await;
    server
}

/// A port on 127.0.0.1 that nothing listens on: it was free a moment ago.
/// For a target that refuses connections, or for a server the test starts
/// there later (a daemon's `METRICS_ADDR`, a receiver that comes back).
pub fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port on 127.0.0.1")
        .port()
}
