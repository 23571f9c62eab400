//! Structured logs and metrics. Every request runs in a span carrying its request id, the
//! function name and (once authenticated) the tenant; logs are JSON lines. Personal data never
//! reaches a log line: identifiers that are personal data format themselves masked, and request
//! bodies are never logged.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

static EMF: OnceLock<&'static metrics_cloudwatch_embedded::Collector> = OnceLock::new();

/// Initialises JSON logging (level from `RUST_LOG`, default `info`). Safe to call twice.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Initialises CloudWatch embedded-metric-format output under namespace `Puhui` with the
/// function name as a dimension. Lambdas call this; the local runner does not.
pub fn init_metrics(function: &'static str) {
    let built = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace("Puhui")
        .with_dimension("function", function)
        .init();
    match built {
        Ok(collector) => {
            let _ = EMF.set(collector);
        }
        Err(e) => tracing::warn!(error = %e, "metrics disabled"),
    }
}

/// Middleware: a span per request with request id, method and route; one log line and metrics
/// per response.
pub async fn observe(req: Request, next: Next) -> Response {
    let request_id = request_id(&req);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let span = tracing::info_span!("request", request_id = %request_id, method = %req.method(), route = %route, tenant = tracing::field::Empty);
    let started = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    span.in_scope(|| tracing::info!(status, latency_ms = millis, "request done"));
    let class = match status {
        500.. => "5xx",
        400..=499 => "4xx",
        _ => "2xx",
    };
    metrics::counter!("requests", "status" => class).increment(1);
    metrics::histogram!("latency_ms").record(millis);
    if let Some(collector) = EMF.get() {
        let _ = collector
            .set_property("requestId", request_id)
            .flush(std::io::stdout());
    }
    response
}

/// The Lambda request id when running in Lambda, else the caller's `x-request-id` if it looks
/// like an id, else a fresh ULID.
fn request_id(req: &Request) -> String {
    use lambda_http::RequestExt;
    if let Some(ctx) = req.lambda_context_ref() {
        return ctx.request_id.clone();
    }
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map_or_else(|| ulid::Ulid::new().to_string(), str::to_owned)
}
