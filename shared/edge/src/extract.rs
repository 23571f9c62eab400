//! Extractors that turn every kind of bad input into a typed [`Error`]: wrong content type,
//! oversized or non-UTF-8 bodies, malformed JSON (400), wrong types, missing or unknown fields
//! (422 with the field's path), unparsable path ids and query strings (400).

use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use puhui_domain::{Error, FieldError};
use serde::de::DeserializeOwned;

use crate::problem::ApiError;

/// A JSON body deserialized strictly into `T`, with the raw bytes kept (for idempotency hashes).
#[derive(Debug)]
pub struct ApiJson<T> {
    /// The deserialized value.
    pub value: T,
    /// The body as received.
    pub raw: Bytes,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json(content_type) {
            return Err(malformed(
                "body must be JSON (Content-Type: application/json)",
                "content-type",
            )
            .into());
        }
        let raw = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError(Error::PayloadTooLarge {
                    limit: crate::max_body_bytes_from_env(),
                })
            } else {
                ApiError(malformed(
                    &format!("could not read the body: {rejection}"),
                    "",
                ))
            }
        })?;
        let value = parse_json(&raw)?;
        Ok(ApiJson { value, raw })
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn malformed(detail: &str, field: &str) -> Error {
    let errors = if field.is_empty() {
        vec![]
    } else {
        vec![FieldError::new(field, "malformed", detail)]
    };
    Error::Malformed {
        detail: detail.to_owned(),
        errors,
    }
}

/// Parses a JSON body: invalid UTF-8 or JSON syntax is 400; JSON of the wrong shape is 422 with
/// the path of the offending field.
pub fn parse_json<T: DeserializeOwned>(raw: &[u8]) -> Result<T, Error> {
    let text = std::str::from_utf8(raw).map_err(|e| {
        malformed(
            &format!(
                "body is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
            "body",
        )
    })?;
    // Every request body is a JSON object; serde would also fill a struct from an array
    // (`[null, null]` as a struct of two optional fields), which the contract does not allow.
    if !text.trim_start().starts_with('{') {
        let _: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| malformed(&format!("body is not valid JSON: {e}"), "body"))?;
        return Err(Error::Validation(vec![FieldError::new(
            "",
            "invalid_type",
            "the body must be a JSON object",
        )]));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    if parsed.is_ok() {
        // Trailing content after the value is a syntax error.
        de.end()
            .map_err(|e| malformed(&format!("body is not valid JSON: {e}"), "body"))?;
    }
    parsed.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        use serde_json::error::Category;
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                malformed(&format!("body is not valid JSON: {inner}"), "body")
            }
            Category::Data => {
                let field = if path == "." { String::new() } else { path };
                let message = strip_position(&inner.to_string());
                let code = if message.starts_with("unknown field") {
                    "unknown_field"
                } else if message.starts_with("missing field") {
                    "required"
                } else {
                    "invalid_value"
                };
                let field = if code == "required" {
                    missing_field_path(&field, &message)
                } else {
                    field
                };
                Error::Validation(vec![FieldError::new(field, code, message)])
            }
        }
    })
}

/// serde reports a missing field at its parent's path; name the field itself.
fn missing_field_path(parent: &str, message: &str) -> String {
    let name = message.split('`').nth(1).unwrap_or("");
    match (parent.is_empty(), name.is_empty()) {
        (_, true) => parent.to_owned(),
        (true, false) => name.to_owned(),
        (false, false) => format!("{parent}.{name}"),
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// A single path parameter parsed with `FromStr`; a bad value is 400 naming the parameter.
#[derive(Debug)]
pub struct PathParam<T>(pub T);

impl<S: Send + Sync, T> FromRequestParts<S> for PathParam<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError(malformed(&format!("bad path: {e}"), "path")))?;
        raw.parse::<T>().map(PathParam).map_err(|e| {
            ApiError(Error::Malformed {
                detail: format!("path parameter is invalid: {e}"),
                errors: vec![FieldError::new("path.id", "invalid_format", e.to_string())],
            })
        })
    }
}

/// Query-string parameters deserialized into `T`; an unparsable value is 400 naming it.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let message = e.inner().to_string();
                let path = e.path().to_string();
                let parent = if path == "." { "" } else { path.as_str() };
                let name = if message.starts_with("missing field") {
                    missing_field_path(parent, &message)
                } else {
                    parent.to_owned()
                };
                let field = if name.is_empty() {
                    "query".to_owned()
                } else {
                    format!("query.{name}")
                };
                ApiError(Error::Malformed {
                    detail: format!("query parameter {field} is invalid: {message}"),
                    errors: vec![FieldError::new(field, "invalid_value", message)],
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        amount: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        min: i64,
    }

    fn err(raw: &[u8]) -> Error {
        parse_json::<Body>(raw).unwrap_err()
    }

    #[test]
    fn json_errors_are_classified_with_paths() {
        assert!(matches!(err(b"{\"name\": "), Error::Malformed { .. }));
        assert!(matches!(
            err(b"{\"name\":\"x\",\"amount\":{\"min\":1}} trailing"),
            Error::Malformed { .. }
        ));
        assert!(matches!(
            err(b"{\"name\":\"\xff\"}"),
            Error::Malformed { .. }
        ));
        let Error::Validation(v) = err(br#"{"name":"x","amount":{"min":"one"}}"#) else {
            panic!()
        };
        assert_eq!(
            (v[0].field.as_str(), v[0].code.as_str()),
            ("amount.min", "invalid_value")
        );
        let Error::Validation(v) = err(br#"{"name":"x","amount":{"min":1},"colour":"red"}"#) else {
            panic!()
        };
        assert_eq!(v[0].code, "unknown_field");
        let Error::Validation(v) = err(br#"{"name":"x","amount":{}}"#) else {
            panic!()
        };
        assert_eq!(
            (v[0].field.as_str(), v[0].code.as_str()),
            ("amount.min", "required")
        );
        let Error::Validation(v) = err(br#"{"amount":{"min":1}}"#) else {
            panic!()
        };
        assert_eq!(
            (v[0].field.as_str(), v[0].code.as_str()),
            ("name", "required")
        );
        assert!(parse_json::<Body>(br#"{"name":"x","amount":{"min":1}}"#).is_ok());
        // A struct is never filled from an array, nor from any other non-object.
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Optional {
            a: Option<String>,
            b: Option<String>,
        }
        for raw in [&b"[null, null]"[..], b" 1", b"\"x\""] {
            let Err(Error::Validation(v)) = parse_json::<Optional>(raw) else {
                panic!("{}", String::from_utf8_lossy(raw))
            };
            assert_eq!(v[0].code, "invalid_type");
        }
        assert!(matches!(err(b"[1,"), Error::Malformed { .. }));
    }

    #[test]
    fn query_errors_name_the_parameter() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Q {
            purpose: String,
            limit: Option<u32>,
        }
        let field = |uri: &str| {
            let (mut parts, ()) = axum::http::Request::builder()
                .uri(uri)
                .body(())
                .unwrap()
                .into_parts();
            let fut = <ApiQuery<Q> as FromRequestParts<()>>::from_request_parts(&mut parts, &());
            match block_on(fut) {
                Err(ApiError(Error::Malformed { errors, .. })) => errors[0].field.clone(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(field("/x"), "query.purpose");
        assert_eq!(field("/x?purpose=a&limit=many"), "query.limit");
    }

    /// Runs a future that never waits (extractors over an in-memory request).
    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn content_types() {
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/problem+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json(""));
    }
}
