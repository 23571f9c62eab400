//! Puhui outbound adapters: the calls Puhui makes to other systems, behind the
//! [`puhui_ports::WeChatIdentity`] and [`puhui_ports::Notifier`] ports.
//!
//! Real adapters (HTTP, via `reqwest` with a short timeout):
//! - [`wechat::WeChatApi`]: `code2Session` and `getPhoneNumber` against the WeChat server API,
//!   with the access token cached in memory.
//! - [`notify::HttpSmsNotifier`]: SMS through the configured gateway, signed with [`sign`].
//! - [`notify::WebhookNotifier`]: bank webhooks, one URL per bank, signed with [`sign`].
//! - [`notify::RoutingNotifier`]: one notifier that routes by recipient channel.
//!
//! Local stand-ins (no network; for the runner, tests and the demo):
//! - [`wechat::DevWeChat`]: deterministic `dev:` codes.
//! - [`notify::OutboxFileNotifier`]: one JSON line per message in a file, phones masked.
//! - [`notify::MemoryNotifier`]: records messages in memory, can be told to fail.
//!
//! Nothing here logs secrets, WeChat session keys, access tokens or raw phone numbers.

pub mod notify;
pub mod signature;
pub mod wechat;

pub use signature::{SIGNATURE_HEADER, sign, verify};

/// Why an adapter could not be configured; reported at start so a function never runs
/// half-configured.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// A variable is set to something unusable. The reason never repeats a secret.
    #[error("{var} is invalid: {reason}")]
    Invalid {
        /// The variable (or setting) name.
        var: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
}

/// Default timeout of every outbound HTTP call: a Lambda waiting on a stuck gateway costs money
/// and holds the caller, and the callers retry anyway.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads an environment variable, treating empty as unset (deployment templates often set
/// variables to "" instead of leaving them out).
pub(crate) fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Checks that `url` is an absolute http(s) URL; `var` names the setting in the error.
pub(crate) fn check_url(var: &'static str, url: &str) -> Result<reqwest::Url, ConfigError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| ConfigError::Invalid {
        var,
        reason: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ConfigError::Invalid {
            var,
            reason: format!("scheme must be http or https, got {}", parsed.scheme()),
        });
    }
    Ok(parsed)
}

/// Builds the HTTP client every adapter uses.
pub(crate) fn http_client(timeout: std::time::Duration) -> Result<reqwest::Client, ConfigError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(std::time::Duration::from_secs(3)))
        // A redirect would re-send a signed body (or a token in the query) to another place;
        // the endpoints we call never redirect, so a redirect is treated as an error answer.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ConfigError::HttpClient(describe(e)))
}

/// A transport error as text, without the URL: WeChat URLs carry the app secret and access token
/// in their query, and webhook URLs may carry a bank's token.
pub(crate) fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect error"
    } else {
        "transport error"
    };
    let e = e.without_url();
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
