//! Puhui's HTTP surface: one router per capability, each a thin layer that extracts typed input,
//! calls a service and shapes the response. [`finish`] adds what every deployment shares
//! (body limit, problem+json fallbacks, request logging), so a Lambda and the local runner
//! serve exactly the same routes.

pub mod applicant;
pub mod data_export;
pub mod data_query;
pub mod desk;
pub mod events;
pub mod products;
pub mod quality;
pub mod risk;
pub mod scoring;
pub mod screening;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;

/// Adds the shared layers to a set of routes: body limit, problem+json fallbacks for unknown
/// routes and methods, and the request span/log/metrics middleware.
pub fn finish(routes: Router, max_body_bytes: usize) -> Router {
    routes
        .fallback(puhui_edge::problem::not_found)
        .method_not_allowed_fallback(puhui_edge::problem::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn(puhui_edge::observe::observe))
}

/// Declares the bearer-JWT security scheme the bank routes use.
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Declares the applicant session token the mini-program routes use.
pub struct ApplicantSessionAuth;

impl Modify for ApplicantSessionAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some("Applicant session from POST /v1/applicant/login"))
            .build();
        components.add_security_scheme("applicant_session", SecurityScheme::Http(scheme));
    }
}

/// The OpenAPI document of the financing flow (scan-submit and bank-desk).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        applicant::login, applicant::verify_phone, applicant::loan_code, applicant::submit,
        applicant::my_demands, applicant::my_demand,
        desk::create_code, desk::list_codes, desk::list, desk::get_one, desk::claim,
        desk::progress, desk::release
    ),
    modifiers(&BearerAuth, &ApplicantSessionAuth),
    tags((name = "applicant", description = "The WeChat mini-program: loan codes, login, submissions (applicant session)"),
         (name = "desk", description = "Bank staff: loan codes, offered demands, claims and progress (bank JWT)"))
)]
pub struct FinancingDoc;

/// The OpenAPI document of the risk desk.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        risk::save_rule_set, risk::current_rule_set, risk::rule_set_version, risk::dry_run,
        risk::watch_list, risk::watch, risk::unwatch, risk::watch_bulk, risk::alerts, risk::alert,
        risk::act, risk::stats, risk::settings, risk::save_settings, risk::scans, risk::scan
    ),
    modifiers(&BearerAuth),
    tags((name = "risk", description = "Bank risk staff: rule sets, watch lists, alerts, scans (bank JWT)"))
)]
pub struct RiskDoc;

/// The OpenAPI document of the model-score function.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        scoring::score, scoring::submit_job, scoring::job, scoring::models, scoring::upload,
        scoring::model, scoring::versions, scoring::activate, scoring::rollback,
        scoring::challenger
    ),
    modifiers(&BearerAuth),
    tags((name = "scoring", description = "Credit models: scores under the firm's authorization, pre-approval jobs, the model registry (bank JWT)"))
)]
pub struct ScoringDoc;

/// The OpenAPI document of the data-query function.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        data_query::query, data_query::catalogue, data_query::audit,
        data_query::my_authorizations, data_query::grant, data_query::revoke,
        screening::screen, data_export::submit, data_export::job
    ),
    modifiers(&BearerAuth, &ApplicantSessionAuth),
    tags((name = "data", description = "Data interfaces: masked views of a firm under its authorization, screening by indicator filters (public identity only), bulk exports of the authorized portfolio, the catalogue, the audit of every query (bank JWT)"))
)]
pub struct DataQueryDoc;

/// The OpenAPI document of the data-quality reports.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(quality::report),
    modifiers(&BearerAuth),
    tags((name = "data-quality", description = "Platform administrators: the daily data-quality report of the ingested sources (bank JWT with platform_admin)"))
)]
pub struct QualityDoc;

/// The OpenAPI 3 document of every route, generated from the handlers' annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = products::ProductsDoc::openapi();
    doc.merge(FinancingDoc::openapi());
    doc.merge(RiskDoc::openapi());
    doc.merge(ScoringDoc::openapi());
    doc.merge(DataQueryDoc::openapi());
    doc.merge(QualityDoc::openapi());
    doc.info.title = "Puhui".into();
    doc.info.description = Some(
        "Credit information for small-business lending: product catalogue, loan-code financing flow, risk monitoring, credit scoring, data interfaces under the firm's authorization. \
         Money in fen, rates in basis points, errors as application/problem+json."
            .into(),
    );
    doc
}

/// `GET /openapi.json`: the document, for the local runner.
pub fn openapi_routes() -> Router {
    let doc = openapi();
    Router::new().route(
        "/openapi.json",
        axum::routing::get(move || async move { axum::Json(doc) }),
    )
}
