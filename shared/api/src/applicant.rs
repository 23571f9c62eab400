//! Routes of the scan-submit function, called by the WeChat mini-program.
//!
//! | method | path | who | what |
//! |---|---|---|---|
//! | POST | /v1/applicant/login | anyone | exchange `wx.login` (and phone) codes for a session token |
//! | POST | /v1/applicant/phone | applicant | verify the phone through WeChat's phone-number exchange |
//! | GET | /v1/loan-codes/{scene} | anyone | what a scanned loan code offers |
//! | POST | /v1/applicant/demands | applicant | submit a demand (idempotent by `Idempotency-Key` or payload) |
//! | GET | /v1/applicant/demands | applicant | my demands and their progress |
//! | GET | /v1/applicant/demands/{id} | applicant | one of my demands |

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use puhui_domain::{DemandId, Error, LoanCodeId, Submission};
use puhui_edge::idempotency::StoredResponse;
use puhui_edge::problem::Problem;
use puhui_edge::{ApiError, ApiJson, ApiQuery, ApplicantSession, Idempotency, PathParam, Sessions};
use puhui_services::financing::{
    ApplicantService, DemandService, DemandView, FinancingPorts, LoanCodeService, LoanCodeView,
};
use puhui_services::{Listing, PageRequest};
use serde::{Deserialize, Serialize};

/// What the applicant routes need.
#[derive(Clone)]
pub struct ApplicantApi {
    /// Login and phone verification.
    pub applicants: Arc<ApplicantService>,
    /// Submissions and the applicant's demands.
    pub demands: Arc<DemandService>,
    /// Loan-code pages.
    pub codes: Arc<LoanCodeService>,
    /// Session tokens.
    pub sessions: Arc<Sessions>,
    /// Replay of retried submissions.
    pub idempotency: Arc<Idempotency>,
}

impl ApplicantApi {
    /// The routes' state over the financing ports, the WeChat exchange and the session keys.
    pub fn new(
        ports: FinancingPorts,
        wechat: Arc<dyn puhui_ports::WeChatIdentity>,
        sessions: Arc<Sessions>,
    ) -> Self {
        ApplicantApi {
            applicants: Arc::new(ApplicantService::new(ports.clone(), wechat)),
            demands: Arc::new(DemandService::new(ports.clone())),
            codes: Arc::new(LoanCodeService::new(ports.clone())),
            idempotency: Arc::new(Idempotency::new(ports.table.clone(), ports.clock.clone())),
            sessions,
        }
    }
}

impl FromRef<ApplicantApi> for Arc<Sessions> {
    fn from_ref(s: &ApplicantApi) -> Self {
        s.sessions.clone()
    }
}

/// The scan-submit routes with their state.
pub fn routes(state: ApplicantApi) -> Router {
    Router::new()
        .route("/v1/applicant/login", post(login))
        .route("/v1/applicant/phone", post(verify_phone))
        .route("/v1/loan-codes/{scene}", get(loan_code))
        .route("/v1/applicant/demands", post(submit).get(my_demands))
        .route("/v1/applicant/demands/{id}", get(my_demand))
        .with_state(state)
}

type ApiResult = Result<Response, ApiError>;

/// Codes from the mini-program.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The one-time code from `wx.login`.
    pub code: String,
    /// The one-time code from the phone-number button, if the applicant pressed it.
    #[serde(default)]
    pub phone_code: Option<String>,
}

/// A session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    /// Bearer token for the applicant routes.
    pub token: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// True if a verified phone is on record (required to submit).
    pub phone_verified: bool,
    /// The verified phone, masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[utoipa::path(post, path = "/v1/applicant/login", tag = "applicant", request_body = LoginRequest,
    responses((status = 200, description = "Session issued", body = LoginResponse),
        (status = 400, description = "malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "WeChat refused the user as high-risk", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid or used code, non-mainland phone", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "WeChat unavailable or rate-limited", body = Problem, content_type = "application/problem+json")))]
async fn login(State(s): State<ApplicantApi>, body: ApiJson<LoginRequest>) -> ApiResult {
    let req = body.value;
    let who = s
        .applicants
        .login(&req.code, req.phone_code.as_deref())
        .await?;
    let (token, expires_at) = s.sessions.issue(&who.applicant, chrono::Utc::now())?;
    Ok(Json(LoginResponse {
        token,
        expires_at,
        phone_verified: who.phone.is_some(),
        phone: who.phone.map(|p| p.masked()),
    })
    .into_response())
}

