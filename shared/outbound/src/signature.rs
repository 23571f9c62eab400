//! The request signature of Puhui's outbound HTTP calls (SMS gateway and bank webhooks):
//! `X-Puhui-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>`.
//!
//! Receivers recompute the HMAC over the raw body with the shared secret, so a message cannot be
//! forged or altered in transit. One function signs for every notifier, so the two cannot drift.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Name of the header carrying [`sign`]'s value.
pub const SIGNATURE_HEADER: &str = "X-Puhui-Signature";

const PREFIX: &str = "sha256=";

/// The `X-Puhui-Signature` value for `body`: `sha256=` and the lowercase hex HMAC-SHA256.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!(
        "{PREFIX}{}",
        hex::encode(mac(secret, body).finalize().into_bytes())
    )
}

/// Whether `header` is a valid signature of `body` (for receivers and tests). Compares in
/// constant time so a receiver using it does not leak how much of a guess was right.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_mac) = header.trim().strip_prefix(PREFIX) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_mac) else {
        return false;
    };
    mac(secret, body).verify_slice(&expected).is_ok()
}

fn mac(secret: &[u8], body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length (long keys are hashed first), so this never fails.
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rfc_4231_test_vector() {
        // RFC 4231, test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verifies_only_the_right_body_secret_and_format() {
        let sig = sign(b"secret", b"{\"a\":1}");
        assert!(verify(b"secret", b"{\"a\":1}", &sig));
        assert!(!verify(b"secret", b"{\"a\":2}", &sig));
        assert!(!verify(b"other", b"{\"a\":1}", &sig));
        assert!(!verify(
            b"secret",
            b"{\"a\":1}",
            sig.trim_start_matches("sha256=")
        ));
        assert!(!verify(b"secret", b"{\"a\":1}", "sha256=zz"));
    }
}
