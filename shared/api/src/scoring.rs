//! Routes of the model-score function (bank JWT). Scoring needs `loan_officer` or
//! `risk_admin`; managing models needs `risk_admin` (a bank's own models) or `platform_admin`
//! without a bank (the platform's). A bank never sees another bank's models, jobs or results.
//!
//! | method | path | what |
//! |---|---|---|
//! | POST | /v1/scores | score one firm (under its live authorization; audited) |
//! | POST | /v1/scoring-jobs | a pre-approval job over a list of firms (202) |
//! | GET | /v1/scoring-jobs/{id} | its progress and, when complete, result links |
//! | GET | /v1/models | models the caller may use |
//! | POST | /v1/models/{name}/versions | upload a version (validated; not activated) |
//! | GET | /v1/models/{name} | the model's record (`?owner=`) |
//! | GET | /v1/models/{name}/versions | its versions (`?owner=`) |
//! | POST | /v1/models/{name}/activate | activate a version |
//! | POST | /v1/models/{name}/rollback | back to the previous active version |
//! | PUT | /v1/models/{name}/challenger | set or clear the shadow challenger |

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use puhui_domain::{ModelName, ModelOwner};
use puhui_edge::problem::Problem;
use puhui_edge::{ApiError, ApiJson, ApiQuery, Authenticated, Authenticator, PathParam};
use puhui_services::scoring::MAX_MODEL_BYTES;
use puhui_services::scoring::{
    BatchScoring, JobRequest, ModelRecord, ModelRegistry, ModelUpload, ModelVersion, ScoreRequest,
    ScoreResponse, ScoringJob, ScoringJobView, ScoringPorts, ScoringService,
};
use serde::Deserialize;

/// What the model-score routes need.
#[derive(Clone)]
pub struct ScoringApi {
    /// The registry.
    pub registry: Arc<ModelRegistry>,
    /// Single scores.
    pub scoring: Arc<ScoringService>,
    /// Batch jobs.
    pub batch: Arc<BatchScoring>,
    /// Token verification.
    pub auth: Arc<Authenticator>,
}

impl ScoringApi {
    /// The routes' state over the scoring ports (one model cache for all of them).
    pub fn new(ports: ScoringPorts, auth: Arc<Authenticator>) -> Self {
        let registry = Arc::new(ModelRegistry::new(ports.clone()));
        let scoring = Arc::new(ScoringService::new(ports.clone(), registry.clone()));
        let batch = Arc::new(BatchScoring::new(ports, registry.clone(), scoring.clone()));
        ScoringApi {
            registry,
            scoring,
            batch,
            auth,
        }
    }
}

impl FromRef<ScoringApi> for Arc<Authenticator> {
    fn from_ref(s: &ScoringApi) -> Self {
        s.auth.clone()
    }
}

/// The model-score routes with their state.
pub fn routes(state: ScoringApi) -> Router {
    Router::new()
        .route("/v1/scores", post(score))
        .route("/v1/scoring-jobs", post(submit_job))
        .route("/v1/scoring-jobs/{id}", get(job))
        .route("/v1/models", get(models))
        .route("/v1/models/{name}", get(model))
        .route(
            "/v1/models/{name}/versions",
            post(upload)
                .layer(DefaultBodyLimit::max(UPLOAD_BODY_BYTES))
                .get(versions),
        )
        .route("/v1/models/{name}/activate", post(activate))
        .route("/v1/models/{name}/rollback", post(rollback))
        .route("/v1/models/{name}/challenger", put(challenger))
        .with_state(state)
}

type ApiResult = Result<Response, ApiError>;

/// Body limit of a model upload: the largest model file, base64-encoded, and its policy.
pub const UPLOAD_BODY_BYTES: usize = MAX_MODEL_BYTES / 3 * 4 + 256 * 1024;

/// Which owner's model a read means.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OwnerQuery {
    /// `platform` or `bank:<id>`; default: the caller's bank's model of that name, else the
    /// platform's (platform staff: the platform's).
    #[param(value_type = Option<String>)]
    pub owner: Option<ModelOwner>,
}

/// A version to activate.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    /// The version.
    pub version: u64,
}

/// The challenger to set, or `null` to clear it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengerRequest {
    /// The version, or null.
    pub version: Option<u64>,
}

#[utoipa::path(post, path = "/v1/scores", tag = "scoring", security(("bearer" = [])), request_body = ScoreRequest,
    responses((status = 200, description = "The decision (audited)", body = ScoreResponse),
        (status = 400, description = "malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing, or no live authorization from the firm (the reason says which)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such model for this bank, or no profile of the firm", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the model has no active version", body = Problem, content_type = "application/problem+json")))]
async fn score(
    State(s): State<ScoringApi>,
    Authenticated(who): Authenticated,
    body: ApiJson<ScoreRequest>,
) -> ApiResult {
    Ok(Json(s.scoring.score(&who, body.value).await?).into_response())
}

#[utoipa::path(post, path = "/v1/scoring-jobs", tag = "scoring", security(("bearer" = [])), request_body = JobRequest,
    responses((status = 202, description = "Accepted: chunks queued", body = ScoringJob),
        (status = 400, description = "malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such model for this bank", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the model has no active version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "no firms, or too many", body = Problem, content_type = "application/problem+json")))]
