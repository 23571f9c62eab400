//! The one error type of Puhui. Services return it; the HTTP edge maps it to
//! `application/problem+json` in exactly one place.

use serde::Serialize;

/// A reason attached to one input field, reported to callers as `errors[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// JSON-pointer-like path of the field (`amount.min`, `regions[2]`, `/path/id`).
    pub field: String,
    /// Stable machine-readable code (`invalid_check_character`, `out_of_range`, ...).
    pub code: String,
    /// Human-readable reason.
    pub message: String,
}

impl FieldError {
    /// A field error from its parts.
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }

    /// The same error reported under a parent path (`amount` + `min` → `amount.min`).
    pub fn under(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

/// Everything that can go wrong in a use case, typed by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request body is not well-formed (not JSON, not UTF-8, wrong content type).
    #[error("malformed request: {detail}")]
    Malformed {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// The body is larger than the configured limit.
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// Well-formed input that breaks a rule (missing field, bad check digit, range inverted).
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// No credentials, or credentials that do not verify.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// Authenticated, but the caller's role does not allow the action.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The resource does not exist, or belongs to a tenant the caller cannot see.
    #[error("{0} not found")]
    NotFound(String),
    /// The write conflicts with the current state (duplicate, invalid transition, in progress).
    #[error("conflict: {0}")]
    Conflict(String),
    /// An `If-Match` version did not match the stored one.
    #[error("version mismatch: expected {expected}, current {current}")]
    PreconditionFailed { expected: u64, current: u64 },
    /// A required precondition header is missing.
    #[error("precondition required: {0}")]
    PreconditionRequired(String),
    /// A quota of the caller's is used up; it refills after `retry_after_secs`.
    #[error("quota exhausted: {detail}")]
    QuotaExhausted {
        /// Which quota (a slug: `data-query-daily`), named in the problem type.
        quota: &'static str,
        /// What the caller is told.
        detail: String,
        /// Seconds until the quota refills (the `Retry-After` header).
        retry_after_secs: u64,
    },
    /// A dependency is unavailable or throttled; the caller may retry.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A fault on our side; details are logged, never returned.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A validation error on a single field.
    pub fn field(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Validation(vec![FieldError::new(field, code, message)])
    }
}

/// Collects field errors while validating a whole input, so callers see every problem at once.
#[derive(Debug, Default)]
pub struct Findings(Vec<FieldError>);

impl Findings {
    /// Records one field error.
    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }

    /// Records the error of `r` (if any) under `field` and returns the value.
    pub fn check<T, E: Into<FieldError>>(&mut self, field: &str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e.into().under(field));
                None
            }
        }
    }

    /// `Ok(())` if nothing was recorded, else the collected validation error.
    pub fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self.0))
        }
    }

    /// True if nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Flattens `validator`'s nested errors into field errors with dotted paths.
pub fn from_validator(errors: &validator::ValidationErrors) -> Vec<FieldError> {
    use validator::ValidationErrorsKind as K;
    let mut out = Vec::new();
    for (field, kind) in errors.errors() {
        match kind {
            K::Field(list) => out.extend(list.iter().map(|e| {
                let message = e
                    .message
                    .as_ref()
                    .map_or_else(|| e.code.to_string(), |m| m.to_string());
                FieldError::new(field.to_string(), e.code.to_string(), message)
            })),
            K::Struct(inner) => {
                out.extend(from_validator(inner).into_iter().map(|e| e.under(field)))
            }
            K::List(items) => {
                for (i, inner) in items {
                    out.extend(
                        from_validator(inner)
                            .into_iter()
                            .map(|e| e.under(&format!("{field}[{i}]"))),
                    );
                }
            }
        }
    }
    out.sort_by(|a, b| a.field.cmp(&b.field));
    out
}