/// A phone-number button code.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneRequest {
    /// The one-time code from the phone-number button.
    pub code: String,
}

/// The verified phone.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PhoneResponse {
    /// Masked.
    pub phone: String,
}

#[utoipa::path(post, path = "/v1/applicant/phone", tag = "applicant", request_body = PhoneRequest,
    security(("applicant_session" = [])),
    responses((status = 200, description = "Phone verified", body = PhoneResponse),
        (status = 400, description = "malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid session", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid code or non-mainland phone", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "WeChat unavailable", body = Problem, content_type = "application/problem+json")))]
async fn verify_phone(
    State(s): State<ApplicantApi>,
    ApplicantSession(who): ApplicantSession,
    body: ApiJson<PhoneRequest>,
) -> ApiResult {
    let phone = s.applicants.verify_phone(&who, &body.value.code).await?;
    Ok(Json(PhoneResponse {
        phone: phone.masked(),
    })
    .into_response())
}

#[utoipa::path(get, path = "/v1/loan-codes/{scene}", tag = "applicant",
    params(("scene" = String, Path, description = "The QR scene (loan code id)")),
    responses((status = 200, description = "The code's issuer, validity and products", body = LoanCodeView),
        (status = 400, description = "not a valid scene", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such loan code", body = Problem, content_type = "application/problem+json")))]
async fn loan_code(
    State(s): State<ApplicantApi>,
    PathParam(scene): PathParam<LoanCodeId>,
) -> ApiResult {
    Ok(Json(s.codes.resolve(&scene).await?).into_response())
}

#[utoipa::path(post, path = "/v1/applicant/demands", tag = "applicant", request_body = Submission,
    security(("applicant_session" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe; without it the payload is the key")),
    responses((status = 201, description = "Demand recorded and queued for matching (or replayed: `Idempotent-Replayed: true`)", body = DemandView),
        (status = 400, description = "malformed body or header", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid session", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "same key in progress", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid field, unknown or expired loan code, phone not verified, consent missing", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "storage unavailable", body = Problem, content_type = "application/problem+json")))]
async fn submit(
    State(s): State<ApplicantApi>,
    ApplicantSession(who): ApplicantSession,
    headers: HeaderMap,
    body: ApiJson<Submission>,
) -> ApiResult {
    let key = puhui_edge::idempotency::key_header(&headers);
    let scope = format!("applicant:{who}:submit");
    let outcome = s
        .idempotency
        .run(&scope, key, &body.raw, || async {
            let d = s.demands.submit(&who, body.value).await?;
            let id = d.id;
            // The demand just written is at hand: no need to read it back.
            let view = s.demands.view(d).await?;
            let json = serde_json::to_string(&view).map_err(|e| Error::Internal(e.to_string()))?;
            Ok(StoredResponse {
                status: StatusCode::CREATED.as_u16(),
                headers: vec![("location".into(), format!("/v1/applicant/demands/{id}"))],
                body: json,
            })
        })
        .await?;
    Ok(outcome.into_response())
}

#[utoipa::path(get, path = "/v1/applicant/demands", tag = "applicant", security(("applicant_session" = [])),
    params(PageRequest),
    responses((status = 200, description = "My demands, newest first, with each bank's progress", body = Listing<DemandView>),
        (status = 400, description = "bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid session", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "limit or cursor invalid", body = Problem, content_type = "application/problem+json")))]
async fn my_demands(
    State(s): State<ApplicantApi>,
    ApplicantSession(who): ApplicantSession,
    ApiQuery(page): ApiQuery<PageRequest>,
) -> ApiResult {
    Ok(Json(s.demands.list_own(&who, page).await?).into_response())
}

#[utoipa::path(get, path = "/v1/applicant/demands/{id}", tag = "applicant", security(("applicant_session" = [])),
    params(("id" = String, Path, description = "Demand id (ULID)")),
    responses((status = 200, description = "The demand and each bank's progress", body = DemandView),
        (status = 400, description = "id is not a ULID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid session", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such demand of mine", body = Problem, content_type = "application/problem+json")))]
async fn my_demand(
    State(s): State<ApplicantApi>,
    ApplicantSession(who): ApplicantSession,
    PathParam(id): PathParam<DemandId>,
) -> ApiResult {
    Ok(Json(s.demands.get_own(&who, id).await?).into_response())
}
