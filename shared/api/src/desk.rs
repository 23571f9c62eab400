//! Routes of the bank-desk function, for bank staff (bank JWT).
//!
//! | method | path | who | what |
//! |---|---|---|---|
//! | POST | /v1/desk/loan-codes | product_admin, platform_admin | create a loan code |
//! | GET | /v1/desk/loan-codes | product_admin, platform_admin | own loan codes |
//! | GET | /v1/desk/demands | loan_officer | demands offered to my bank (`state`, `min_amount`, `max_amount`) |
//! | GET | /v1/desk/demands/{id} | loan_officer | one offered demand, my claim, free slots |
//! | POST | /v1/desk/demands/{id}/claim | loan_officer | claim (201; 200 if already mine; 409 when three banks hold it) |
//! | POST | /v1/desk/demands/{id}/progress | loan_officer | move my claim on |
//! | POST | /v1/desk/demands/{id}/release | loan_officer | give my claim back |

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use puhui_domain::financing::LoanCodeDraft;
use puhui_domain::{Claim, DemandId, LoanCode, ProgressUpdate};
use puhui_edge::problem::Problem;
use puhui_edge::{ApiError, ApiJson, ApiQuery, Authenticated, Authenticator, PathParam};
use puhui_services::financing::{
    DeskDemand, DeskFilter, DeskService, FinancingPorts, LoanCodeService, OfferRecord,
};
use puhui_services::{Listing, PageRequest};

/// What the desk routes need.
#[derive(Clone)]
pub struct DeskApi {
    /// Offers and claims.
    pub desk: Arc<DeskService>,
    /// Loan codes.
    pub codes: Arc<LoanCodeService>,
    /// Token verification.
    pub auth: Arc<Authenticator>,
}

impl DeskApi {
    /// The routes' state over the financing ports.
    pub fn new(ports: FinancingPorts, auth: Arc<Authenticator>) -> Self {
        DeskApi {
            desk: Arc::new(DeskService::new(ports.clone())),
            codes: Arc::new(LoanCodeService::new(ports)),
            auth,
        }
    }
}

impl FromRef<DeskApi> for Arc<Authenticator> {
    fn from_ref(s: &DeskApi) -> Self {
        s.auth.clone()
    }
}

/// The bank-desk routes with their state.
pub fn routes(state: DeskApi) -> Router {
    Router::new()
        .route("/v1/desk/loan-codes", post(create_code).get(list_codes))
        .route("/v1/desk/demands", get(list))
        .route("/v1/desk/demands/{id}", get(get_one))
        .route("/v1/desk/demands/{id}/claim", post(claim))
        .route("/v1/desk/demands/{id}/progress", post(progress))
        .route("/v1/desk/demands/{id}/release", post(release))
        .with_state(state)
}

type ApiResult = Result<Response, ApiError>;

#[utoipa::path(post, path = "/v1/desk/loan-codes", tag = "desk", security(("bearer" = [])), request_body = LoanCodeDraft,
    responses((status = 201, description = "Created", body = LoanCode),
        (status = 400, description = "malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing or another bank's code", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "scene already used", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid draft or unknown product", body = Problem, content_type = "application/problem+json")))]
async fn create_code(
    State(s): State<DeskApi>,
    Authenticated(who): Authenticated,
    body: ApiJson<LoanCodeDraft>,
) -> ApiResult {
    let code = s.codes.create(&who, body.value).await?;
    Ok((StatusCode::CREATED, Json(code)).into_response())
}

#[utoipa::path(get, path = "/v1/desk/loan-codes", tag = "desk", security(("bearer" = [])), params(PageRequest),
    responses((status = 200, description = "Own loan codes", body = Listing<LoanCode>),
        (status = 400, description = "bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "limit or cursor invalid", body = Problem, content_type = "application/problem+json")))]
async fn list_codes(
    State(s): State<DeskApi>,
    Authenticated(who): Authenticated,
    ApiQuery(page): ApiQuery<PageRequest>,
) -> ApiResult {
    Ok(Json(s.codes.list(&who, page).await?).into_response())
}

#[utoipa::path(get, path = "/v1/desk/demands", tag = "desk", security(("bearer" = [])), params(DeskFilter),
    responses((status = 200, description = "Demands offered to my bank, newest first", body = Listing<OfferRecord>),
        (status = 400, description = "bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "unknown state, limit or cursor invalid", body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(s): State<DeskApi>,
    Authenticated(who): Authenticated,
    ApiQuery(filter): ApiQuery<DeskFilter>,
) -> ApiResult {
    Ok(Json(s.desk.list(&who, filter).await?).into_response())
}

#[utoipa::path(get, path = "/v1/desk/demands/{id}", tag = "desk", security(("bearer" = [])),
    params(("id" = String, Path, description = "Demand id (ULID)")),
    responses((status = 200, description = "The offer, my claim and the free slots", body = DeskDemand),
        (status = 400, description = "id is not a ULID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not offered to my bank", body = Problem, content_type = "application/problem+json")))]
async fn get_one(
    State(s): State<DeskApi>,
    Authenticated(who): Authenticated,
    PathParam(id): PathParam<DemandId>,
) -> ApiResult {
    Ok(Json(s.desk.get(&who, id).await?).into_response())
}

#[utoipa::path(post, path = "/v1/desk/demands/{id}/claim", tag = "desk", security(("bearer" = [])),
    params(("id" = String, Path, description = "Demand id (ULID)")),
    responses((status = 201, description = "Claimed", body = Claim),
        (status = 200, description = "Already claimed by my bank (nothing changed)", body = Claim),
        (status = 400, description = "id is not a ULID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not offered to my bank", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "three banks already hold it, or my bank released it", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "contention; retry", body = Problem, content_type = "application/problem+json")))]
async fn claim(
    State(s): State<DeskApi>,
    Authenticated(who): Authenticated,
    PathParam(id): PathParam<DemandId>,
) -> ApiResult {
    let outcome = s.desk.claim(&who, id).await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outcome.claim)).into_response())
}

#[utoipa::path(post, path = "/v1/desk/demands/{id}/progress", tag = "desk", security(("bearer" = [])),
    request_body = ProgressUpdate,
    params(("id" = String, Path, description = "Demand id (ULID)")),
    responses((status = 200, description = "Progress recorded", body = Claim),
        (status = 400, description = "malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no claim of mine on it", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "stage cannot follow the current one, or changed meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid update", body = Problem, content_type = "application/problem+json")))]
async fn progress(
    State(s): State<DeskApi>,
    Authenticated(who): Authenticated,
    PathParam(id): PathParam<DemandId>,
    body: ApiJson<ProgressUpdate>,
) -> ApiResult {
    Ok(Json(s.desk.progress(&who, id, body.value).await?).into_response())
}

#[utoipa::path(post, path = "/v1/desk/demands/{id}/release", tag = "desk", security(("bearer" = [])),
    params(("id" = String, Path, description = "Demand id (ULID)")),
    responses((status = 200, description = "Released; the slot is free", body = Claim),
        (status = 400, description = "id is not a ULID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no claim of mine on it", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "already decided or released", body = Problem, content_type = "application/problem+json")))]
async fn release(
    State(s): State<DeskApi>,
    Authenticated(who): Authenticated,
    PathParam(id): PathParam<DemandId>,
) -> ApiResult {
    Ok(Json(s.desk.release(&who, id).await?).into_response())
}
