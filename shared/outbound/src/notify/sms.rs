//! SMS through Puhui's SMS gateway.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use puhui_ports::{Notification, Notifier, NotifyError, Recipient};

use super::http::post_signed;
use crate::{ConfigError, DEFAULT_TIMEOUT, check_url, env_var, http_client};

/// Where the SMS gateway is and the secret requests are signed with.
#[derive(Clone)]
pub struct SmsGatewayConfig {
    /// The gateway endpoint messages are POSTed to.
    pub url: String,
    /// The HMAC secret shared with the gateway. Never logged: `Debug` redacts it.
    pub secret: String,
}

impl fmt::Debug for SmsGatewayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry an access token in its query; only the host is shown.
        let host = reqwest::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned));
        f.debug_struct("SmsGatewayConfig")
            .field("host", &host)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl SmsGatewayConfig {
    /// Reads `PUHUI_SMS_GATEWAY_URL` and `PUHUI_SMS_GATEWAY_SECRET` (both required).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env_var)
    }

    /// [`Self::from_env`] over any variable source.
    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let url =
            get("PUHUI_SMS_GATEWAY_URL").ok_or(ConfigError::Missing("PUHUI_SMS_GATEWAY_URL"))?;
        let secret = get("PUHUI_SMS_GATEWAY_SECRET")
            .ok_or(ConfigError::Missing("PUHUI_SMS_GATEWAY_SECRET"))?;
        check_url("PUHUI_SMS_GATEWAY_URL", &url)?;
        Ok(SmsGatewayConfig { url, secret })
    }
}

/// Sends [`Recipient::Sms`] notifications to the SMS gateway as signed JSON:
/// `{"phone", "template", "params", "text", "key"}` with `X-Puhui-Signature` and
/// `Idempotency-Key` headers. 2xx is delivered; 4xx `Rejected`; 5xx, 429 and transport errors
/// `Unavailable`. Other recipients are `Rejected` (routing is [`super::RoutingNotifier`]'s job).
pub struct HttpSmsNotifier {
    url: String,
    secret: String,
    http: reqwest::Client,
}

impl fmt::Debug for HttpSmsNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSmsNotifier").finish_non_exhaustive()
    }
}

impl HttpSmsNotifier {
    /// The notifier with the default 5 s timeout.
    pub fn new(config: SmsGatewayConfig) -> Result<Self, ConfigError> {
        Self::with_timeout(config, DEFAULT_TIMEOUT)
    }

    /// The notifier with a chosen timeout per request.
    pub fn with_timeout(config: SmsGatewayConfig, timeout: Duration) -> Result<Self, ConfigError> {
        check_url("PUHUI_SMS_GATEWAY_URL", &config.url)?;
        if config.secret.is_empty() {
            return Err(ConfigError::Missing("PUHUI_SMS_GATEWAY_SECRET"));
        }
        Ok(HttpSmsNotifier {
            url: config.url,
            secret: config.secret,
            http: http_client(timeout)?,
        })
    }

    /// [`SmsGatewayConfig::from_env`] then [`Self::new`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::new(SmsGatewayConfig::from_env()?)
    }
}

#[async_trait]
impl Notifier for HttpSmsNotifier {
    async fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        let Recipient::Sms { phone } = &n.recipient else {
            return Err(NotifyError::Rejected(format!(
                "the SMS notifier cannot deliver to {}",
                n.recipient.masked()
            )));
        };
        // The raw number goes in the body only: the gateway needs it; logs get the masked form.
        let body = serde_json::json!({
            "phone": phone.expose(),
            "template": n.template,
            "params": n.params,
            "text": n.text,
            "key": n.key,
        });
        let body = serde_json::to_vec(&body)
            .map_err(|e| NotifyError::Rejected(format!("cannot encode the message: {e}")))?;
        post_signed(
            &self.http,
            &self.url,
            self.secret.as_bytes(),
            body,
            &n.key,
            &n.recipient.masked(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_from_variables() {
        let vars = |url: Option<&str>, secret: Option<&str>| {
            let (url, secret) = (url.map(str::to_owned), secret.map(str::to_owned));
            SmsGatewayConfig::from_lookup(move |k| match k {
                "PUHUI_SMS_GATEWAY_URL" => url.clone(),
                "PUHUI_SMS_GATEWAY_SECRET" => secret.clone(),
                _ => None,
            })
        };
        let c = vars(Some("http://sms.local/send?token=t0k"), Some("shh")).unwrap();
        assert_eq!(c.url, "http://sms.local/send?token=t0k");
        assert_eq!(c.secret, "shh");
        let debug = format!("{c:?}");
        assert!(!debug.contains("shh") && !debug.contains("t0k"), "{debug}");
        assert!(matches!(
            vars(None, Some("shh")),
            Err(ConfigError::Missing("PUHUI_SMS_GATEWAY_URL"))
        ));
        assert!(matches!(
            vars(Some("http://sms.local"), None),
            Err(ConfigError::Missing("PUHUI_SMS_GATEWAY_SECRET"))
        ));
        assert!(matches!(
            vars(Some("sms.local"), Some("shh")),
            Err(ConfigError::Invalid { .. })
        ));
    }
}
