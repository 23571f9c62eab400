//! Routes of screening (客户筛选), served by the data-query function: a bank's loan officers find
//! firms by filters over the newest indicator snapshot, for customer acquisition, and get public
//! business identity only. Every request is audited.
//!
//! | method | path | who | what |
//! |---|---|---|---|
//! | POST | /v1/screening | bank (`loan_officer`) | one page of the firms the filters match (audited) |

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use puhui_edge::problem::Problem;
use puhui_edge::{ApiError, ApiJson, Authenticated, Authenticator};
use puhui_ports::{BlobStore, Clock, IdGenerator, Table};
use puhui_services::screening::{ScreeningPage, ScreeningRequest, ScreeningService};

/// What the screening route needs.
#[derive(Clone)]
pub struct ScreeningApi {
    /// Screening over the snapshots and profiles.
    pub service: Arc<ScreeningService>,
    /// Bank-token verification.
    pub auth: Arc<Authenticator>,
}

impl ScreeningApi {
    /// The route's state over the table (profiles, audit) and the blob store (snapshots).
    pub fn new(
        table: Arc<dyn Table>,
        blobs: Arc<dyn BlobStore>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        auth: Arc<Authenticator>,
    ) -> Self {
        ScreeningApi {
            service: Arc::new(ScreeningService::new(table, blobs, clock, ids)),
            auth,
        }
    }
}

impl FromRef<ScreeningApi> for Arc<Authenticator> {
    fn from_ref(s: &ScreeningApi) -> Self {
        s.auth.clone()
    }
}

/// The screening route with its state.
pub fn routes(state: ScreeningApi) -> Router {
    Router::new()
        .route("/v1/screening", post(screen))
        .with_state(state)
}

#[utoipa::path(post, path = "/v1/screening", tag = "data", security(("bearer" = [])),
    request_body = ScreeningRequest,
    responses((status = 200, description = "One page of the matching firms by USCC: name, USCC, region, industry only (audited). At most 1,000 firms over all pages (`capped` says when more matched)", body = ScreeningPage),
        (status = 400, description = "body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "the loan_officer role is missing, or the token is not a bank's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "no indicator snapshot has been published yet", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "an unknown or invalid filter, page size or cursor (errors[] name each field)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "storage busy; retry", body = Problem, content_type = "application/problem+json")))]
async fn screen(
    State(s): State<ScreeningApi>,
    Authenticated(who): Authenticated,
    body: ApiJson<ScreeningRequest>,
) -> Result<Response, ApiError> {
    Ok(Json(s.service.screen(&who, body.value).await?).into_response())
}
