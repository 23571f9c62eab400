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

use std::collections::BTreeMap;

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
    declare_edge_responses(&mut doc);
    open_flattened_closed_schemas(&mut doc);
    doc.info.title = "Puhui".into();
    doc.info.description = Some(
        "Credit information for small-business lending: product catalogue, loan-code financing flow, risk monitoring, credit scoring, data interfaces under the firm's authorization. \
         Money in fen, rates in basis points, errors as application/problem+json."
            .into(),
    );
    doc
}

/// Declares, on every operation, the problem responses the shared layers give whatever the
/// handler does, where the handler's annotation does not already: the extractors answer 400 to
/// an unparsable path, query, header or body, 413 to a body over the limit and 422 to a JSON
/// body of the wrong shape; the authenticators answer 401. Declared in one place so that no
/// operation's contract can miss them.
fn declare_edge_responses(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let has_body = op.request_body.is_some();
            let has_params = op.parameters.as_ref().is_some_and(|ps| {
                ps.iter().any(|p| {
                    matches!(
                        p.parameter_in,
                        ParameterIn::Path | ParameterIn::Query | ParameterIn::Header
                    )
                })
            });
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let mut add = |status: &str, description: &str| {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| problem_response(description));
            };
            if has_body || has_params {
                add(
                    "400",
                    "malformed request: unparsable path, query, header or body",
                );
            }
            if has_body {
                add("413", "body too large");
                add(
                    "422",
                    "body of the wrong shape: wrong type, missing or unknown field",
                );
            }
            if secured {
                add("401", "no valid token");
            }
        }
    }
}

fn problem_response(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            puhui_edge::problem::PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

/// utoipa renders a `#[serde(flatten)]` field as `allOf` with a reference to the flattened
/// type; if that type denies unknown fields (`additionalProperties: false`, true of it as a
/// request body), the combination rejects every field of the outer type. Such references, in
/// component schemas at any depth, are replaced by an open copy of the flattened schema.
fn open_flattened_closed_schemas(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{AdditionalProperties, Schema};
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let closed: BTreeMap<String, Schema> = components
        .schemas
        .iter()
        .filter_map(|(name, schema)| match schema {
            RefOr::T(Schema::Object(o))
                if matches!(
                    o.additional_properties.as_deref(),
                    Some(AdditionalProperties::FreeForm(false))
                ) =>
            {
                let mut open = o.clone();
                open.additional_properties = None;
                Some((name.clone(), Schema::Object(open)))
            }
            _ => None,
        })
        .collect();
    for schema in components.schemas.values_mut() {
        open_in(schema, &closed, false);
    }
}

fn open_in(
    schema: &mut utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
    closed: &BTreeMap<String, utoipa::openapi::schema::Schema>,
    flattened: bool,
) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, Schema};
    match schema {
        RefOr::Ref(r) if flattened => {
            let name = r.ref_location.trim_start_matches("#/components/schemas/");
            if let Some(open) = closed.get(name) {
                *schema = RefOr::T(open.clone());
            }
        }
        RefOr::Ref(_) => {}
        RefOr::T(Schema::AllOf(all_of)) => {
            for part in &mut all_of.items {
                open_in(part, closed, true);
            }
        }
        RefOr::T(Schema::OneOf(one_of)) => {
            for part in &mut one_of.items {
                open_in(part, closed, false);
            }
        }
        RefOr::T(Schema::AnyOf(any_of)) => {
            for part in &mut any_of.items {
                open_in(part, closed, false);
            }
        }
        RefOr::T(Schema::Array(array)) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                open_in(items, closed, false);
            }
        }
        RefOr::T(Schema::Object(object)) => {
            for property in object.properties.values_mut() {
                open_in(property, closed, false);
            }
            if let Some(AdditionalProperties::RefOr(values)) =
                object.additional_properties.as_deref_mut()
            {
                open_in(values, closed, false);
            }
        }
        RefOr::T(_) => {}
    }
}

/// `GET /openapi.json`: the document, for the local runner.
pub fn openapi_routes() -> Router {
    let doc = openapi();
    Router::new().route(
        "/openapi.json",
        axum::routing::get(move || async move { axum::Json(doc) }),
    )
}
