//! Routes of the daily data-quality reports, mounted on the data-query function (a table read;
//! the data-quality Lambda itself runs on a schedule and serves no HTTP).
//!
//! | method | path | who | what |
//! |---|---|---|---|
//! | GET | /v1/data-quality/reports/{date} | platform_admin | the day's report: counts per rule and source, masked examples, trend, alerts |

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use puhui_edge::problem::Problem;
use puhui_edge::{ApiError, Authenticated, Authenticator, PathParam};
use puhui_ports::Table;
use puhui_services::quality::DailyReport;

/// What the data-quality routes need.
#[derive(Clone)]
pub struct QualityApi {
    /// Where the reports are stored.
    pub table: Arc<dyn Table>,
    /// Token verification.
    pub auth: Arc<Authenticator>,
}

impl QualityApi {
    /// The routes' state over the table.
    pub fn new(table: Arc<dyn Table>, auth: Arc<Authenticator>) -> Self {
        QualityApi { table, auth }
    }
}

impl FromRef<QualityApi> for Arc<Authenticator> {
    fn from_ref(s: &QualityApi) -> Self {
        s.auth.clone()
    }
}

/// The data-quality routes with their state.
pub fn routes(state: QualityApi) -> Router {
    Router::new()
        .route("/v1/data-quality/reports/{date}", get(report))
        .with_state(state)
}

#[utoipa::path(get, path = "/v1/data-quality/reports/{date}", tag = "data-quality", security(("bearer" = [])),
    params(("date" = String, Path, description = "The day, YYYY-MM-DD")),
    responses((status = 200, description = "The day's report", body = DailyReport),
        (status = 400, description = "malformed date", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "not a platform administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no report for the day (the job has not run for it)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "storage unavailable", body = Problem, content_type = "application/problem+json")))]
async fn report(
    State(s): State<QualityApi>,
    Authenticated(who): Authenticated,
    PathParam(date): PathParam<NaiveDate>,
) -> Result<Response, ApiError> {
    let report = puhui_services::quality::report(s.table.as_ref(), &who, date).await?;
    Ok(Json(report).into_response())
}
