//! The deterministic local stand-in for WeChat.

use async_trait::async_trait;
use puhui_ports::{VerifiedPhone, WeChatError, WeChatIdentity, WeChatSession};

/// A WeChat stand-in for the runner, tests and the demo: no network, answers by code format.
///
/// Login codes (`login`):
/// - `dev:rate-limited` → [`WeChatError::RateLimited`]
/// - `dev:high-risk` → [`WeChatError::HighRiskUser`]
/// - `dev:<name>`, name 1–64 characters of `[A-Za-z0-9_-]` → openid `dev-openid-<name>`,
///   no unionid
/// - anything else → [`WeChatError::InvalidCode`]
///
/// Phone codes (`phone_number`):
/// - `dev-phone:<country>-<number>`, country 1–3 digits, number 5–15 digits
///   (`dev-phone:86-13812345678`, `dev-phone:852-91234567`) → that number
/// - anything else → [`WeChatError::InvalidCode`]
///
/// Codes are not single-use here, so a demo script can log in repeatedly as the same user.
#[derive(Debug, Default, Clone, Copy)]
pub struct DevWeChat;

impl DevWeChat {
    /// The stand-in.
    pub fn new() -> Self {
        DevWeChat
    }
}

fn all_digits(s: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

#[async_trait]
impl WeChatIdentity for DevWeChat {
    async fn login(&self, code: &str) -> Result<WeChatSession, WeChatError> {
        match code.strip_prefix("dev:") {
            Some("rate-limited") => Err(WeChatError::RateLimited),
            Some("high-risk") => Err(WeChatError::HighRiskUser),
            Some(name)
                if (1..=64).contains(&name.len())
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                Ok(WeChatSession {
                    openid: format!("dev-openid-{name}"),
                    unionid: None,
                })
            }
            _ => Err(WeChatError::InvalidCode),
        }
    }

    async fn phone_number(&self, code: &str) -> Result<VerifiedPhone, WeChatError> {
        let (country, number) = code
            .strip_prefix("dev-phone:")
            .and_then(|rest| rest.split_once('-'))
            .ok_or(WeChatError::InvalidCode)?;
        if !all_digits(country, 1..=3) || !all_digits(number, 5..=15) {
            return Err(WeChatError::InvalidCode);
        }
        Ok(VerifiedPhone {
            country_code: country.to_owned(),
            number: number.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn login_codes() {
        let w = DevWeChat::new();
        assert_eq!(
            w.login("dev:alice_01").await,
            Ok(WeChatSession {
                openid: "dev-openid-alice_01".into(),
                unionid: None
            })
        );
        assert_eq!(
            w.login(&format!("dev:{}", "a".repeat(64)))
                .await
                .map(|s| s.openid.len()),
            Ok("dev-openid-".len() + 64)
        );
        assert_eq!(
            w.login("dev:rate-limited").await,
            Err(WeChatError::RateLimited)
        );
        assert_eq!(
            w.login("dev:high-risk").await,
            Err(WeChatError::HighRiskUser)
        );
        for bad in [
            "dev:",
            "dev:a b",
            "dev:名字",
            "alice",
            "DEV:alice",
            "dev:a.b",
            &format!("dev:{}", "a".repeat(65)),
        ] {
            assert_eq!(w.login(bad).await, Err(WeChatError::InvalidCode), "{bad}");
        }
    }

    #[tokio::test]
    async fn phone_codes() {
        let w = DevWeChat::new();
        assert_eq!(
            w.phone_number("dev-phone:86-13812345678").await,
            Ok(VerifiedPhone {
                country_code: "86".into(),
                number: "13812345678".into()
            })
        );
        assert_eq!(
            w.phone_number("dev-phone:852-91234567").await,
            Ok(VerifiedPhone {
                country_code: "852".into(),
                number: "91234567".into()
            })
        );
        for bad in [
            "dev-phone:",
            "dev-phone:86",
            "dev-phone:86-",
            "dev-phone:-13812345678",
            "dev-phone:8600-13812345678",
            "dev-phone:86-1381234567x",
            "dev-phone:86-138-1234",
            "dev:86-13812345678",
            "13812345678",
        ] {
            assert_eq!(
                w.phone_number(bad).await,
                Err(WeChatError::InvalidCode),
                "{bad}"
            );
        }
    }
}
