//! Who is calling. Two sources, both verified, never a header a client can forge:
//!
//! 1. Behind API Gateway's JWT authorizer, the Lambda event's request context carries the
//!    claims the gateway verified; we still check issuer, audience, expiry and the claims we
//!    need, so a misconfigured authorizer fails closed.
//! 2. Otherwise (local runner, function URLs), the `Authorization: Bearer` token is verified
//!    here with `jsonwebtoken`: algorithm pinned to the configured one (ES256 or RS256; `none`
//!    and HMAC are refused, which rules out algorithm confusion), key chosen by `kid` from a
//!    JWKS, `iss`, `aud`, `exp`, `nbf` checked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lambda_http::request::RequestContext;
use puhui_domain::{BankId, Error, Principal, Role};
use serde::Deserialize;

use crate::problem::ApiError;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// Token verification settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud` (one of the token's audiences).
    pub audience: String,
    /// The only signature algorithm accepted.
    pub algorithm: Algorithm,
    /// Verification keys.
    pub jwks: JwkSet,
}

/// Configuration problems, reported at start so a function never runs half-configured.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("PUHUI_JWT_ALGORITHM must be ES256 or RS256, got {0}")]
    Algorithm(String),
    #[error("cannot read JWKS from {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("JWKS is not valid: {0}")]
    Jwks(String),
    #[error("key {kid:?} is not usable with {alg:?}")]
    KeyType { kid: Option<String>, alg: Algorithm },
}

/// Default issuer for local runs.
pub const DEFAULT_ISSUER: &str = "https://auth.puhui.local";
/// Default audience for local runs.
pub const DEFAULT_AUDIENCE: &str = "puhui-banks";

impl AuthConfig {
    /// Reads `PUHUI_JWT_ISSUER`, `PUHUI_JWT_AUDIENCE`, `PUHUI_JWT_ALGORITHM` (ES256 default) and
    /// the keys from `PUHUI_JWKS` (inline JSON) or `PUHUI_JWKS_PATH` (a file). Without keys, bearer
    /// tokens are refused and only gateway-verified claims are accepted.
    pub fn from_env() -> Result<Self, AuthConfigError> {
        let var = |k: &str, d: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| d.to_owned())
        };
        let algorithm = match var("PUHUI_JWT_ALGORITHM", "ES256").as_str() {
            "ES256" => Algorithm::ES256,
            "RS256" => Algorithm::RS256,
            other => return Err(AuthConfigError::Algorithm(other.to_owned())),
        };
        let jwks_text = match (
            std::env::var("PUHUI_JWKS"),
            std::env::var("PUHUI_JWKS_PATH"),
        ) {
            (Ok(inline), _) if !inline.is_empty() => inline,
            (_, Ok(path)) if !path.is_empty() => std::fs::read_to_string(&path)
                .map_err(|source| AuthConfigError::Read { path, source })?,
            _ => r#"{"keys":[]}"#.to_owned(),
        };
        let jwks =
            serde_json::from_str(&jwks_text).map_err(|e| AuthConfigError::Jwks(e.to_string()))?;
        Ok(AuthConfig {
            issuer: var("PUHUI_JWT_ISSUER", DEFAULT_ISSUER),
            audience: var("PUHUI_JWT_AUDIENCE", DEFAULT_AUDIENCE),
            algorithm,
            jwks,
        })
    }
}

/// Verifies tokens and gateway claims into [`Principal`]s.
pub struct Authenticator {
    config: AuthConfig,
    keys: Vec<(Option<String>, DecodingKey)>,
    validation: Validation,
    verified: Verified,
}

/// Bearer tokens this instance has verified, with their principal and expiry, so a bank
/// system's repeated requests with one token skip the signature check: an ES256 verification
/// was over a quarter of a data query's CPU. An entry is the whole token, signature included
/// (any other byte is a miss and is verified in full), and is used only before the token's
/// `exp` (without the leeway a full check grants); failures are never kept.
#[derive(Default)]
struct Verified(Mutex<HashMap<String, (Principal, u64)>>);

