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
//! | POST | /v1/applicant/authorizations | applicant (the firm's legal representative) | authorize a bank directly |
//! | POST | /v1/applicant/authorizations/{id}/revoke | applicant | revoke one from now on |

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use puhui_domain::authorization::Purpose;
use puhui_domain::interfaces::Catalogue;
use puhui_domain::{AuthorizationId, Error, FieldError, Uscc};
use puhui_edge::problem::Problem;
use puhui_edge::{
    ApiError, ApiJson, ApiQuery, ApplicantSession, Authenticated, Authenticator, PathParam,
    Sessions,
};
use puhui_ports::{Clock, IdGenerator, Table};
use puhui_services::Listing;
use puhui_services::audit::AuditRecord;
use puhui_services::data_query::{
    ApplicantAuthorization, AuditFilter, DataQueryConfig, DataQueryService, DataView,
    DirectAuthorization,
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
        .route(
            "/v1/applicant/authorizations",
            get(my_authorizations).post(grant),
        )
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
        (status = 403, description = "role missing, or no live authorization (the detail says which: none, expired, revoked, out of scope, purpose)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such interface, or no profile data of the firm for it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "the bank's daily quota is used up (type /problems/quota-exhausted/data-query-daily); Retry-After gives the seconds to the next business day (midnight Asia/Shanghai)", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until the quota refills"))),
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
        (status = 400, description = "bad bank id or unknown parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing, or another bank's records asked for", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "page size out of range, or a cursor that is not this listing's", body = Problem, content_type = "application/problem+json")))]
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

#[utoipa::path(post, path = "/v1/applicant/authorizations", tag = "applicant", security(("applicant_session" = [])),
    request_body = DirectAuthorization,
    responses((status = 201, description = "Granted from now until valid_until; evidence: the applicant, method legal_rep_direct, the consent text version, the time. Listed and revocable like a claim's", body = ApplicantAuthorization),
        (status = 400, description = "body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "the applicant is not the firm's legal representative (its verified phone is not the one in the firm's registration), has no verified phone, or the firm has no registration on record", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "bad USCC or bank, unknown or repeated interface or purpose, validity in the past or over a year, bad consent text version (errors[] name each field)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "storage busy; retry", body = Problem, content_type = "application/problem+json")))]
