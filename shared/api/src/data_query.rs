//! Routes of the data-query function. Banks (bank JWT, `loan_officer` or `risk_admin`) read
//! one data interface of one firm under the firm's authorization, masked; every such query is
//! audited. Firms (applicant session) list and revoke the authorizations they gave.
//!
//! | method | path | who | what |
//! |---|---|---|---|
//! | GET | /v1/firms/{uscc}/interfaces/{interface}?purpose= | bank | the masked view (audited, quota-counted) |
//! | GET | /v1/interfaces | bank | the interface catalogue (definitions, no data) |
//! | GET | /v1/audit | bank, platform | audit records: a bank its own, platform staff all (`?bank=`) |
//! | GET | /v1/applicant/authorizations | applicant | the authorizations the applicant consented to |
//! | POST | /v1/applicant/authorizations/{id}/revoke | applicant | revoke one from now on |

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use puhui_domain::authorization::Purpose;
use puhui_domain::interfaces::Catalogue;
use puhui_domain::{AuthorizationId, Error, FieldError, Uscc};
use puhui_edge::problem::Problem;
use puhui_edge::{
    ApiError, ApiQuery, ApplicantSession, Authenticated, Authenticator, PathParam, Sessions,
};
use puhui_ports::{Clock, IdGenerator, Table};
use puhui_services::Listing;
use puhui_services::audit::AuditRecord;
use puhui_services::data_query::{
    ApplicantAuthorization, AuditFilter, DataQueryConfig, DataQueryService, DataView,
};
use serde::Deserialize;

/// What the data-query routes need.
#[derive(Clone)]
pub struct DataQueryApi {
    /// Queries, audit listing, the firm's authorizations.
    pub service: Arc<DataQueryService>,
    /// Bank-token verification.
    pub auth: Arc<Authenticator>,
    /// Applicant sessions.
    pub sessions: Arc<Sessions>,
}

impl DataQueryApi {
    /// The routes' state over the table.
    pub fn new(
        table: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        config: DataQueryConfig,
        auth: Arc<Authenticator>,
        sessions: Arc<Sessions>,
    ) -> Self {
        DataQueryApi {
            service: Arc::new(DataQueryService::new(table, clock, ids, config)),
            auth,
            sessions,
        }
    }
}

impl FromRef<DataQueryApi> for Arc<Authenticator> {
    fn from_ref(s: &DataQueryApi) -> Self {
        s.auth.clone()
    }
}

impl FromRef<DataQueryApi> for Arc<Sessions> {
    fn from_ref(s: &DataQueryApi) -> Self {
        s.sessions.clone()
    }
}

/// The data-query routes with their state.
pub fn routes(state: DataQueryApi) -> Router {
    Router::new()
        .route("/v1/firms/{uscc}/interfaces/{interface}", get(query))
        .route("/v1/interfaces", get(catalogue))
        .route("/v1/audit", get(audit))
        .route("/v1/applicant/authorizations", get(my_authorizations))
        .route("/v1/applicant/authorizations/{id}/revoke", post(revoke))
        .with_state(state)
}

type ApiResult = Result<Response, ApiError>;

/// Longest interface id accepted in a path.
const MAX_INTERFACE_ID: usize = 64;

/// The firm and interface of a query path; a bad USCC or a malformed interface id is 400
/// naming the parameter (an unknown but well-formed id is the service's 404, audited).
#[derive(Debug)]
pub struct FirmInterface {
    /// The firm.
    pub uscc: Uscc,
    /// The interface id.
    pub interface: String,
}

impl<S: Send + Sync> FromRequestParts<S> for FirmInterface {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let bad = |field: &str, message: String| {
            ApiError(Error::Malformed {
                detail: format!("path parameter {field} is invalid: {message}"),
                errors: vec![FieldError::new(
                    format!("path.{field}"),
                    "invalid_format",
                    message,
                )],
            })
        };
        let Path((uscc, interface)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| bad("path", e.to_string()))?;
        let uscc = Uscc::parse(&uscc).map_err(|e| bad("uscc", e.to_string()))?;
        let well_formed = !interface.is_empty()
            && interface.len() <= MAX_INTERFACE_ID
            && interface
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !well_formed {
            return Err(bad(
                "interface",
                format!("interface ids are snake_case, at most {MAX_INTERFACE_ID} characters"),
            ));
        }
        Ok(FirmInterface { uscc, interface })
    }
}