/// Tokens kept at most; when full, expired ones are dropped, and if none had expired, all.
const VERIFIED_CAPACITY: usize = 1024;

impl Verified {
    /// The principal of `token` if it was verified and has not expired at `now`.
    fn get(&self, token: &str, now: u64) -> Option<Principal> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(token)
            .filter(|(_, exp)| now < *exp)
            .map(|(p, _)| p.clone())
    }

    fn insert(&self, token: &str, principal: &Principal, exp: u64, now: u64) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= VERIFIED_CAPACITY {
            map.retain(|_, (_, e)| now < *e);
            if map.len() >= VERIFIED_CAPACITY {
                map.clear();
            }
        }
        map.insert(token.to_owned(), (principal.clone(), exp));
    }
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("issuer", &self.config.issuer)
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// Claims Puhui reads from a bank token.
#[derive(Debug, Deserialize)]
struct BankClaims {
    sub: String,
    /// Required by the validation for tokens; gateway claims are checked without it here.
    #[serde(default)]
    exp: u64,
    #[serde(default)]
    bank_id: Option<String>,
    #[serde(default)]
    roles: Option<RolesClaim>,
}

/// Roles as a JSON array, or one space-separated string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RolesClaim {
    List(Vec<String>),
    Text(String),
}

impl Authenticator {
    /// Builds the verifier; refuses keys whose type does not fit the pinned algorithm.
    pub fn new(config: AuthConfig) -> Result<Self, AuthConfigError> {
        let mut keys = Vec::new();
        for jwk in &config.jwks.keys {
            let fits = matches!(
                (&jwk.algorithm, config.algorithm),
                (AlgorithmParameters::EllipticCurve(_), Algorithm::ES256)
                    | (AlgorithmParameters::RSA(_), Algorithm::RS256)
            );
            if !fits {
                return Err(AuthConfigError::KeyType {
                    kid: jwk.common.key_id.clone(),
                    alg: config.algorithm,
                });
            }
            let key =
                DecodingKey::from_jwk(jwk).map_err(|e| AuthConfigError::Jwks(e.to_string()))?;
            keys.push((jwk.common.key_id.clone(), key));
        }
        let mut validation = Validation::new(config.algorithm);
        validation.algorithms = vec![config.algorithm];
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Ok(Authenticator {
            config,
            keys,
            validation,
            verified: Verified::default(),
        })
    }

