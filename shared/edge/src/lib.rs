//! The edge of every Puhui function: where requests and queue records come in and typed results
//! go out. Errors become RFC 9457 `application/problem+json` here and nowhere else; tokens are
//! verified here; idempotency, SQS batch handling, structured logs and CloudWatch EMF metrics
//! are provided here in the style of Powertools for AWS Lambda.

pub mod auth;
pub mod batch;
pub mod extract;
pub mod idempotency;
pub mod observe;
pub mod problem;
pub mod session;

pub use auth::{AuthConfig, Authenticated, Authenticator};
pub use extract::{ApiJson, ApiQuery, PathParam};
pub use idempotency::Idempotency;
pub use problem::ApiError;
pub use session::{ApplicantSession, Sessions};

/// Default largest request body accepted (64 KiB), overridable by `PUHUI_MAX_BODY_BYTES`.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// The body limit from `PUHUI_MAX_BODY_BYTES`, or the default if unset or unparsable.
pub fn max_body_bytes_from_env() -> usize {
    std::env::var("PUHUI_MAX_BODY_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_BODY_BYTES)
}
