//! Puhui's HTTP surface: one router per capability, each a thin layer that extracts typed input,
//! calls a service and shapes the response. [`finish`] adds what every deployment shares
//! (body limit, problem+json fallbacks, request logging), so a Lambda and the local runner
//! serve exactly the same routes.

pub mod products;

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

/// The OpenAPI 3 document of every route, generated from the handlers' annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    products::ProductsDoc::openapi()
}

/// `GET /openapi.json`: the document, for the local runner.
pub fn openapi_routes() -> Router {
    let doc = openapi();
    Router::new().route(
        "/openapi.json",
        axum::routing::get(move || async move { axum::Json(doc) }),
    )
}
