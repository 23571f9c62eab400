//! Webhooks: each bank's systems receive its notifications at a URL of its own; the platform's
//! operators receive theirs (platform alerts) at one more.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use puhui_domain::BankId;
use puhui_ports::{Notification, Notifier, NotifyError, Recipient};

use super::http::post_signed;
use crate::{ConfigError, DEFAULT_TIMEOUT, check_url, env_var, http_client};

/// Each bank's webhook URL and the secret requests are signed with.
#[derive(Clone)]
pub struct WebhookConfig {
    /// Webhook URL per bank; a bank without one cannot be notified.
    pub urls: BTreeMap<BankId, String>,
    /// The HMAC secret banks verify `X-Puhui-Signature` with. Never logged: `Debug` redacts it.
    pub secret: String,
    /// The platform operators' webhook (`PUHUI_OPS_WEBHOOK`, optional: without it their
    /// notifications are refused and stay on record as not sent).
    pub ops_url: Option<String>,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // URLs may carry a bank's access token; only which banks are configured is shown.
        f.debug_struct("WebhookConfig")
            .field("banks", &self.urls.keys().collect::<Vec<_>>())
            .field("secret", &"<redacted>")
            .field("ops", &self.ops_url.is_some())
            .finish()
    }
}

impl WebhookConfig {
    /// Reads `PUHUI_BANK_WEBHOOKS` (a JSON object of bank id to URL, e.g.
    /// `{"nbcb": "https://hooks.nbcb.example/puhui"}`; `{}` for none) and `PUHUI_WEBHOOK_SECRET`.
    /// Both are required, so a deployment that forgot them fails at start, not per message.
    /// `PUHUI_OPS_WEBHOOK`, the operators' URL, is optional.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env_var)
    }

    /// [`Self::from_env`] over any variable source.
    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        const VAR: &str = "PUHUI_BANK_WEBHOOKS";
        let raw = get(VAR).ok_or(ConfigError::Missing(VAR))?;
        let secret =
            get("PUHUI_WEBHOOK_SECRET").ok_or(ConfigError::Missing("PUHUI_WEBHOOK_SECRET"))?;
        // Only the position is reported: serde's message could quote a URL with a token in it.
        let parsed: BTreeMap<String, String> =
            serde_json::from_str(&raw).map_err(|e| ConfigError::Invalid {
                var: VAR,
                reason: format!(
                    "expected a JSON object of bank id to URL (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            })?;
        let mut urls = BTreeMap::new();
        for (bank, url) in parsed {
            let bank_id = BankId::parse(&bank).map_err(|e| ConfigError::Invalid {
                var: VAR,
                reason: format!("bank id {bank:?}: {e}"),
            })?;
            check_url(VAR, &url)?;
            urls.insert(bank_id, url);
        }
        const OPS: &str = "PUHUI_OPS_WEBHOOK";
        let ops_url = get(OPS).filter(|u| !u.is_empty());
        if let Some(url) = &ops_url {
            check_url(OPS, url)?;
        }
        Ok(WebhookConfig {
            urls,
            secret,
            ops_url,
        })
    }
}

/// Sends [`Recipient::BankWebhook`] notifications to the bank's configured URL as signed JSON:
/// `{"key", "template", "params", "text", "bank_id"}` with `X-Puhui-Signature` and
/// `Idempotency-Key` headers, and [`Recipient::PlatformOps`] ones to the operators' URL (the
/// same body with `"recipient": "platform_ops"` instead of `bank_id`). A recipient without a URL
/// is `Rejected`; statuses map as for [`super::HttpSmsNotifier`]. SMS recipients are `Rejected`.
pub struct WebhookNotifier {
    urls: BTreeMap<BankId, String>,
    ops_url: Option<String>,
    secret: String,
    http: reqwest::Client,
}

impl fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("banks", &self.urls.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl WebhookNotifier {
    /// The notifier with the default 5 s timeout.
    pub fn new(config: WebhookConfig) -> Result<Self, ConfigError> {
        Self::with_timeout(config, DEFAULT_TIMEOUT)
    }

    /// The notifier with a chosen timeout per request.
    pub fn with_timeout(config: WebhookConfig, timeout: Duration) -> Result<Self, ConfigError> {
        for url in config.urls.values() {
            check_url("PUHUI_BANK_WEBHOOKS", url)?;
        }
        if let Some(url) = &config.ops_url {
            check_url("PUHUI_OPS_WEBHOOK", url)?;
        }
        if config.secret.is_empty() {
            return Err(ConfigError::Missing("PUHUI_WEBHOOK_SECRET"));
        }
        Ok(WebhookNotifier {
            urls: config.urls,
            ops_url: config.ops_url,
            secret: config.secret,
            http: http_client(timeout)?,
        })
    }

    /// [`WebhookConfig::from_env`] then [`Self::new`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::new(WebhookConfig::from_env()?)
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        let mut body = serde_json::json!({
            "key": n.key,
            "template": n.template,
            "params": n.params,
            "text": n.text,
        });
        let url = match &n.recipient {
            Recipient::BankWebhook { bank_id } => {
                body["bank_id"] = bank_id.as_str().into();
                self.urls.get(bank_id)
            }
            Recipient::PlatformOps => {
                body["recipient"] = "platform_ops".into();
                self.ops_url.as_ref()
            }
            Recipient::Sms { .. } => {
                return Err(NotifyError::Rejected(format!(
                    "the webhook notifier cannot deliver to {}",
                    n.recipient.masked()
                )));
            }
        };
        let Some(url) = url else {
            let to = n.recipient.masked();
            tracing::warn!(key = %n.key, to = %to, "no webhook configured for the recipient");
            return Err(NotifyError::Rejected(format!(
                "no webhook configured for {to}"
            )));
        };
        let body = serde_json::to_vec(&body)
            .map_err(|e| NotifyError::Rejected(format!("cannot encode the message: {e}")))?;
        post_signed(
            &self.http,
            url,
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

    fn config(webhooks: Option<&str>, secret: Option<&str>) -> Result<WebhookConfig, ConfigError> {
        let (webhooks, secret) = (webhooks.map(str::to_owned), secret.map(str::to_owned));
        WebhookConfig::from_lookup(move |k| match k {
            "PUHUI_BANK_WEBHOOKS" => webhooks.clone(),
            "PUHUI_WEBHOOK_SECRET" => secret.clone(),
            _ => None,
        })
    }

    #[test]
    fn config_parses_the_bank_map() {
        let c = config(
            Some(
                r#"{"nbcb": "http://127.0.0.1:1/hook?token=t0k", "czbank": "https://h.example/x"}"#,
            ),
            Some("shh"),
        )
        .unwrap();
        assert_eq!(c.urls.len(), 2);
        assert_eq!(
            c.urls[&BankId::parse("nbcb").unwrap()],
            "http://127.0.0.1:1/hook?token=t0k"
        );
        let debug = format!("{c:?}");
        assert!(debug.contains("nbcb") && !debug.contains("t0k") && !debug.contains("shh"));
        assert!(config(Some("{}"), Some("shh")).unwrap().urls.is_empty());
    }

    #[test]
    fn config_refuses_bad_values() {
        assert!(matches!(
            config(None, Some("shh")),
            Err(ConfigError::Missing("PUHUI_BANK_WEBHOOKS"))
        ));
        assert!(matches!(
            config(Some("{}"), None),
            Err(ConfigError::Missing("PUHUI_WEBHOOK_SECRET"))
        ));
        for bad in [
            r#"["http://x"]"#,
            r#"{"NBCB": "http://x"}"#,
            r#"{"nbcb": "not a url"}"#,
            r#"{"nbcb": 5}"#,
        ] {
            assert!(
                matches!(
                    config(Some(bad), Some("shh")),
                    Err(ConfigError::Invalid { .. })
                ),
                "{bad}"
            );
        }
    }
}
