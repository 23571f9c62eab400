//! The real WeChat server API adapter: `code2Session` (login) and `getPhoneNumber`.

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use puhui_ports::{VerifiedPhone, WeChatError, WeChatIdentity, WeChatSession};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::map_errcode;
use crate::{ConfigError, DEFAULT_TIMEOUT, check_url, describe, env_var, http_client};

/// The production WeChat API host.
pub const DEFAULT_BASE_URL: &str = "https://api.weixin.qq.com";

/// Renew a cached access token this long before WeChat says it expires, so a request never
/// starts with a token that dies in flight.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);

/// WeChat access tokens live this long when the answer does not say (the documented value).
const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 7200;

/// Codes longer than this are not WeChat codes; refusing them locally spares the rate limit.
const MAX_CODE_LEN: usize = 512;

/// The mini-program's credentials and the API host.
#[derive(Clone)]
pub struct WeChatConfig {
    /// The mini-program's app id (`wx...`); also what `watermark.appid` must equal.
    pub app_id: String,
    /// The app secret. Never logged: `Debug` redacts it.
    pub app_secret: String,
    /// API base URL without a trailing slash; tests point it at a local fake.
    pub base_url: String,
}

impl fmt::Debug for WeChatConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeChatConfig")
            .field("app_id", &self.app_id)
            .field("app_secret", &"<redacted>")
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl WeChatConfig {
    /// Reads `PUHUI_WECHAT_APP_ID`, `PUHUI_WECHAT_APP_SECRET` (both required) and
    /// `PUHUI_WECHAT_BASE_URL` (default [`DEFAULT_BASE_URL`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env_var)
    }

    /// [`Self::from_env`] over any variable source (tests cannot safely set process variables).
    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let app_id =
            get("PUHUI_WECHAT_APP_ID").ok_or(ConfigError::Missing("PUHUI_WECHAT_APP_ID"))?;
        let app_secret = get("PUHUI_WECHAT_APP_SECRET")
            .ok_or(ConfigError::Missing("PUHUI_WECHAT_APP_SECRET"))?;
        let base_url = get("PUHUI_WECHAT_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        check_url("PUHUI_WECHAT_BASE_URL", &base_url)?;
        Ok(WeChatConfig {
            app_id,
            app_secret,
            base_url,
        })
    }
}

/// An access token and when to stop using it.
struct CachedToken {
    value: String,
    refresh_at: Instant,
}

/// The WeChat server API: exchanges mini-program codes for an openid and a verified phone.
///
/// The session key `code2Session` returns is never deserialized, stored, logged or returned.
/// The access token `getPhoneNumber` needs is fetched once and cached in memory until shortly
/// before it expires (a warm Lambda reuses it), and refreshed once if WeChat rejects it.
pub struct WeChatApi {
    app_id: String,
    app_secret: String,
    base_url: String,
    http: reqwest::Client,
    // A tokio mutex held across the token fetch: concurrent requests wait for one fetch instead
    // of each spending the daily token quota (and each new token superseding the last).
    token: tokio::sync::Mutex<Option<CachedToken>>,
}

