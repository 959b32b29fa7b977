//! Everything ops-worker serves over HTTP, on one stack (axum on hyper):
//! the API under `/api/v1` (`ops-worker serve`, or `run --http-addr`),
//! `/metrics` (`run --metrics-addr`, and beside the API of `serve` and of
//! the daemon's `--http-addr`),
//! `/healthz` and the push jobs' `/ping/...` (`ping.rs`).
//!
//! Handlers are thin: they parse and authorise a request, call the
//! functions the CLI calls (`crate::overview`, `crate::ops`, `src/db`) and
//! map their errors to a status (`error.rs`). `auth.rs` decides who is
//! calling, `params.rs` reads query strings, `reads.rs`, `writes.rs` and
//! `silences.rs` hold the routes, `openapi.rs` their OpenAPI document,
//! `ack.rs` the acknowledge links' pages. This file owns the router (the
//! `/api/v1` routes in one list, [`API_ROUTES`]), the limits every request
//! gets (body size, time, concurrency) and the accept loop.
//!
//! The accept loop is hyper's connection builder rather than `axum::serve`
//! for one setting axum does not expose: a timeout on reading request
//! headers, so a client that sends them byte by byte cannot hold a
//! connection open.

mod ack;
mod auth;
mod console;
mod error;
mod openapi;
mod params;
mod ping;
mod reads;
mod silences;
mod writes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ops_worker_jobs::Clock;
use tokio_util::sync::CancellationToken;

pub use auth::Caller;
pub use error::ApiError;
pub use ping::{PINGS_PER_SECOND, PING_BODY_KEPT, PING_BODY_LIMIT};

use crate::ack_link::AckLinks;
use crate::config::{ApiConfig, Config};
use crate::db::Db;
use crate::telemetry::Telemetry;

/// The largest request body taken (413 beyond it).
pub const BODY_LIMIT: usize = 64 * 1024;
/// How long a request may take, body included (408 beyond it).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests handled at once; more wait (within their timeout).
const MAX_IN_FLIGHT: usize = 64;
/// Open connections at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 512;

/// What the API's handlers share.
pub struct Inner {
    pub db: Db,
    /// The running schedules.toml: in the daemon, a reload shows here.
    configs: tokio::sync::watch::Receiver<Arc<Config>>,
    /// Tokens and `public_url` as loaded at start: a reload does not
    /// change who may call (removing every token of a server bound to a
    /// public address must not open it).
    pub api: ApiConfig,
    pub clock: Arc<dyn Clock>,
    /// Checks the acknowledge links of `/ack/{token}`; `None`: links are
    /// off and every one is refused.
    pub ack_links: Option<Arc<AckLinks>>,
    /// Push signals per job in the current second (`ping.rs`).
    pings: ping::Limiter,
    /// Where refused signals are counted: the daemon's, or one of its own.
    telemetry: Arc<Telemetry>,
    /// A worker whose heartbeat is older is not live: run now refuses
    /// when no worker is (`crate::run_requests::submit`).
    pub dead_after: Duration,
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// A state with no acknowledge links, a [`Telemetry`] of its own and
    /// the default `--dead-after`; [`AppState::builder`] sets them.
    pub fn new(
        db: Db,
        configs: tokio::sync::watch::Receiver<Arc<Config>>,
        clock: Arc<dyn Clock>,
    ) -> AppState {
        AppState::builder(db, configs, clock).build()
    }

    /// Everything is set before [`AppStateBuilder::build`] shares the
    /// state, so nothing can be set on a state already shared.
    pub fn builder(
        db: Db,
        configs: tokio::sync::watch::Receiver<Arc<Config>>,
        clock: Arc<dyn Clock>,
    ) -> AppStateBuilder {
        AppStateBuilder {
            db,
            configs,
            clock,
            ack_links: None,
            telemetry: None,
            dead_after: crate::heartbeat::DEFAULT_DEAD_AFTER,
        }
    }