/// Why the bank asks.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PurposeQuery {
    /// The purpose (`pre_loan`, `in_loan`, `post_loan`, `marketing`); the firm's authorization
    /// must cover it.
    pub purpose: Purpose,
}

#[utoipa::path(get, path = "/v1/firms/{uscc}/interfaces/{interface}", tag = "data", security(("bearer" = [])),
    params(("uscc" = String, Path, description = "The firm's unified social credit code"),
           ("interface" = String, Path, description = "Interface id (see GET /v1/interfaces)"),
           PurposeQuery),
    responses((status = 200, description = "The masked view with each field's source and as-of date (audited)", body = DataView),
        (status = 400, description = "bad USCC, interface id or purpose", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing, no live authorization (the detail says which: none, expired, revoked, out of scope, purpose), or the daily quota is used up", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such interface, or no profile data of the firm for it", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "storage busy; retry", body = Problem, content_type = "application/problem+json")))]
async fn query(
    State(s): State<DataQueryApi>,
    Authenticated(who): Authenticated,
    path: FirmInterface,
    ApiQuery(q): ApiQuery<PurposeQuery>,
) -> ApiResult {
    let view = s
        .service
        .query(&who, &path.uscc, &path.interface, q.purpose)
        .await?;
    Ok(Json(view).into_response())
}

#[utoipa::path(get, path = "/v1/interfaces", tag = "data", security(("bearer" = [])),
    responses((status = 200, description = "Every interface: fields, sensitivity classes and treatments (no firm data)", body = Catalogue),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json")))]
async fn catalogue(State(s): State<DataQueryApi>, Authenticated(_who): Authenticated) -> ApiResult {
    Ok(Json(s.service.catalogue()).into_response())
}

#[utoipa::path(get, path = "/v1/audit", tag = "data", security(("bearer" = [])),
    params(AuditFilter),
    responses((status = 200, description = "Audit records, newest first", body = Listing<AuditRecord>),
        (status = 400, description = "bad page size, cursor or bank", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing, or another bank's records asked for", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "page size out of range", body = Problem, content_type = "application/problem+json")))]
async fn audit(
    State(s): State<DataQueryApi>,
    Authenticated(who): Authenticated,
    ApiQuery(filter): ApiQuery<AuditFilter>,
) -> ApiResult {
    Ok(Json(s.service.audit(&who, filter).await?).into_response())
}

#[utoipa::path(get, path = "/v1/applicant/authorizations", tag = "applicant", security(("applicant_session" = [])),
    responses((status = 200, description = "The authorizations the applicant consented to, newest first", body = Vec<ApplicantAuthorization>),
        (status = 401, description = "no valid session", body = Problem, content_type = "application/problem+json")))]
async fn my_authorizations(
    State(s): State<DataQueryApi>,
    ApplicantSession(who): ApplicantSession,
) -> ApiResult {
    Ok(Json(s.service.applicant_authorizations(&who).await?).into_response())
}

#[utoipa::path(post, path = "/v1/applicant/authorizations/{id}/revoke", tag = "applicant", security(("applicant_session" = [])),
    params(("id" = String, Path, description = "Authorization id")),
    responses((status = 200, description = "Revoked: the bank's queries are refused from now on (a repeat keeps the first instant)", body = ApplicantAuthorization),
        (status = 400, description = "bad id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid session", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such authorization consented by this applicant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "changed meanwhile; retry", body = Problem, content_type = "application/problem+json")))]
async fn revoke(
    State(s): State<DataQueryApi>,
    ApplicantSession(who): ApplicantSession,
    PathParam(id): PathParam<AuthorizationId>,
) -> ApiResult {
    Ok(Json(s.service.revoke_for_applicant(&who, id).await?).into_response())
}
