//! Routes of the risk-desk function, for bank risk staff (bank JWT; `risk_admin` or
//! `loan_officer` unless noted). A bank only ever reaches its own rules, list and alerts.
//!
//! | method | path | what |
//! |---|---|---|
//! | PUT | /v1/risk/rule-set | save the rule set as a new version (`risk_admin`; 422 with paths) |
//! | GET | /v1/risk/rule-set | the newest version |
//! | GET | /v1/risk/rule-set/versions/{version} | one version |
//! | POST | /v1/risk/rule-set/dry-run | counts of a rule set (given, or the newest) on the newest snapshot |
//! | GET | /v1/risk/watch-list | watched firms |
//! | PUT / DELETE | /v1/risk/watch-list/{uscc} | watch (201; 200 if already) / unwatch (204) |
//! | POST | /v1/risk/watch-list/bulk | watch many (all valid, or 422 and nothing added) |
//! | GET | /v1/risk/alerts | alerts (`status`, `severity`, `rule_id`, `period`, `uscc`) |
//! | GET | /v1/risk/alerts/{id} | one alert |
//! | POST | /v1/risk/alerts/{id}/actions | acknowledge, verify (verdict + note), close |
//! | GET | /v1/risk/stats | per-rule hits, verdicts, false-alarm rate |
//! | GET / PUT | /v1/risk/settings | who gets alerts (PUT: `risk_admin`) |
//! | GET | /v1/risk/scans, /v1/risk/scans/{id} | scans and their tasks (a bank sees its own part) |

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use puhui_domain::Uscc;
use puhui_domain::risk::{
    AlertAction, AlertId, RiskAlert, RiskSettings, RuleSet, RuleStats, WatchEntry,
};
use puhui_domain::rules::WatchRuleDraft;
use puhui_edge::problem::Problem;
use puhui_edge::{ApiError, ApiJson, ApiQuery, Authenticated, Authenticator, PathParam};
use puhui_services::risk::{
    AlertFilter, AlertService, BulkReport, BulkUpload, DryRun, RiskPorts, RuleSetDraft,
    RuleSetService, ScanRecord, ScanReport, ScanView, WatchListService,
};
use puhui_services::{Listing, PageRequest};
use serde::Deserialize;

/// What the risk-desk routes need.
#[derive(Clone)]
pub struct RiskApi {
    /// Rule sets.
    pub rules: Arc<RuleSetService>,
    /// Watch lists.
    pub watch: Arc<WatchListService>,
    /// Alerts, stats and settings.
    pub alerts: Arc<AlertService>,
    /// Scans.
    pub scans: Arc<ScanView>,
    /// Token verification.
    pub auth: Arc<Authenticator>,
}

impl RiskApi {
    /// The routes' state over the risk ports.
    pub fn new(ports: RiskPorts, auth: Arc<Authenticator>) -> Self {
        RiskApi {
            rules: Arc::new(RuleSetService::new(ports.clone())),
            watch: Arc::new(WatchListService::new(ports.clone())),
            alerts: Arc::new(AlertService::new(ports.clone())),
            scans: Arc::new(ScanView::new(ports)),
            auth,
        }
    }
}

impl FromRef<RiskApi> for Arc<Authenticator> {
    fn from_ref(s: &RiskApi) -> Self {
        s.auth.clone()
    }
}

/// The risk-desk routes with their state.
pub fn routes(state: RiskApi) -> Router {
    Router::new()
        .route(
            "/v1/risk/rule-set",
            put(save_rule_set).get(current_rule_set),
        )
        .route(
            "/v1/risk/rule-set/versions/{version}",
            get(rule_set_version),
        )
        .route("/v1/risk/rule-set/dry-run", post(dry_run))
        .route("/v1/risk/watch-list", get(watch_list))
        .route("/v1/risk/watch-list/bulk", post(watch_bulk))
        .route("/v1/risk/watch-list/{uscc}", put(watch).delete(unwatch))
        .route("/v1/risk/alerts", get(alerts))
        .route("/v1/risk/alerts/{id}", get(alert))
        .route("/v1/risk/alerts/{id}/actions", post(act))
        .route("/v1/risk/stats", get(stats))
        .route("/v1/risk/settings", get(settings).put(save_settings))
        .route("/v1/risk/scans", get(scans))
        .route("/v1/risk/scans/{id}", get(scan))
        .with_state(state)
}

type ApiResult = Result<Response, ApiError>;

/// A dry run: the rules to try, or none for the newest saved set.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunRequest {
    /// Rules to try (as in a save); absent: the newest saved set.
    #[serde(default)]
    pub rules: Option<Vec<WatchRuleDraft>>,
}

