//! RFC 9457 problem details: the one mapping from [`puhui_domain::Error`] to HTTP.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use puhui_domain::{Error, FieldError};
use serde::Serialize;

/// Media type of every error response.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// URI reference naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the type.
    pub title: &'static str,
    /// HTTP status.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// Field-level reasons, for input errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error on its way out of a handler. Handlers return `Result<_, ApiError>`; `?` converts.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl ApiError {
    /// The status and problem document for this error.
    pub fn problem(&self) -> Problem {
        let (status, slug, title) = classify(&self.0);
        let (detail, errors) = match &self.0 {
            Error::Validation(errors) => (summarise(errors), errors.clone()),
            Error::Malformed { detail, errors } => (detail.clone(), errors.clone()),
            // Never echo internal details to callers; they are logged.
            Error::Internal(_) => (
                "an internal error occurred; it has been logged".into(),
                vec![],
            ),
            Error::QuotaExhausted { detail, .. } => (detail.clone(), vec![]),
            other => (other.to_string(), vec![]),
        };
        // A quota's problem type names the quota, so clients can tell them apart.
        let kind = match &self.0 {
            Error::QuotaExhausted { quota, .. } => format!("/problems/{slug}/{quota}"),
            _ => format!("/problems/{slug}"),
        };
        Problem {
            kind,
            title,
            status: status.as_u16(),
            detail,
            errors,
        }
    }
}

fn classify(e: &Error) -> (StatusCode, &'static str, &'static str) {
    match e {
        Error::Malformed { .. } => (
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "Malformed request",
        ),
        Error::PayloadTooLarge { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Request body too large",
        ),
        Error::Validation(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid input",
        ),
        Error::Unauthenticated(_) => (
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Authentication required",
        ),
        Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
        Error::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
        Error::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
        Error::PreconditionFailed { .. } => (
            StatusCode::PRECONDITION_FAILED,
            "version-mismatch",
            "Version mismatch",
        ),
        Error::PreconditionRequired(_) => (
            StatusCode::PRECONDITION_REQUIRED,
            "precondition-required",
            "Precondition required",
        ),
        Error::QuotaExhausted { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "quota-exhausted",
            "Quota exhausted",
        ),
        Error::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Temporarily unavailable",
        ),
        Error::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
        ),
    }
}

fn summarise(errors: &[FieldError]) -> String {
    match errors {
        [one] => format!("{}: {}", one.field, one.message),
        many => format!("{} fields are invalid", many.len()),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        match &self.0 {
            Error::Internal(m) => tracing::error!(error = %m, "internal error"),
            Error::Unavailable(m) => tracing::warn!(error = %m, "dependency unavailable"),
            // The detail is not logged: it may quote what the caller sent (serde names the
            // offending value; a not-found names the id asked for), which can be personal
            // data. The problem type and the fields at fault say enough.
            _ => {
                let fields: Vec<String> = problem
                    .errors
                    .iter()
                    .map(|e| format!("{}:{}", e.field, e.code))
                    .collect();
                tracing::info!(status = problem.status, problem = %problem.kind, fields = ?fields, "request refused")
            }
        }
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{}".to_vec());
        let mut resp = (status, body).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match &self.0 {
            Error::Unauthenticated(_) => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Error::Unavailable(_) => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Error::QuotaExhausted {
                retry_after_secs, ..
            } => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        resp
    }
}

/// Fallback for unknown routes: a problem, not an empty 404.
pub async fn not_found() -> ApiError {
    ApiError(Error::NotFound("route".into()))
}

/// Fallback for a known route with the wrong method.
pub async fn method_not_allowed() -> Response {
    let problem = Problem {
        kind: "/problems/method-not-allowed".into(),
        title: "Method not allowed",
        status: 405,
        detail: "this route does not accept that method".into(),
        errors: vec![],
    };
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut resp = (StatusCode::METHOD_NOT_ALLOWED, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_status_and_never_leaks_internals() {
        let cases = [
            (
                Error::Malformed {
                    detail: "x".into(),
                    errors: vec![],
                },
                400,
            ),
            (Error::PayloadTooLarge { limit: 1 }, 413),
            (Error::field("amount.min", "out_of_range", "too small"), 422),
            (Error::Unauthenticated("no token".into()), 401),
            (Error::Forbidden("role".into()), 403),
            (Error::NotFound("product".into()), 404),
            (Error::Conflict("x".into()), 409),
            (
                Error::PreconditionFailed {
                    expected: 1,
                    current: 2,
                },
                412,
            ),
            (Error::PreconditionRequired("If-Match".into()), 428),
            (Error::Unavailable("throttled".into()), 503),
            (Error::Internal("db password wrong at 10.0.0.1".into()), 500),
        ];
        for (e, status) in cases {
            let p = ApiError(e).problem();
            assert_eq!(p.status, status);
            assert!(!p.detail.contains("10.0.0.1"));
        }
        let p = ApiError(Error::field("amount.min", "out_of_range", "too small")).problem();
        assert_eq!(p.detail, "amount.min: too small");
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.kind, "/problems/validation");
    }

    #[test]
    fn a_used_up_quota_is_429_naming_it_with_retry_after() {
        let e = Error::QuotaExhausted {
            quota: "data-query-daily",
            detail: "used up".into(),
            retry_after_secs: 3_600,
        };
        let resp = ApiError(e).into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            resp.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from_static("3600"))
        );
        let p = ApiError(Error::QuotaExhausted {
            quota: "data-query-daily",
            detail: "used up".into(),
            retry_after_secs: 1,
        })
        .problem();
        assert_eq!(
            (p.kind.as_str(), p.detail.as_str()),
            ("/problems/quota-exhausted/data-query-daily", "used up")
        );
    }
}