    /// The schedules.toml in force now.
    pub fn config(&self) -> Arc<Config> {
        self.configs.borrow().clone()
    }
}

/// An [`AppState`] being made: [`AppState::builder`], then the settings,
/// then [`AppStateBuilder::build`].
pub struct AppStateBuilder {
    db: Db,
    configs: tokio::sync::watch::Receiver<Arc<Config>>,
    clock: Arc<dyn Clock>,
    ack_links: Option<Arc<AckLinks>>,
    telemetry: Option<Arc<Telemetry>>,
    dead_after: Duration,
}

impl AppStateBuilder {
    /// Serves `/ack/{token}` with `links` (made at start, like `api`).
    pub fn ack_links(mut self, links: Option<Arc<AckLinks>>) -> AppStateBuilder {
        self.ack_links = links;
        self
    }

    /// Counts what the handlers count in `telemetry` (the daemon's, which
    /// its `/metrics` serves) instead of one of the state's own.
    pub fn telemetry(mut self, telemetry: Arc<Telemetry>) -> AppStateBuilder {
        self.telemetry = Some(telemetry);
        self
    }

    /// Judges a worker live (for run now) by `dead_after`: the process's
    /// `--dead-after` (`OPS_WORKER_DEAD_AFTER`), as the daemons judge.
    pub fn dead_after(mut self, dead_after: Duration) -> AppStateBuilder {
        self.dead_after = dead_after;
        self
    }

    pub fn build(self) -> AppState {
        let api = self.configs.borrow().api.clone();
        AppState(Arc::new(Inner {
            db: self.db,
            configs: self.configs,
            api,
            clock: self.clock,
            ack_links: self.ack_links,
            pings: ping::Limiter::default(),
            telemetry: self.telemetry.unwrap_or_else(|| Arc::new(Telemetry::new())),
            dead_after: self.dead_after,
        }))
    }
}

/// Why the API cannot listen where asked.
#[derive(Debug, thiserror::Error)]
#[error("refusing to serve the API on {addr} without tokens: declare [api.tokens.NAME] in schedules.toml (docs/api.md) or bind a loopback address such as 127.0.0.1:8080")]
pub struct OpenWithoutTokens {
    pub addr: SocketAddr,
}

/// Without tokens the API trusts every caller as an operator, so it may
/// only listen where only this host reaches it.
pub fn check_bind(addr: SocketAddr, api: &ApiConfig) -> Result<(), OpenWithoutTokens> {
    if api.tokens.is_empty() && !addr.ip().is_loopback() {
        return Err(OpenWithoutTokens { addr });
    }
    Ok(())
}

/// Says at start who may call: the declared tokens (by name and role), or
/// that every request from this host is an operator.
pub fn announce(addr: SocketAddr, api: &ApiConfig) {
    if api.tokens.is_empty() {
        tracing::warn!(addr = %addr, "API: no [api.tokens] in schedules.toml: listening on loopback only, where every request is an operator");
    } else {
        let tokens: Vec<String> = api
            .tokens
            .iter()
            .map(|t| format!("{} ({:?})", t.name, t.role).to_lowercase())
            .collect();
        tracing::info!(addr = %addr, tokens = %tokens.join(", "), "API: bearer tokens required");
    }
}

/// Declares the `/api/v1` routes once: [`API_ROUTES`] names them and
/// `api_v1_routes` serves them, so the test of the OpenAPI document can
/// check that it describes exactly what is served.
macro_rules! api_v1 {
    ($($method:ident $path:literal => $handler:path,)+) => {
        /// Every `/api/v1` route, as (method, path under `/api/v1`).
        pub const API_ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path),)+];

        fn api_v1_routes(router: Router<AppState>) -> Router<AppState> {
            router$(.route($path, axum::routing::$method($handler)))+
        }
    };
}