    /// Verifies a bearer token (once per token and instance: see [`Verified`]).
    pub fn verify_bearer(&self, token: &str) -> Result<Principal, Error> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(p) = self.verified.get(token, now) {
            return Ok(p);
        }
        let (principal, exp) = self.verify_in_full(token)?;
        self.verified.insert(token, &principal, exp, now);
        Ok(principal)
    }

    /// Checks a bearer token's algorithm, key, signature and claims; returns its principal and
    /// its `exp`.
    fn verify_in_full(&self, token: &str) -> Result<(Principal, u64), Error> {
        let unauth = |m: &str| Error::Unauthenticated(m.to_owned());
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauth("token is not a well-formed JWT"))?;
        if header.alg != self.config.algorithm {
            return Err(unauth("token algorithm is not accepted"));
        }
        let key = match &header.kid {
            Some(kid) => self.keys.iter().find(|(k, _)| k.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
        .map(|(_, key)| key)
        .ok_or_else(|| unauth("token key is not known"))?;
        let data =
            jsonwebtoken::decode::<BankClaims>(token, key, &self.validation).map_err(|e| {
                use jsonwebtoken::errors::ErrorKind::*;
                Error::Unauthenticated(
                    match e.kind() {
                        ExpiredSignature => "token has expired",
                        ImmatureSignature => "token is not valid yet",
                        InvalidIssuer => "token issuer is not accepted",
                        InvalidAudience => "token audience is not accepted",
                        InvalidSignature => "token signature does not verify",
                        MissingRequiredClaim(_) => "token lacks a required claim",
                        _ => "token is not valid",
                    }
                    .to_owned(),
                )
            })?;
        let exp = data.claims.exp;
        Ok((principal(data.claims)?, exp))
    }

    /// Accepts claims an API Gateway JWT authorizer verified, after checking they are complete
    /// and meant for us. Claim values arrive as strings (arrays rendered as `[a b]`).
    pub fn from_gateway_claims(
        &self,
        claims: &HashMap<String, String>,
        now_secs: i64,
    ) -> Result<Principal, Error> {
        let unauth = |m: &str| Error::Unauthenticated(m.to_owned());
        let get = |k: &str| claims.get(k).map(String::as_str).filter(|v| !v.is_empty());
        if get("iss") != Some(self.config.issuer.as_str()) {
            return Err(unauth("token issuer is not accepted"));
        }
        let audiences = split_list(get("aud").unwrap_or(""));
        if !audiences.iter().any(|a| a == &self.config.audience) {
            return Err(unauth("token audience is not accepted"));
        }
        let leeway = LEEWAY_SECS as i64;
        let exp: i64 = get("exp")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| unauth("token lacks a required claim"))?;
        if exp.saturating_add(leeway) <= now_secs {
            return Err(unauth("token has expired"));
        }
        if let Some(nbf) = get("nbf").and_then(|v| v.parse::<i64>().ok())
            && nbf.saturating_sub(leeway) > now_secs
        {
            return Err(unauth("token is not valid yet"));
        }
        let sub = get("sub").ok_or_else(|| unauth("token lacks a required claim"))?;
        principal(BankClaims {
            exp: u64::try_from(exp).unwrap_or(0),
            sub: sub.to_owned(),
            bank_id: get("bank_id").map(str::to_owned),
            roles: get("roles").map(|r| RolesClaim::List(split_list(r))),
        })
    }

    /// The principal of a request: gateway claims if the Lambda event carries them, else the
    /// bearer token.
    pub fn authenticate(&self, parts: &Parts) -> Result<Principal, Error> {
        if let Some(RequestContext::ApiGatewayV2(ctx)) = parts.extensions.get::<RequestContext>()
            && let Some(jwt) = ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref())
        {
            return self.from_gateway_claims(&jwt.claims, chrono::Utc::now().timestamp());
        }
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| Error::Unauthenticated("a bearer token is required".into()))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::Unauthenticated("Authorization must be 'Bearer <token>'".into())
            })?;
        self.verify_bearer(token)
    }
}

