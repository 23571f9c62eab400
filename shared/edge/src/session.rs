//! Applicant sessions: after the WeChat login exchange, scan-submit issues a short-lived token
//! that the mini-program sends on the applicant routes.
//!
//! The token is a JWT signed with HS256 under a platform secret, audience `puhui-applicants`.
//! Bank routes pin ES256/RS256 and the bank audience, and these routes pin HS256 and the
//! applicant audience, so neither kind of token is accepted where the other belongs.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use puhui_domain::{ApplicantId, Error};
use serde::{Deserialize, Serialize};

use crate::auth::LEEWAY_SECS;
use crate::problem::ApiError;

/// Issuer of applicant sessions.
pub const SESSION_ISSUER: &str = "puhui-scan-submit";
/// Audience of applicant sessions (never the banks' audience).
pub const SESSION_AUDIENCE: &str = "puhui-applicants";
/// Shortest secret accepted (HS256 wants at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;

/// Why the session configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum SessionConfigError {
    #[error("PUHUI_SESSION_SECRET is not set")]
    Missing,
    #[error("the session secret must be at least {MIN_SECRET_BYTES} bytes")]
    TooShort,
    #[error("PUHUI_SESSION_TTL_SECS must be 60–86400 seconds")]
    Ttl,
}

/// Issues and verifies applicant session tokens.
pub struct Sessions {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").field("ttl", &self.ttl).finish()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct SessionClaims {
    iss: String,
    aud: String,
    sub: String,
    iat: i64,
    exp: i64,
}

impl Sessions {
    /// Sessions signed with `secret`, valid for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Result<Self, SessionConfigError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SessionConfigError::TooShort);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[SESSION_ISSUER]);
        validation.set_audience(&[SESSION_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        Ok(Sessions {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        })
    }

    /// Reads `PUHUI_SESSION_SECRET` (at least 32 bytes) and `PUHUI_SESSION_TTL_SECS`
    /// (default 1800: a submission takes minutes, not hours).
    pub fn from_env() -> Result<Self, SessionConfigError> {
        let secret = std::env::var("PUHUI_SESSION_SECRET")
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or(SessionConfigError::Missing)?;
        let ttl = match std::env::var("PUHUI_SESSION_TTL_SECS") {
            Ok(v) if !v.is_empty() => v
                .parse::<u64>()
                .ok()
                .filter(|s| (60..=86_400).contains(s))
                .ok_or(SessionConfigError::Ttl)?,
            _ => 1800,
        };
        Sessions::new(secret.as_bytes(), Duration::from_secs(ttl))
    }

    /// A token for `applicant`, and when it expires.
    pub fn issue(
        &self,
        applicant: &ApplicantId,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), Error> {
        let exp = now + chrono::Duration::seconds(self.ttl.as_secs() as i64);
        let claims = SessionClaims {
            iss: SESSION_ISSUER.into(),
            aud: SESSION_AUDIENCE.into(),
            sub: applicant.0.clone(),
            iat: now.timestamp(),
            exp: exp.timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("cannot sign session: {e}")))?;
        Ok((token, exp))
    }

    /// The applicant of a valid session token.
    pub fn verify(&self, token: &str) -> Result<ApplicantId, Error> {
        let unauth = |m: &str| Error::Unauthenticated(m.to_owned());
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauth("session token is not a well-formed JWT"))?;
        if header.alg != Algorithm::HS256 {
            return Err(unauth("this route takes an applicant session token"));
        }
        let data = jsonwebtoken::decode::<SessionClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind::*;
            unauth(match e.kind() {
                ExpiredSignature => "session has expired; log in again",
                InvalidAudience | InvalidIssuer => "this route takes an applicant session token",
                _ => "session token is not valid",
            })
        })?;
        Ok(ApplicantId(data.claims.sub))
    }
}

/// Extractor: the applicant of the request's session token, or a 401 problem.
#[derive(Debug, Clone)]
pub struct ApplicantSession(pub ApplicantId);

impl<S> FromRequestParts<S> for ApplicantSession
where
    S: Send + Sync,
    Arc<Sessions>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let sessions = Arc::<Sessions>::from_ref(state);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError(Error::Unauthenticated(
                    "an applicant session token is required (Authorization: Bearer)".into(),
                ))
            })?;
        Ok(ApplicantSession(sessions.verify(token)?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sessions() -> Sessions {
        Sessions::new(&[7u8; 32], Duration::from_secs(600)).unwrap()
    }

    #[test]
    fn a_session_round_trips_and_expires() {
        let s = sessions();
        let who = ApplicantId("a1".into());
        let (token, _) = s.issue(&who, Utc::now()).unwrap();
        assert_eq!(s.verify(&token).unwrap(), who);
        let (old, _) = s
            .issue(&who, Utc::now() - chrono::Duration::hours(2))
            .unwrap();
        assert!(matches!(s.verify(&old), Err(Error::Unauthenticated(m)) if m.contains("expired")));
    }

    #[test]
    fn foreign_tokens_are_refused() {
        let s = sessions();
        let (token, _) = Sessions::new(&[8u8; 32], Duration::from_secs(600))
            .unwrap()
            .issue(&ApplicantId("a1".into()), Utc::now())
            .unwrap();
        assert!(s.verify(&token).is_err(), "other secret");
        let bank = puhui_samplekit::tokens::DevIssuer::generate()
            .unwrap()
            .bank_token("officer-1", "nbcb", &["loan_officer"], 600)
            .unwrap();
        assert!(
            matches!(s.verify(&bank), Err(Error::Unauthenticated(m)) if m.contains("applicant session")),
            "bank token"
        );
        assert!(Sessions::new(b"short", Duration::from_secs(60)).is_err());
    }
}