#[utoipa::path(put, path = "/v1/risk/rule-set", tag = "risk", security(("bearer" = [])), request_body = RuleSetDraft,
    responses((status = 201, description = "Saved as the next version", body = RuleSet),
        (status = 400, description = "malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "risk_admin role missing", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "saved by someone else meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "unknown fact, operator or value type, empty all/any, too deep (with the path)", body = Problem, content_type = "application/problem+json")))]
async fn save_rule_set(
    State(s): State<RiskApi>,
    Authenticated(who): Authenticated,
    body: ApiJson<RuleSetDraft>,
) -> ApiResult {
    let set = s.rules.save(&who, body.value).await?;
    Ok((StatusCode::CREATED, Json(set)).into_response())
}

#[utoipa::path(get, path = "/v1/risk/rule-set", tag = "risk", security(("bearer" = [])),
    responses((status = 200, description = "The newest version", body = RuleSet),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "none saved yet", body = Problem, content_type = "application/problem+json")))]
async fn current_rule_set(
    State(s): State<RiskApi>,
    Authenticated(who): Authenticated,
) -> ApiResult {
    Ok(Json(s.rules.current(&who).await?).into_response())
}

#[utoipa::path(get, path = "/v1/risk/rule-set/versions/{version}", tag = "risk", security(("bearer" = [])),
    params(("version" = u64, Path, description = "Version number")),
    responses((status = 200, description = "That version", body = RuleSet),
        (status = 400, description = "not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such version", body = Problem, content_type = "application/problem+json")))]
async fn rule_set_version(
    State(s): State<RiskApi>,
    Authenticated(who): Authenticated,
    PathParam(version): PathParam<u64>,
) -> ApiResult {
    Ok(Json(s.rules.get_version(&who, version).await?).into_response())
}

