//! Puhui's HTTP surface: one router per capability, each a thin layer that extracts typed input,
//! calls a service and shapes the response. [`finish`] adds what every deployment shares
//! (body limit, problem+json fallbacks, request logging), so a Lambda and the local runner
//! serve exactly the same routes.

pub mod products;

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