impl fmt::Debug for WeChatApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeChatApi")
            .field("app_id", &self.app_id)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl WeChatApi {
    /// The adapter with the default 5 s timeout per call.
    pub fn new(config: WeChatConfig) -> Result<Self, ConfigError> {
        Self::with_timeout(config, DEFAULT_TIMEOUT)
    }

    /// The adapter with a chosen timeout per HTTP call.
    pub fn with_timeout(config: WeChatConfig, timeout: Duration) -> Result<Self, ConfigError> {
        if config.app_id.is_empty() {
            return Err(ConfigError::Missing("PUHUI_WECHAT_APP_ID"));
        }
        if config.app_secret.is_empty() {
            return Err(ConfigError::Missing("PUHUI_WECHAT_APP_SECRET"));
        }
        check_url("PUHUI_WECHAT_BASE_URL", &config.base_url)?;
        Ok(WeChatApi {
            app_id: config.app_id,
            app_secret: config.app_secret,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            http: http_client(timeout)?,
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// [`WeChatConfig::from_env`] then [`Self::new`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::new(WeChatConfig::from_env()?)
    }

    /// A valid access token: the cached one unless it is due for renewal or is `rejected` (the
    /// token WeChat just refused), in which case a new one is fetched.
    async fn access_token(&self, rejected: Option<&str>) -> Result<String, WeChatError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref() {
            // If another request already replaced the rejected token, use its replacement.
            let refused = rejected == Some(token.value.as_str());
            if !refused && Instant::now() < token.refresh_at {
                return Ok(token.value.clone());
            }
        }
        *cached = None;
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// `GET /cgi-bin/token`.
    async fn fetch_token(&self) -> Result<CachedToken, WeChatError> {
        #[derive(Deserialize)]
        struct TokenAnswer {
            #[serde(default)]
            errcode: i64,
            #[serde(default)]
            errmsg: String,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let sent = self
            .http
            .get(format!("{}/cgi-bin/token", self.base_url))
            .query(&[
                ("grant_type", "client_credential"),
                ("appid", &self.app_id),
                ("secret", &self.app_secret),
            ])
            .send()
            .await;
        let answer: TokenAnswer = read_answer(sent, "token").await?;
        if answer.errcode != 0 {
            tracing::warn!(
                errcode = answer.errcode,
                errmsg = %answer.errmsg,
                "WeChat access token request failed"
            );
            return Err(map_errcode(answer.errcode, &answer.errmsg));
        }
        let value = answer
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| WeChatError::Unavailable("token answer has no access_token".into()))?;
        let lifetime = answer.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME_SECS);
        // Renew TOKEN_MARGIN early, but keep at least half the lifetime for short-lived tokens.
        let usable = lifetime
            .saturating_sub(TOKEN_MARGIN.as_secs())
            .max(lifetime / 2);
        tracing::debug!(expires_in = lifetime, "WeChat access token fetched");
        Ok(CachedToken {
            value,
            refresh_at: Instant::now() + Duration::from_secs(usable),
        })
    }

    /// `POST /wxa/business/getuserphonenumber` with one token.
    async fn request_phone(&self, token: &str, code: &str) -> Result<PhoneAnswer, WeChatError> {
        let sent = self
            .http
            .post(format!("{}/wxa/business/getuserphonenumber", self.base_url))
            .query(&[("access_token", token)])
            .json(&serde_json::json!({ "code": code }))
            .send()
            .await;
        read_answer(sent, "getPhoneNumber").await
    }

    /// The verified phone in a successful answer, if it was issued for our app.
    fn verified(&self, answer: PhoneAnswer) -> Result<VerifiedPhone, WeChatError> {
        let unreadable = |what: &str| WeChatError::Unavailable(format!("getPhoneNumber: {what}"));
        let info = answer
            .phone_info
            .ok_or_else(|| unreadable("answer has no phone_info"))?;
        // A missing watermark cannot be checked, so it is refused like a wrong one.
        let appid = info.watermark.and_then(|w| w.appid);
        if appid.as_deref() != Some(self.app_id.as_str()) {
            tracing::warn!(
                watermark_appid = appid.as_deref().unwrap_or("<none>"),
                "WeChat phone answer issued for another app; refused"
            );
            return Err(WeChatError::WrongApp);
        }
        let number = info.pure_phone_number.unwrap_or_default();
        let country_code = match info.country_code {
            Some(Value::String(s)) => s.trim_start_matches('+').to_owned(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(&number) || !digits(&country_code) {
            return Err(unreadable("phone_info is incomplete"));
        }
        Ok(VerifiedPhone {
            country_code,
            number,
        })
    }
}

/// The `getPhoneNumber` answer (errors and success share one shape).
#[derive(Deserialize)]
struct PhoneAnswer {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    phone_info: Option<PhoneInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PhoneInfo {
    // `phoneNumber` (with the country code for foreign numbers) is not read: the pure number
    // and the country code say the same without parsing.
    pure_phone_number: Option<String>,
    // A string in the documentation; a number is accepted too.
    country_code: Option<Value>,
    watermark: Option<Watermark>,
}

#[derive(Deserialize)]
struct Watermark {
    appid: Option<String>,
}

/// Refuses codes that cannot be WeChat codes without calling WeChat.
fn check_code(code: &str) -> Result<(), WeChatError> {
    if code.is_empty() || code.len() > MAX_CODE_LEN || code.chars().any(char::is_control) {
        return Err(WeChatError::InvalidCode);
    }
    Ok(())
}

/// Reads a WeChat JSON answer: transport failures, timeouts, non-2xx statuses and unreadable
/// bodies are all `Unavailable` (retrying may help; the caller cannot fix them).
async fn read_answer<T: DeserializeOwned>(
    sent: Result<reqwest::Response, reqwest::Error>,
    call: &str,
) -> Result<T, WeChatError> {
    let unavailable = |what: String| {
        tracing::warn!(call, error = %what, "WeChat call failed");
        WeChatError::Unavailable(format!("{call}: {what}"))
    };
    let response = sent.map_err(|e| unavailable(describe(e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(unavailable(format!("HTTP {}", status.as_u16())));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| unavailable(describe(e)))?;
    // The body is not quoted in the error: a code2Session answer holds the session key.
    serde_json::from_slice(&body).map_err(|_| unavailable("unreadable answer".into()))
}

#[async_trait]
impl WeChatIdentity for WeChatApi {
    async fn login(&self, code: &str) -> Result<WeChatSession, WeChatError> {
        // `session_key` is deliberately not a field: serde skips it, so it is never held,
        // logged or returned.
        #[derive(Deserialize)]
        struct Code2Session {
            #[serde(default)]
            errcode: i64,
            #[serde(default)]
            errmsg: String,
            openid: Option<String>,
            unionid: Option<String>,
        }
        check_code(code)?;
        let sent = self
            .http
            .get(format!("{}/sns/jscode2session", self.base_url))
            .query(&[
                ("appid", self.app_id.as_str()),
                ("secret", &self.app_secret),
                ("js_code", code),
                ("grant_type", "authorization_code"),
            ])
            .send()
            .await;
        let answer: Code2Session = read_answer(sent, "code2Session").await?;
        if answer.errcode != 0 {
            tracing::warn!(
                errcode = answer.errcode,
                errmsg = %answer.errmsg,
                "WeChat code2Session failed"
            );
            return Err(map_errcode(answer.errcode, &answer.errmsg));
        }
        let openid = answer
            .openid
            .filter(|o| !o.is_empty())
            .ok_or_else(|| WeChatError::Unavailable("code2Session: answer has no openid".into()))?;
        Ok(WeChatSession {
            openid,
            unionid: answer.unionid.filter(|u| !u.is_empty()),
        })
    }

    async fn phone_number(&self, code: &str) -> Result<VerifiedPhone, WeChatError> {
        check_code(code)?;
        let mut token = self.access_token(None).await?;
        let mut refreshed = false;
        loop {
            let answer = self.request_phone(&token, code).await?;
            match answer.errcode {
                0 => return self.verified(answer),
                // 40001 invalid / 42001 expired token (revoked early, or another process fetched
                // a newer one): WeChat refuses before looking at the code, so retry once.
                40001 | 42001 if !refreshed => {
                    tracing::info!(errcode = answer.errcode, "WeChat refused the access token");
                    refreshed = true;
                    token = self.access_token(Some(&token)).await?;
                }
                errcode => {
                    tracing::warn!(errcode, errmsg = %answer.errmsg, "WeChat getPhoneNumber failed");
                    return Err(map_errcode(errcode, &answer.errmsg));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn config_reads_the_variables_with_a_default_base_url() {
        let c = WeChatConfig::from_lookup(lookup(&[
            ("PUHUI_WECHAT_APP_ID", "wx123"),
            ("PUHUI_WECHAT_APP_SECRET", "s3cr3t"),
        ]))
        .unwrap();
        assert_eq!(c.app_id, "wx123");
        assert_eq!(c.app_secret, "s3cr3t");
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert!(!format!("{c:?}").contains("s3cr3t"));

        let c = WeChatConfig::from_lookup(lookup(&[
            ("PUHUI_WECHAT_APP_ID", "wx123"),
            ("PUHUI_WECHAT_APP_SECRET", "s3cr3t"),
            ("PUHUI_WECHAT_BASE_URL", "http://127.0.0.1:9999"),
        ]))
        .unwrap();
        assert_eq!(c.base_url, "http://127.0.0.1:9999");
    }

    #[test]
    fn config_refuses_missing_or_bad_values() {
        assert!(matches!(
            WeChatConfig::from_lookup(lookup(&[("PUHUI_WECHAT_APP_SECRET", "x")])),
            Err(ConfigError::Missing("PUHUI_WECHAT_APP_ID"))
        ));
        assert!(matches!(
            WeChatConfig::from_lookup(lookup(&[("PUHUI_WECHAT_APP_ID", "wx")])),
            Err(ConfigError::Missing("PUHUI_WECHAT_APP_SECRET"))
        ));
        let err = WeChatConfig::from_lookup(lookup(&[
            ("PUHUI_WECHAT_APP_ID", "wx"),
            ("PUHUI_WECHAT_APP_SECRET", "x"),
            ("PUHUI_WECHAT_BASE_URL", "ftp://example"),
        ]))
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "PUHUI_WECHAT_BASE_URL",
                ..
            }
        ));
    }
}