async fn submit_job(
    State(s): State<ScoringApi>,
    Authenticated(who): Authenticated,
    body: ApiJson<JobRequest>,
) -> ApiResult {
    let job = s.batch.submit(&who, body.value).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

#[utoipa::path(get, path = "/v1/scoring-jobs/{id}", tag = "scoring", security(("bearer" = [])),
    params(("id" = String, Path, description = "Job id")),
    responses((status = 200, description = "Progress; result links once complete", body = ScoringJobView),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such job (for my bank)", body = Problem, content_type = "application/problem+json")))]
async fn job(
    State(s): State<ScoringApi>,
    Authenticated(who): Authenticated,
    PathParam(id): PathParam<String>,
) -> ApiResult {
    Ok(Json(s.batch.view(&who, &id).await?).into_response())
}

#[utoipa::path(get, path = "/v1/models", tag = "scoring", security(("bearer" = [])),
    responses((status = 200, description = "The platform's models and the caller's bank's", body = Vec<ModelRecord>),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json")))]
async fn models(State(s): State<ScoringApi>, Authenticated(who): Authenticated) -> ApiResult {
    Ok(Json(s.registry.list(&who).await?).into_response())
}

#[utoipa::path(post, path = "/v1/models/{name}/versions", tag = "scoring", security(("bearer" = [])),
    params(("name" = String, Path, description = "Model name")), request_body = ModelUpload,
    responses((status = 201, description = "Stored as the next version (not active yet)", body = ModelVersion),
        (status = 400, description = "malformed body or name", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "risk_admin (bank) or platform_admin (platform) missing", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "another version was uploaded meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "the file, policy or feature map is invalid (each problem with its field)", body = Problem, content_type = "application/problem+json")))]
async fn upload(
    State(s): State<ScoringApi>,
    Authenticated(who): Authenticated,
    PathParam(name): PathParam<ModelName>,
    body: ApiJson<ModelUpload>,
) -> ApiResult {
    let v = s.registry.upload(&who, &name, body.value).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn owner_of(
    s: &ScoringApi,
    who: &puhui_domain::Principal,
    name: &ModelName,
    owner: Option<ModelOwner>,
) -> Result<ModelOwner, ApiError> {
    if let Some(o) = owner {
        return Ok(o);
    }
    match &who.bank_id {
        Some(bank) => {
            let own = ModelOwner::Bank(bank.clone());
            if s.registry.get(who, &own, name).await.is_ok() {
                Ok(own)
            } else {
                Ok(ModelOwner::Platform)
            }
        }
        None => Ok(ModelOwner::Platform),
    }
}

#[utoipa::path(get, path = "/v1/models/{name}", tag = "scoring", security(("bearer" = [])),
    params(("name" = String, Path, description = "Model name"), OwnerQuery),
    responses((status = 200, description = "Active, challenger, history", body = ModelRecord),
        (status = 400, description = "bad name or owner", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such model visible to the caller", body = Problem, content_type = "application/problem+json")))]
async fn model(
    State(s): State<ScoringApi>,
    Authenticated(who): Authenticated,
    PathParam(name): PathParam<ModelName>,
    ApiQuery(q): ApiQuery<OwnerQuery>,
) -> ApiResult {
    let owner = owner_of(&s, &who, &name, q.owner).await?;
    Ok(Json(s.registry.get(&who, &owner, &name).await?).into_response())
}

#[utoipa::path(get, path = "/v1/models/{name}/versions", tag = "scoring", security(("bearer" = [])),
    params(("name" = String, Path, description = "Model name"), OwnerQuery),
    responses((status = 200, description = "Every version, oldest first", body = Vec<ModelVersion>),
        (status = 400, description = "bad name or owner", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such model visible to the caller", body = Problem, content_type = "application/problem+json")))]
async fn versions(
    State(s): State<ScoringApi>,
    Authenticated(who): Authenticated,
    PathParam(name): PathParam<ModelName>,
    ApiQuery(q): ApiQuery<OwnerQuery>,
) -> ApiResult {
    let owner = owner_of(&s, &who, &name, q.owner).await?;
    Ok(Json(s.registry.versions(&who, &owner, &name).await?).into_response())
}

#[utoipa::path(post, path = "/v1/models/{name}/activate", tag = "scoring", security(("bearer" = [])),
    params(("name" = String, Path, description = "Model name")), request_body = ActivateRequest,
    responses((status = 200, description = "Now active", body = ModelRecord),
        (status = 400, description = "malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such model or version", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "changed meanwhile", body = Problem, content_type = "application/problem+json")))]
async fn activate(
    State(s): State<ScoringApi>,
    Authenticated(who): Authenticated,
    PathParam(name): PathParam<ModelName>,
    body: ApiJson<ActivateRequest>,
) -> ApiResult {
    Ok(Json(s.registry.activate(&who, &name, body.value.version).await?).into_response())
}

#[utoipa::path(post, path = "/v1/models/{name}/rollback", tag = "scoring", security(("bearer" = [])),
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, description = "The previous version is active again", body = ModelRecord),
        (status = 400, description = "bad name", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such model", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "nothing to roll back to, or changed meanwhile", body = Problem, content_type = "application/problem+json")))]
async fn rollback(
    State(s): State<ScoringApi>,
    Authenticated(who): Authenticated,
    PathParam(name): PathParam<ModelName>,
) -> ApiResult {
    Ok(Json(s.registry.rollback(&who, &name).await?).into_response())
}

#[utoipa::path(put, path = "/v1/models/{name}/challenger", tag = "scoring", security(("bearer" = [])),
    params(("name" = String, Path, description = "Model name")), request_body = ChallengerRequest,
    responses((status = 200, description = "Challenger set or cleared", body = ModelRecord),
        (status = 400, description = "malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such model or version", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "changed meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "the active version cannot be the challenger", body = Problem, content_type = "application/problem+json")))]
async fn challenger(
    State(s): State<ScoringApi>,
    Authenticated(who): Authenticated,
    PathParam(name): PathParam<ModelName>,
    body: ApiJson<ChallengerRequest>,
) -> ApiResult {
    Ok(Json(
        s.registry
            .set_challenger(&who, &name, body.value.version)
            .await?,
    )
    .into_response())
}