api_v1! {
    get "/openapi.json" => openapi::openapi,
    get "/jobs" => reads::jobs,
    get "/jobs/{name}" => reads::job,
    get "/jobs/{name}/runs" => reads::job_runs,
    post "/jobs/{name}/pause" => writes::pause,
    post "/jobs/{name}/resume" => writes::resume,
    post "/jobs/{name}/run" => writes::run_now,
    get "/run-requests/{id}" => reads::run_request,
    get "/runs/{id}" => reads::run,
    get "/services" => reads::services,
    get "/alerts" => reads::alerts,
    get "/alerts/{id}" => reads::alert,
    post "/alerts/{id}/ack" => writes::ack,
    post "/alerts/{id}/resolve" => writes::resolve,
    get "/workers" => reads::workers,
    get "/reports" => reads::reports,
    get "/reports/{name}/{period}" => reads::report,
    get "/oncall/{schedule}" => reads::oncall,
    get "/audit" => reads::audit,
    get "/silences" => silences::list,
    post "/silences" => silences::add,
    delete "/silences/{id}" => silences::remove,
}

/// The `/api/v1` routes, `/healthz` and the acknowledge links' `/ack/{token}`.
pub fn api_router(state: AppState) -> Router {
    let api = api_v1_routes(Router::new())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    Router::new()
        .nest("/api/v1", api)
        .merge(ping::routes())
        .route("/healthz", get(healthz))
        .route("/ack/{token}", get(ack::page).post(ack::confirm))
        .merge(console::router(state.clone()))
        .with_state(state)
}

/// `/metrics` alone.
pub fn metrics_router(telemetry: Arc<Telemetry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(telemetry)
}

/// The limits every request gets, JSON 404s for what no route takes, and
/// gzip for a client that accepts it (tower-http's default predicate
/// leaves out bodies under 32 bytes and event streams). Compressed pages
/// that hold a CSRF token and echo a parameter are what BREACH measures;
/// the console's cookie is SameSite=Strict, so no other site can make a
/// signed-in browser fetch them.
pub fn finish(router: Router) -> Router {
    router
        .fallback(not_found)
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            MAX_IN_FLIGHT,
        ))
        .layer(middleware::from_fn(timeout))
}

async fn timeout(req: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "the request took longer than {}s",
                REQUEST_TIMEOUT.as_secs()
            ),
        )
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route (the API is under /api/v1; its routes are in /api/v1/openapi.json and docs/api.md)")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// 200 while the database answers: the compose healthcheck.
async fn healthz(State(state): State<AppState>) -> Response {
    match state.db.workers().await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => ApiError::database(&e).into_response(),
    }
}

/// The content type of [`Telemetry::render`]'s output.
const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn metrics(State(telemetry): State<Arc<Telemetry>>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        telemetry.render(),
    )
        .into_response()
}

/// Binds `addr` now (so a taken port fails start-up) and serves `router`
/// (after [`finish`]) until `stop` fires.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    stop: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let router = finish(router);
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    Ok((
        local,
        tokio::spawn(async move {
            loop {
                let (sock, peer) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(error = %e, "http: cannot accept a connection");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                    _ = stop.cancelled() => return,
                };
                let Ok(permit) = connections.clone().try_acquire_owned() else {
                    // Over the limit: closed at once rather than queued.
                    drop(sock);
                    continue;
                };
                let router = router.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |mut req: Request<hyper::body::Incoming>| {
                            req.extensions_mut()
                                .insert(axum::extract::ConnectInfo(peer));
                            let router = router.clone();
                            async move {
                                use tower::ServiceExt;
                                router.oneshot(req.map(axum::body::Body::new)).await
                            }
                        },
                    );
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT)
                        .serve_connection(hyper_util::rt::TokioIo::new(sock), service);
                    // A client that hangs up early is not worth a log line.
                    let _ = conn.await;
                    drop(permit);
                });
            }
        }),
    ))
}
