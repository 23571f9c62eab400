//! A development token issuer: an ES256 key pair made on the spot, its JWKS, and signed bank
//! tokens. For the local runner, the demo and tests only; production keys come from the
//! bank-facing identity provider through API Gateway.

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// Issuer URL the local runner expects (the default of `PUHUI_JWT_ISSUER`).
pub const ISSUER: &str = "https://auth.puhui.local";
/// Audience the local runner expects (the default of `PUHUI_JWT_AUDIENCE`).
pub const AUDIENCE: &str = "puhui-banks";

/// Errors making or using a dev key.
pub type TokenError = crate::Failure;

fn err(e: impl std::fmt::Display) -> TokenError {
    crate::Failure(e.to_string())
}

/// An ES256 signing key with its key id.
pub struct DevIssuer {
    kid: String,
    pkcs8: Vec<u8>,
    public_point: Vec<u8>,
}

impl DevIssuer {
    /// A fresh key pair with a random key id.
    pub fn generate() -> Result<Self, TokenError> {
        let kid = format!("dev-{}", chrono::Utc::now().timestamp_micros());
        Self::generate_with_kid(&kid)
    }

    /// A fresh key pair with a chosen key id.
    pub fn generate_with_kid(kid: &str) -> Result<Self, TokenError> {
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(err)?;
        Self::from_pkcs8(kid, doc.as_ref())
    }

    fn from_pkcs8(kid: &str, pkcs8: &[u8]) -> Result<Self, TokenError> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).map_err(err)?;
        Ok(DevIssuer {
            kid: kid.to_owned(),
            pkcs8: pkcs8.to_vec(),
            public_point: pair.public_key().as_ref().to_vec(),
        })
    }

    /// The key id (`kid`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWKS document.
    pub fn jwks_json(&self) -> String {
        // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
        let coords = self.public_point.get(1..).unwrap_or_default();
        let (x, y) = coords.split_at(coords.len() / 2);
        json!({"keys": [{"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
                         "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}]})
        .to_string()
    }

    /// Signs arbitrary claims (tests use this to forge bad tokens too).
    pub fn sign(&self, claims: &Value) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&self.pkcs8)).map_err(err)
    }

    /// A bank token valid for `ttl_secs`, with the default issuer and audience.
    pub fn bank_token(
        &self,
        subject: &str,
        bank_id: &str,
        roles: &[&str],
        ttl_secs: i64,
    ) -> Result<String, TokenError> {
        let now = chrono::Utc::now().timestamp();
        self.sign(
            &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "bank_id": bank_id,
                          "roles": roles, "iat": now, "nbf": now - 5, "exp": now + ttl_secs}),
        )
    }

    /// A development token for platform staff: roles, no `bank_id` claim.
    pub fn bank_token_without_bank(
        &self,
        subject: &str,
        roles: &[&str],
        ttl_secs: i64,
    ) -> Result<String, TokenError> {
        let now = chrono::Utc::now().timestamp();
        self.sign(
            &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "roles": roles,
                          "iat": now, "nbf": now - 5, "exp": now + ttl_secs}),
        )
    }

    /// Writes `jwks.json` and the private key (`signing-key.pk8`, owner-readable) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), TokenError> {
        std::fs::create_dir_all(dir).map_err(err)?;
        std::fs::write(dir.join("jwks.json"), self.jwks_json()).map_err(err)?;
        std::fs::write(dir.join("kid"), &self.kid).map_err(err)?;
        let key_path = dir.join("signing-key.pk8");
        std::fs::write(&key_path, &self.pkcs8).map_err(err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))
                .map_err(err)?;
        }
        Ok(())
    }

    /// Loads a key saved by [`DevIssuer::save`].
    pub fn load(dir: &Path) -> Result<Self, TokenError> {
        let kid = std::fs::read_to_string(dir.join("kid")).map_err(err)?;
        let pkcs8 = std::fs::read(dir.join("signing-key.pk8")).map_err(err)?;
        Self::from_pkcs8(kid.trim(), &pkcs8)
    }

    /// Loads the key in `dir`, or makes and saves one if there is none.
    pub fn load_or_create(dir: &Path) -> Result<Self, TokenError> {
        match Self::load(dir) {
            Ok(issuer) => Ok(issuer),
            Err(_) => {
                let issuer = Self::generate()?;
                issuer.save(dir)?;
                Ok(issuer)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn saved_keys_load_back_and_sign_verifiably() {
        let dir = std::env::temp_dir().join(format!("puhui-devkey-{}", std::process::id()));
        let a = DevIssuer::generate().unwrap();
        a.save(&dir).unwrap();
        let b = DevIssuer::load(&dir).unwrap();
        assert_eq!(a.jwks_json(), b.jwks_json());
        let token = b.bank_token("u", "nbcb", &["product_admin"], 60).unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&a.jwks_json()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::ES256);
        v.set_audience(&[AUDIENCE]);
        let data = jsonwebtoken::decode::<Value>(&token, &key, &v).unwrap();
        assert_eq!(data.claims["bank_id"], "nbcb");
        std::fs::remove_dir_all(dir).ok();
    }
}
