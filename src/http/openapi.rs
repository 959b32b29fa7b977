//! The OpenAPI 3 document of `/api/v1`, served at `/api/v1/openapi.json`:
//! generated from the handlers' `#[utoipa::path]` attributes and the
//! types' `ToSchema` derives, so it describes what the code does. This file
//! owns the list of documented operations and what every route shares,
//! added once by [`Conventions`]: the bearer token, 400 for a bad
//! parameter, 401, 503; and for writes 403 (viewer or cross-site), 413,
//! 415 and 422. `tests/it/api_openapi.rs` checks that the document and
//! `super::API_ROUTES` (what the router serves) list the same routes.

use std::sync::LazyLock;

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::error::{ApiError, ErrorBody};
use super::params::Params;
use super::{reads, silences, writes};

/// The name of the security scheme in the document.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ops-worker API",
        description = "Read jobs, runs, services, alerts, workers, reports, on-call and the audit log; run a job now, pause and resume it, acknowledge and resolve alerts, silence alerts. Every route takes `Authorization: Bearer TOKEN` (a viewer's token reads, an operator's also writes); a server with no token declared listens on loopback only and takes every request as an operator. Errors are `{\"error\": CODE, \"message\": TEXT}`. The manual: docs/api.md."
    ),
    paths(
        openapi,
        reads::jobs,
        reads::job,
        reads::job_runs,
        writes::pause,
        writes::resume,
        writes::run_now,
        reads::run_request,
        reads::run,
        reads::services,
        reads::alerts,
        reads::alert,
        writes::ack,
        writes::resolve,
        reads::workers,
        reads::reports,
        reads::report,
        reads::oncall,
        reads::audit,
        silences::list,
        silences::add,
        silences::remove,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Conventions)
)]
struct ApiDoc;

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);
    &DOC
}

/// `GET /api/v1/openapi.json`: this document. Behind the same token as
/// every other read.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3 document of /api/v1", content_type = "application/json")))]
pub async fn openapi(p: Params) -> Result<Json<&'static utoipa::openapi::OpenApi>, ApiError> {
    p.only(&[])?;
    Ok(Json(document()))
}

/// What every route shares, added to each operation.
struct Conventions;

fn error(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        )
        .build()
        .into()
}

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                BEARER,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "A token of [api.tokens.NAME] in schedules.toml: role viewer reads, role operator also writes",
                        ))
                        .build(),
                ),
            );
        for item in doc.paths.paths.values_mut() {
            let ops = [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.delete, true),
                (&mut item.put, true),
                (&mut item.patch, true),
            ];
            for (op, write) in ops {
                let Some(op) = op else { continue };
                op.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
                let mut shared = vec![
                    ("400", "A parameter that is not valid or not taken (`bad_parameter`), named in the message"),
                    ("401", "No valid bearer token (`unauthorized`)"),
                    ("503", "The database is unavailable (`database_unavailable`)"),
                ];
                if write {
                    shared.extend([
                        ("403", "The token may only read (`forbidden`), or the request came from another site's page (`cross_site`)"),
                        ("413", "The body is larger than 64 KiB (`body_too_large`)"),
                        ("415", "A body that is not `application/json` (`unsupported_media_type`)"),
                        ("422", "A body with unknown or missing fields or wrong types (`invalid_body`)"),
                    ]);
                }
                for (status, description) in shared {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error(description));
                }
            }
        }
    }
}
