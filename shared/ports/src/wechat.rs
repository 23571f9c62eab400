//! The WeChat identity port: the mini-program's one-time codes exchanged for who the applicant
//! is (`openid`) and a verified phone number. The session key WeChat returns never leaves the
//! adapter; a phone number never comes from client-typed input.

use async_trait::async_trait;

/// The applicant as WeChat identifies them within our mini-program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeChatSession {
    /// Stable per-user id within our app.
    pub openid: String,
    /// Id across the platform's apps, where the account is bound.
    pub unionid: Option<String>,
}

/// A phone number WeChat verified for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPhone {
    /// Country calling code without `+` (`86` for the mainland).
    pub country_code: String,
    /// The number without the country code.
    pub number: String,
}

/// Why an exchange failed, by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeChatError {
    /// The code is invalid, used or expired (WeChat 40029 / 40163 / 1400001 ...): get a new one.
    #[error("the code is invalid, expired or already used")]
    InvalidCode,
    /// WeChat rate limit (45011): retry later.
    #[error("WeChat rate limit reached")]
    RateLimited,
    /// WeChat blocked a high-risk user (40226).
    #[error("WeChat refused this user as high-risk")]
    HighRiskUser,
    /// The answer was issued for another app (`watermark.appid` mismatch).
    #[error("the answer was issued for another mini-program")]
    WrongApp,
    /// WeChat is unreachable or answered something unreadable; retry.
    #[error("WeChat unavailable: {0}")]
    Unavailable(String),
    /// Any other WeChat error code.
    #[error("WeChat error {code}: {message}")]
    Other {
        /// WeChat's `errcode`.
        code: i64,
        /// WeChat's `errmsg`.
        message: String,
    },
}

/// The code exchanges of the WeChat server API.
#[async_trait]
pub trait WeChatIdentity: Send + Sync {
    /// Exchanges a `wx.login` code (`code2Session`).
    async fn login(&self, code: &str) -> Result<WeChatSession, WeChatError>;

    /// Exchanges a phone-number button code (`getPhoneNumber`).
    async fn phone_number(&self, code: &str) -> Result<VerifiedPhone, WeChatError>;
}
