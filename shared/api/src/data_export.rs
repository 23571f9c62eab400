//! Routes of bulk data exports (bank JWT, `loan_officer` or `risk_admin`), served by the
//! data-query function beside single queries. A bank never sees another bank's export: its id
//! answers 404 as an unknown one does.
//!
//! | method | path | what |
//! |---|---|---|
//! | POST | /v1/exports | export interfaces of the portfolio or of listed firms (202; audited) |
//! | GET | /v1/exports/{id} | progress, skipped firms and, once complete, 15-minute links (audited) |

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use puhui_edge::problem::Problem;
use puhui_edge::{ApiError, ApiJson, Authenticated, Authenticator, PathParam};
use puhui_services::data_export::{
    DataExportService, ExportJob, ExportJobView, ExportRequest, MAX_FIRMS,
};
use puhui_services::data_query::DataQueryConfig;
use puhui_services::storage::StoragePorts;

/// What the export routes need.
#[derive(Clone)]
pub struct DataExportApi {
    /// Submitting and reading exports (the queue consumer uses the same service).
    pub service: Arc<DataExportService>,
    /// Bank-token verification.
    pub auth: Arc<Authenticator>,
}

impl DataExportApi {
    /// The routes' state over the ports (their outbox reaches the data-exports queue), with
    /// the banks' daily quotas exports count against.
    pub fn new(ports: StoragePorts, quotas: DataQueryConfig, auth: Arc<Authenticator>) -> Self {
        DataExportApi {
            service: Arc::new(DataExportService::new(ports, quotas)),
            auth,
        }
    }
}

impl FromRef<DataExportApi> for Arc<Authenticator> {
    fn from_ref(s: &DataExportApi) -> Self {
        s.auth.clone()
    }
}

/// The export routes with their state.
pub fn routes(state: DataExportApi) -> Router {
    Router::new()
        .route(
            "/v1/exports",
            post(submit).layer(DefaultBodyLimit::max(SUBMIT_BODY_BYTES)),
        )
        .route("/v1/exports/{id}", get(job))
        .with_state(state)
}

type ApiResult = Result<Response, ApiError>;

/// Body limit of a submission: the longest firm list (a quoted 18-character USCC and a comma,
/// with room for spaces, each) and the rest of the request. Above the default limit, so that
/// 10,000 firms reach the service; more are refused there as a 422 naming `firms`.
pub const SUBMIT_BODY_BYTES: usize = MAX_FIRMS * 24 + 64 * 1024;

#[utoipa::path(post, path = "/v1/exports", tag = "data", security(("bearer" = [])), request_body = ExportRequest,
    responses((status = 202, description = "Accepted: chunks queued (the submission is audited)", body = ExportJob),
        (status = 400, description = "body not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "no bank, or role missing", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "a field of the wrong shape (a bad USCC, purpose or format), no interface or an unknown one, no firms or too many: each problem with its field", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "the export's firm × interface pairs do not fit in what is left of the bank's daily quota, shared with single queries (type /problems/quota-exhausted/data-query-daily); Retry-After gives the seconds to the next business day", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until the quota refills")))))]
async fn submit(
    State(s): State<DataExportApi>,
    Authenticated(who): Authenticated,
    body: ApiJson<ExportRequest>,
) -> ApiResult {
    let job = s.service.submit(&who, body.value).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

#[utoipa::path(get, path = "/v1/exports/{id}", tag = "data", security(("bearer" = [])),
    params(("id" = String, Path, description = "Export job id")),
    responses((status = 200, description = "Progress and skipped pairs; once complete, links to the parts and skipped lists (valid 15 minutes)", body = ExportJobView),
        (status = 400, description = "malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "no bank, or role missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such export (for my bank)", body = Problem, content_type = "application/problem+json")))]
async fn job(
    State(s): State<DataExportApi>,
    Authenticated(who): Authenticated,
    PathParam(id): PathParam<String>,
) -> ApiResult {
    Ok(Json(s.service.view(&who, &id).await?).into_response())
}