#[utoipa::path(post, path = "/v1/risk/rule-set/dry-run", tag = "risk", security(("bearer" = [])), request_body = DryRunRequest,
    responses((status = 200, description = "Counts only: nothing raised or sent", body = DryRun),
        (status = 400, description = "malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no snapshot, or no rule set saved and none given", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid rules (with the path)", body = Problem, content_type = "application/problem+json")))]
async fn dry_run(
    State(s): State<RiskApi>,
    Authenticated(who): Authenticated,
    body: ApiJson<DryRunRequest>,
) -> ApiResult {
    let draft = body.value.rules.map(|rules| RuleSetDraft { rules });
    Ok(Json(s.rules.dry_run(&who, draft).await?).into_response())
}

#[utoipa::path(get, path = "/v1/risk/watch-list", tag = "risk", security(("bearer" = [])), params(PageRequest),
    responses((status = 200, description = "Watched firms, by USCC", body = Listing<WatchEntry>),
        (status = 400, description = "bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "limit or cursor invalid", body = Problem, content_type = "application/problem+json")))]
async fn watch_list(
    State(s): State<RiskApi>,
    Authenticated(who): Authenticated,
    ApiQuery(page): ApiQuery<PageRequest>,
) -> ApiResult {
    Ok(Json(s.watch.list(&who, page).await?).into_response())
}

#[utoipa::path(put, path = "/v1/risk/watch-list/{uscc}", tag = "risk", security(("bearer" = [])),
    params(("uscc" = String, Path, description = "The firm's USCC")),
    responses((status = 201, description = "Now watched", body = WatchEntry),
        (status = 200, description = "Was watched already", body = WatchEntry),
        (status = 400, description = "not a valid USCC", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json")))]
async fn watch(
    State(s): State<RiskApi>,
    Authenticated(who): Authenticated,
    PathParam(uscc): PathParam<Uscc>,
) -> ApiResult {
    let (entry, new) = s.watch.add(&who, &uscc).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(entry)).into_response())
}

#[utoipa::path(delete, path = "/v1/risk/watch-list/{uscc}", tag = "risk", security(("bearer" = [])),
    params(("uscc" = String, Path, description = "The firm's USCC")),
    responses((status = 204, description = "No longer watched (its alerts stay)"),
        (status = 400, description = "not a valid USCC", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not on the list", body = Problem, content_type = "application/problem+json")))]
async fn unwatch(
    State(s): State<RiskApi>,
    Authenticated(who): Authenticated,
    PathParam(uscc): PathParam<Uscc>,
) -> ApiResult {
    s.watch.remove(&who, &uscc).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/v1/risk/watch-list/bulk", tag = "risk", security(("bearer" = [])), request_body = BulkUpload,
    responses((status = 200, description = "What was added", body = BulkReport),
        (status = 400, description = "malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid codes (usccs[i]) or too many; nothing added", body = Problem, content_type = "application/problem+json")))]
async fn watch_bulk(
    State(s): State<RiskApi>,
    Authenticated(who): Authenticated,
    body: ApiJson<BulkUpload>,
) -> ApiResult {
    Ok(Json(s.watch.bulk(&who, body.value).await?).into_response())
}

#[utoipa::path(get, path = "/v1/risk/alerts", tag = "risk", security(("bearer" = [])), params(AlertFilter),
    responses((status = 200, description = "My alerts, newest period first", body = Listing<RiskAlert>),
        (status = 400, description = "bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "limit or cursor invalid", body = Problem, content_type = "application/problem+json")))]
async fn alerts(
    State(s): State<RiskApi>,
    Authenticated(who): Authenticated,
    ApiQuery(filter): ApiQuery<AlertFilter>,
) -> ApiResult {
    Ok(Json(s.alerts.list(&who, filter).await?).into_response())
}

#[utoipa::path(get, path = "/v1/risk/alerts/{id}", tag = "risk", security(("bearer" = [])),
    params(("id" = String, Path, description = "`<period>.<uscc>.<rule id>`")),
    responses((status = 200, description = "The alert", body = RiskAlert),
        (status = 400, description = "malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such alert for my bank", body = Problem, content_type = "application/problem+json")))]
async fn alert(
    State(s): State<RiskApi>,
    Authenticated(who): Authenticated,
    PathParam(id): PathParam<AlertId>,
) -> ApiResult {
    Ok(Json(s.alerts.get(&who, &id).await?).into_response())
}

#[utoipa::path(post, path = "/v1/risk/alerts/{id}/actions", tag = "risk", security(("bearer" = [])), request_body = AlertAction,
    params(("id" = String, Path, description = "`<period>.<uscc>.<rule id>`")),
    responses((status = 200, description = "The alert after the action", body = RiskAlert),
        (status = 400, description = "malformed id or body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such alert for my bank", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "not allowed from its status, or changed meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "note missing or too long", body = Problem, content_type = "application/problem+json")))]
async fn act(
    State(s): State<RiskApi>,
    Authenticated(who): Authenticated,
    PathParam(id): PathParam<AlertId>,
    body: ApiJson<AlertAction>,
) -> ApiResult {
    Ok(Json(s.alerts.act(&who, &id, body.value).await?).into_response())
}

#[utoipa::path(get, path = "/v1/risk/stats", tag = "risk", security(("bearer" = [])),
    responses((status = 200, description = "Per rule: alerts, verdicts, false-alarm rate", body = Vec<RuleStats>),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json")))]
async fn stats(State(s): State<RiskApi>, Authenticated(who): Authenticated) -> ApiResult {
    Ok(Json(s.alerts.stats(&who).await?).into_response())
}

#[utoipa::path(get, path = "/v1/risk/settings", tag = "risk", security(("bearer" = [])),
    responses((status = 200, description = "Who gets alerts", body = RiskSettings),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json")))]
async fn settings(State(s): State<RiskApi>, Authenticated(who): Authenticated) -> ApiResult {
    Ok(Json(s.alerts.settings(&who).await?).into_response())
}

#[utoipa::path(put, path = "/v1/risk/settings", tag = "risk", security(("bearer" = [])), request_body = RiskSettings,
    responses((status = 200, description = "Saved", body = RiskSettings),
        (status = 400, description = "malformed body or phone number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "risk_admin role missing", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "too many numbers", body = Problem, content_type = "application/problem+json")))]
async fn save_settings(
    State(s): State<RiskApi>,
    Authenticated(who): Authenticated,
    body: ApiJson<RiskSettings>,
) -> ApiResult {
    Ok(Json(s.alerts.save_settings(&who, body.value).await?).into_response())
}

#[utoipa::path(get, path = "/v1/risk/scans", tag = "risk", security(("bearer" = [])), params(PageRequest),
    responses((status = 200, description = "Scans, newest first (a bank: those that included it, with its counts)", body = Listing<ScanRecord>),
        (status = 400, description = "bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "limit or cursor invalid", body = Problem, content_type = "application/problem+json")))]
async fn scans(
    State(s): State<RiskApi>,
    Authenticated(who): Authenticated,
    ApiQuery(page): ApiQuery<PageRequest>,
) -> ApiResult {
    Ok(Json(s.scans.list(&who, page).await?).into_response())
}

#[utoipa::path(get, path = "/v1/risk/scans/{id}", tag = "risk", security(("bearer" = [])),
    params(("id" = String, Path, description = "Scan id")),
    responses((status = 200, description = "The scan and its tasks (a bank: its own)", body = ScanReport),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such scan (for my bank)", body = Problem, content_type = "application/problem+json")))]
async fn scan(
    State(s): State<RiskApi>,
    Authenticated(who): Authenticated,
    PathParam(id): PathParam<String>,
) -> ApiResult {
    Ok(Json(s.scans.get(&who, &id).await?).into_response())
}