/// `[a b]`, `a b`, `a,b` or `["a","b"]` → `[a, b]`.
fn split_list(v: &str) -> Vec<String> {
    if let Ok(list) = serde_json::from_str::<Vec<String>>(v) {
        return list;
    }
    v.trim_start_matches('[')
        .trim_end_matches(']')
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn principal(claims: BankClaims) -> Result<Principal, Error> {
    let roles = match claims.roles {
        Some(RolesClaim::List(l)) => l,
        Some(RolesClaim::Text(t)) => split_list(&t),
        None => vec![],
    };
    let bank_id = match claims.bank_id {
        Some(b) => Some(
            BankId::parse(&b)
                .map_err(|_| Error::Unauthenticated("token bank_id claim is invalid".into()))?,
        ),
        None => None,
    };
    Ok(Principal {
        subject: claims.sub,
        bank_id,
        roles: roles.iter().filter_map(|r| Role::parse(r)).collect(),
    })
}

/// Extractor: the verified caller, or a 401 problem. Records the tenant on the request span.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    Arc<Authenticator>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Arc::<Authenticator>::from_ref(state);
        let principal = auth.authenticate(parts)?;
        let span = tracing::Span::current();
        span.record(
            "tenant",
            principal
                .bank_id
                .as_ref()
                .map_or("platform", |b| b.as_str()),
        );
        Ok(Authenticated(principal))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use puhui_samplekit::tokens::DevIssuer;
    use serde_json::json;

    fn setup() -> (DevIssuer, Authenticator) {
        let issuer = DevIssuer::generate().unwrap();
        let config = AuthConfig {
            issuer: DEFAULT_ISSUER.into(),
            audience: DEFAULT_AUDIENCE.into(),
            algorithm: Algorithm::ES256,
            jwks: serde_json::from_str(&issuer.jwks_json()).unwrap(),
        };
        (issuer, Authenticator::new(config).unwrap())
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn claims(exp: i64) -> serde_json::Value {
        json!({"iss": DEFAULT_ISSUER, "aud": DEFAULT_AUDIENCE, "sub": "officer-1", "bank_id": "nbcb",
               "roles": ["product_admin", "unknown_role"], "exp": exp, "iat": now()})
    }

    #[test]
    fn a_good_token_yields_the_principal() {
        let (issuer, auth) = setup();
        let p = auth
            .verify_bearer(&issuer.sign(&claims(now() + 600)).unwrap())
            .unwrap();
        assert_eq!(p.subject, "officer-1");
        assert_eq!(p.bank_id.unwrap().as_str(), "nbcb");
        assert_eq!(p.roles, vec![Role::ProductAdmin]);
    }

    #[test]
    fn a_verified_token_is_kept_only_byte_for_byte_and_until_it_expires() {
        let (issuer, auth) = setup();
        let token = issuer.sign(&claims(now() + 600)).unwrap();
        let first = auth.verify_bearer(&token).unwrap();
        assert_eq!(auth.verify_bearer(&token).unwrap(), first);
        // One character of the signature changed: not the kept token, so checked in full.
        let at = token.len() - 10;
        let swapped = if &token[at..=at] == "A" { "B" } else { "A" };
        let forged = format!("{}{swapped}{}", &token[..at], &token[at + 1..]);
        assert!(matches!(
            auth.verify_bearer(&forged),
            Err(Error::Unauthenticated(_))
        ));
        // A kept entry past its token's expiry is not used: the full check decides (an hour
        // past `exp` is beyond the leeway too).
        let stale = issuer.sign(&claims(now() - 3600)).unwrap();
        let exp = u64::try_from(now() - 3600).unwrap();
        auth.verified.insert(&stale, &first, exp, exp - 10);
        assert!(matches!(
            auth.verify_bearer(&stale),
            Err(Error::Unauthenticated(m)) if m == "token has expired"
        ));
    }

    #[test]
    fn the_kept_tokens_are_bounded() {
        let (_, auth) = setup();
        let p = Principal {
            subject: "s".into(),
            bank_id: None,
            roles: vec![],
        };
        let now = 1_000;
        for i in 0..VERIFIED_CAPACITY {
            // Half of them expired by `now`.
            auth.verified.insert(
                &format!("t{i}"),
                &p,
                if i % 2 == 0 { 900 } else { 2_000 },
                800,
            );
        }
        auth.verified.insert("one more", &p, 2_000, now);
        let kept = auth.verified.0.lock().unwrap().len();
        assert_eq!(
            kept,
            VERIFIED_CAPACITY / 2 + 1,
            "expired entries dropped first"
        );
        assert!(auth.verified.get("one more", now).is_some());
        assert!(auth.verified.get("t0", now).is_none());
    }

    #[test]
    fn bad_tokens_are_refused_with_a_reason() {
        let (issuer, auth) = setup();
        let reason = |token: &str| match auth.verify_bearer(token) {
            Err(Error::Unauthenticated(m)) => m,
            other => panic!("expected 401, got {other:?}"),
        };
        assert_eq!(
            reason(&issuer.sign(&claims(now() - 3600)).unwrap()),
            "token has expired"
        );
        let mut c = claims(now() + 600);
        c["iss"] = json!("https://evil.example");
        assert_eq!(
            reason(&issuer.sign(&c).unwrap()),
            "token issuer is not accepted"
        );
        let mut c = claims(now() + 600);
        c["aud"] = json!("someone-else");
        assert_eq!(
            reason(&issuer.sign(&c).unwrap()),
            "token audience is not accepted"
        );
        let mut c = claims(now() + 600);
        c["nbf"] = json!(now() + 3600);
        assert_eq!(reason(&issuer.sign(&c).unwrap()), "token is not valid yet");
        let mut c = claims(now() + 600);
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            reason(&issuer.sign(&c).unwrap()),
            "token lacks a required claim"
        );
        // Signed by a different key with the same kid.
        let other = DevIssuer::generate_with_kid(issuer.kid()).unwrap();
        assert_eq!(
            reason(&other.sign(&claims(now() + 600)).unwrap()),
            "token signature does not verify"
        );
        // alg=none and HS256 signed with the public key as secret (algorithm confusion).
        let b64 = |v: &serde_json::Value| base64_url(&serde_json::to_vec(v).unwrap());
        let none = format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT"})),
            b64(&claims(now() + 600))
        );
        assert!(reason(&none).starts_with("token"));
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(issuer.kid().to_owned());
        let confused = jsonwebtoken::encode(
            &header,
            &claims(now() + 600),
            &EncodingKey::from_secret(issuer.jwks_json().as_bytes()),
        )
        .unwrap();
        assert_eq!(reason(&confused), "token algorithm is not accepted");
        assert_eq!(reason("garbage"), "token is not a well-formed JWT");
        let mut c = claims(now() + 600);
        c["bank_id"] = json!("NOT A BANK");
        assert_eq!(
            reason(&issuer.sign(&c).unwrap()),
            "token bank_id claim is invalid"
        );
    }

    fn base64_url(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn keys_of_the_wrong_type_are_refused_at_start() {
        let (issuer, _) = setup();
        let config = AuthConfig {
            issuer: DEFAULT_ISSUER.into(),
            audience: DEFAULT_AUDIENCE.into(),
            algorithm: Algorithm::RS256,
            jwks: serde_json::from_str(&issuer.jwks_json()).unwrap(),
        };
        assert!(matches!(
            Authenticator::new(config),
            Err(AuthConfigError::KeyType { .. })
        ));
    }

    #[test]
    fn gateway_claims_are_checked_not_trusted_blindly() {
        let (_, auth) = setup();
        let t = now();
        let good: HashMap<String, String> = [
            ("iss", DEFAULT_ISSUER),
            ("aud", DEFAULT_AUDIENCE),
            ("sub", "officer-1"),
            ("bank_id", "nbcb"),
            ("roles", "[product_admin loan_officer]"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .chain([("exp".to_owned(), (t + 60).to_string())])
        .collect();
        let p = auth.from_gateway_claims(&good, t).unwrap();
        assert_eq!(p.roles, vec![Role::ProductAdmin, Role::LoanOfficer]);
        for (k, v) in [
            ("iss", "other"),
            ("aud", "other"),
            ("exp", "1"),
            ("sub", ""),
            ("bank_id", "Bad Id"),
        ] {
            let mut c = good.clone();
            c.insert(k.to_owned(), v.to_owned());
            assert!(
                matches!(
                    auth.from_gateway_claims(&c, t),
                    Err(Error::Unauthenticated(_))
                ),
                "{k}={v}"
            );
        }
        let mut c = good.clone();
        c.remove("exp");
        assert!(auth.from_gateway_claims(&c, t).is_err(), "exp is required");
        let mut c = good.clone();
        c.insert("exp".to_owned(), i64::MAX.to_string());
        c.insert("nbf".to_owned(), i64::MIN.to_string());
        assert!(
            auth.from_gateway_claims(&c, t).is_ok(),
            "extreme times must not overflow"
        );
    }
}