async fn grant(
    State(s): State<DataQueryApi>,
    ApplicantSession(who): ApplicantSession,
    body: ApiJson<DirectAuthorization>,
) -> ApiResult {
    let granted = s.service.grant_for_applicant(&who, body.value).await?;
    Ok((StatusCode::CREATED, Json(granted)).into_response())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use puhui_edge::AuthConfig;
    use puhui_edge::auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER};
    use puhui_embedded::SqliteTable;
    use puhui_ports::SystemClock;
    use puhui_samplekit::tokens::DevIssuer;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    const FIRM: &str = "91350100M000100Y43";

    fn app(issuer: &DevIssuer) -> Router {
        app_with(issuer, DataQueryConfig::default()).0
    }

    /// The data-query and screening routes over a fresh embedded backend, with the table (to
    /// seed) and the applicant sessions (to sign in).
    fn app_with(
        issuer: &DevIssuer,
        config: DataQueryConfig,
    ) -> (Router, Arc<dyn Table>, Arc<Sessions>) {
        let dir = std::env::temp_dir().join(format!("puhui-dq-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let table: Arc<dyn Table> = Arc::new(SqliteTable::open(dir.join("t.db")).unwrap());
        let sessions =
            Arc::new(Sessions::new(&[9u8; 32], std::time::Duration::from_secs(600)).unwrap());
        let auth = Arc::new(
            Authenticator::new(AuthConfig {
                issuer: DEFAULT_ISSUER.into(),
                audience: DEFAULT_AUDIENCE.into(),
                algorithm: jsonwebtoken::Algorithm::ES256,
                jwks: serde_json::from_str(&issuer.jwks_json()).unwrap(),
            })
            .unwrap(),
        );
        let ids = Arc::new(puhui_ports::UlidGenerator::default());
        let state = DataQueryApi::new(
            table.clone(),
            Arc::new(SystemClock),
            ids.clone(),
            config,
            auth.clone(),
            sessions.clone(),
        );
        let blobs = Arc::new(puhui_embedded::LocalBlobStore::new(
            dir.join("blobs"),
            "http://127.0.0.1:1/blobs".into(),
            vec![7u8; 32],
            Arc::new(SystemClock),
        ));
        let screening = crate::screening::ScreeningApi::new(
            table.clone(),
            blobs,
            Arc::new(SystemClock),
            ids,
            auth,
        );
        let app = crate::finish(
            routes(state).merge(crate::screening::routes(screening)),
            16 * 1024,
        );
        (app, table, sessions)
    }

    async fn send(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMapOf, Value) {
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    type HeaderMapOf = axum::http::HeaderMap;

    fn post_json(uri: &str, auth: &str, body: Value) -> Request<Body> {
        Request::post(uri)
            .header("authorization", format!("Bearer {auth}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    }

    #[tokio::test]
    async fn screening_refuses_unknown_filters_and_waits_for_a_snapshot() {
        let issuer = DevIssuer::generate().unwrap();
        let (app, _, _) = app_with(&issuer, DataQueryConfig::default());
        let officer = issuer
            .bank_token("u1", "nbcb", &["loan_officer"], 600)
            .unwrap();
        let cases = [
            (
                json!({"filters": {"revenue_band": {"min": 1}}}),
                "filters.revenue_band",
            ),
            (
                json!({"filters": {"industries": ["C1"]}}),
                "filters.industries[0]",
            ),
            (
                json!({"filters": {"industries": ["C13", "manufacturing"]}}),
                "filters.industries[1]",
            ),
            (
                json!({"filters": {"years_in_business": {"min": 9, "max": 3}}}),
                "filters.years_in_business.min",
            ),
            (
                json!({"filters": {"years_in_business": {"min": -2}}}),
                "filters.years_in_business",
            ),
            (
                json!({"filters": {"years_in_business": {"min": "ten"}}}),
                "filters.years_in_business.min",
            ),
            (
                json!({"filters": {"tax_credit_grades": ["Z"]}}),
                "filters.tax_credit_grades[0]",
            ),
            (
                json!({"filters": {"regions": ["330203"]}, "limit": 500}),
                "limit",
            ),
            (json!({"filters": {}}), "filters"),
        ];
        for (body, field) in cases {
            let (status, headers, problem) =
                send(&app, post_json("/v1/screening", &officer, body)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
            assert_eq!(
                headers["content-type"], "application/problem+json",
                "{problem}"
            );
            assert_eq!(problem["errors"][0]["field"], json!(field), "{problem}");
        }
        let ok = json!({"filters": {"regions": ["330203"]}});
        let (status, _, problem) =
            send(&app, post_json("/v1/screening", &officer, ok.clone())).await;
        assert_eq!(status, StatusCode::CONFLICT, "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("snapshot"));
        let risk = issuer
            .bank_token("u2", "nbcb", &["risk_admin"], 600)
            .unwrap();
        let (status, _, _) = send(&app, post_json("/v1/screening", &risk, ok)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn a_used_up_quota_is_429_with_retry_after() {
        let issuer = DevIssuer::generate().unwrap();
        let nbcb = puhui_domain::BankId::parse("nbcb").unwrap();
        let config = DataQueryConfig {
            daily_quota: 10,
            bank_quotas: [(nbcb.clone(), 0)].into(),
        };
        let (app, table, _) = app_with(&issuer, config);
        let now = chrono::Utc::now();
        // A firm with data to serve: only a query that would be served counts.
        let uscc = Uscc::parse(FIRM).unwrap();
        let fields = [(
            "tax_paid_12m".to_owned(),
            puhui_domain::interfaces::ProfileField {
                value: json!(2_000_000),
                source: "tax".into(),
                as_of: now.date_naive(),
            },
        )]
        .into();
        let item = puhui_services::profiles::category_item(
            &uscc,
            puhui_domain::ProfileCategory::Operating,
            &fields,
        )
        .unwrap();
        table.put(item, None).await.unwrap();
        puhui_services::authorizations::Authorizations::new(table, Arc::new(SystemClock))
            .grant(&puhui_domain::Authorization {
                id: AuthorizationId(ulid::Ulid::new()),
                uscc: Uscc::parse(FIRM).unwrap(),
                bank_id: nbcb,
                scope: vec!["tax_summary".into()],
                purposes: vec![Purpose::PreLoan],
                valid_from: now - chrono::Duration::hours(1),
                valid_until: now + chrono::Duration::days(1),
                evidence: puhui_domain::authorization::ConsentEvidence {
                    consented_by: "rep".into(),
                    method: "counter".into(),
                    text_version: "v1".into(),
                    at: now,
                },
                revoked_at: None,
            })
            .await
            .unwrap();
        let officer = issuer
            .bank_token("u1", "nbcb", &["loan_officer"], 600)
            .unwrap();
        let req = Request::get(format!(
            "/v1/firms/{FIRM}/interfaces/tax_summary?purpose=pre_loan"
        ))
        .header("authorization", format!("Bearer {officer}"))
        .body(Body::empty())
        .unwrap();
        let (status, headers, problem) = send(&app, req).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem}");
        assert_eq!(
            problem["type"],
            json!("/problems/quota-exhausted/data-query-daily")
        );
        let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert_eq!(
            retry,
            puhui_domain::time::secs_to_next_business_day(chrono::Utc::now()),
            "seconds to the next midnight in Shanghai"
        );
    }

    #[tokio::test]
    async fn a_direct_authorization_needs_a_session_and_names_bad_fields() {
        let issuer = DevIssuer::generate().unwrap();
        let (app, _, sessions) = app_with(&issuer, DataQueryConfig::default());
        let body = json!({
            "uscc": FIRM, "bank": "nbcb", "interfaces": ["tax_summary"], "purposes": ["pre_loan"],
            "valid_until": chrono::Utc::now() + chrono::Duration::days(30),
            "consent_text_version": "direct-v1"
        });
        let bank = issuer
            .bank_token("u1", "nbcb", &["loan_officer"], 600)
            .unwrap();
        let (status, _, _) = send(
            &app,
            post_json("/v1/applicant/authorizations", &bank, body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (session, _) = sessions
            .issue(
                &puhui_domain::ApplicantId("app-1".into()),
                chrono::Utc::now(),
            )
            .unwrap();
        let mut bad = body.clone();
        bad["purposes"] = json!(["gossip"]);
        let (status, _, problem) = send(
            &app,
            post_json("/v1/applicant/authorizations", &session, bad),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["errors"][0]["field"], json!("purposes[0]"));
        let mut bad = body.clone();
        bad["interfaces"] = json!(["gossip"]);
        let (status, _, problem) = send(
            &app,
            post_json("/v1/applicant/authorizations", &session, bad),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["errors"][0]["field"], json!("interfaces[0]"));
        // Well-formed, but this applicant has no verified phone: not recognised as the legal
        // representative.
        let (status, _, problem) = send(
            &app,
            post_json("/v1/applicant/authorizations", &session, body),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("verify your phone")
        );
    }

    async fn get(app: &Router, uri: &str, token: &str) -> (StatusCode, String, Value) {
        let req = Request::get(uri)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            ct,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn bad_input_and_refusals_are_problems_naming_the_cause() {
        let issuer = DevIssuer::generate().unwrap();
        let app = app(&issuer);
        let officer = issuer
            .bank_token("u1", "nbcb", &["loan_officer"], 600)
            .unwrap();
        let ok_path = format!("/v1/firms/{FIRM}/interfaces/tax_summary?purpose=pre_loan");
        // A token from another issuer is not a caller.
        let forged = DevIssuer::generate()
            .unwrap()
            .bank_token("u1", "nbcb", &["loan_officer"], 600)
            .unwrap();
        assert_eq!(
            get(&app, &ok_path, &forged).await.0,
            StatusCode::UNAUTHORIZED
        );
        let cases = [
            (
                "/v1/firms/91350100M000100Y44/interfaces/tax_summary?purpose=pre_loan".to_string(),
                StatusCode::BAD_REQUEST,
                "path.uscc",
            ),
            (
                format!("/v1/firms/{FIRM}/interfaces/Tax-Summary?purpose=pre_loan"),
                StatusCode::BAD_REQUEST,
                "path.interface",
            ),
            (
                format!("/v1/firms/{FIRM}/interfaces/tax_summary"),
                StatusCode::BAD_REQUEST,
                "query.purpose",
            ),
            (
                format!("/v1/firms/{FIRM}/interfaces/tax_summary?purpose=gossip"),
                StatusCode::BAD_REQUEST,
                "query.purpose",
            ),
        ];
        for (uri, status, field) in cases {
            let (got, ct, body) = get(&app, &uri, &officer).await;
            assert_eq!(got, status, "{uri}: {body}");
            assert_eq!(ct, "application/problem+json");
            assert!(
                body["errors"][0]["field"]
                    .as_str()
                    .unwrap()
                    .starts_with(field),
                "{body}"
            );
        }
        // Refusals: no authorization (403, saying so), unknown interface (404).
        let (status, _, body) = get(&app, &ok_path, &officer).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(
            body["detail"].as_str().unwrap().contains("not authorized"),
            "{body}"
        );
        let unknown = format!("/v1/firms/{FIRM}/interfaces/no_such_view?purpose=pre_loan");
        assert_eq!(get(&app, &unknown, &officer).await.0, StatusCode::NOT_FOUND);
        // Both were audited on the bank's record, and only there.
        let (status, _, body) = get(&app, "/v1/audit", &officer).await;
        assert_eq!(status, StatusCode::OK);
        let reasons: Vec<&str> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["outcome"]["reason"].as_str().unwrap())
            .collect();
        assert_eq!(reasons, ["unknown_interface", "no_authorization"]);
        let other = issuer
            .bank_token("u2", "czbank", &["risk_admin"], 600)
            .unwrap();
        let (_, _, body) = get(&app, "/v1/audit", &other).await;
        assert_eq!(body["items"], serde_json::json!([]));
        assert_eq!(
            get(&app, "/v1/audit?bank=nbcb", &other).await.0,
            StatusCode::FORBIDDEN
        );
        // The catalogue: definitions only.
        let (status, _, body) = get(&app, "/v1/interfaces", &officer).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["interfaces"].as_array().unwrap().len() >= 7);
        // A bank token is not an applicant session.
        assert_eq!(
            get(&app, "/v1/applicant/authorizations", &officer).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
}
