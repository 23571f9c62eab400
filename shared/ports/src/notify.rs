//! The notifier port: messages to applicants (SMS), banks (webhook) and the platform's
//! operators (their webhook). Adapters deliver; the
//! use cases decide what to say and make sending idempotent by [`Notification::key`].

use async_trait::async_trait;
use puhui_domain::{BankId, Phone};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Who a notification goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub enum Recipient {
    /// An applicant's verified mobile, by SMS. `Debug` and `Display` of [`Phone`] are masked.
    Sms {
        /// The verified number.
        phone: Phone,
    },
    /// A bank's systems, by its configured webhook.
    BankWebhook {
        /// The bank.
        bank_id: BankId,
    },
    /// The platform's operators (data quality, platform alerts), by their configured webhook.
    PlatformOps,
}

impl Recipient {
    /// The recipient as logs may show it (phone masked).
    pub fn masked(&self) -> String {
        match self {
            Recipient::Sms { phone } => format!("sms:{}", phone.masked()),
            Recipient::BankWebhook { bank_id } => format!("webhook:{bank_id}"),
            Recipient::PlatformOps => "ops".to_owned(),
        }
    }
}

/// One rendered message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Deterministic key (`claimed:<demand>:<bank>`): the same event always yields the same key,
    /// so a redelivered message is sent once.
    pub key: String,
    /// Where it goes.
    pub recipient: Recipient,
    /// Template id (`demand_received`, `offered`, `claimed`, `progress`, `reminder`, ...).
    pub template: String,
    /// Template parameters (what an SMS gateway's template or a webhook consumer needs).
    pub params: Map<String, Value>,
    /// The rendered text (Chinese, as the recipient reads it).
    pub text: String,
}

/// Why a notification was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The recipient or message was refused for good (unknown bank, number blocked); retrying
    /// will not help.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The gateway is down, slow or throttling; retrying may succeed.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Delivers notifications.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers one notification (at least once; the caller deduplicates by key).
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError>;
}
