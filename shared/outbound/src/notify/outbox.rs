//! The local stand-in for outbound messages: a JSON-lines file to read instead of a phone.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::SecondsFormat;
use puhui_ports::{Clock, Notification, Notifier, NotifyError, Recipient, SystemClock};
use tokio::io::AsyncWriteExt;

/// Appends one JSON line per notification to a file, for the runner and the demo:
/// `{"key", "channel", "recipient", "template", "text", "sent_at"}`.
///
/// `recipient` is [`Recipient::masked`] (`sms:138****5678`, `webhook:nbcb`): the file is read by
/// people and ends up in terminals and bug reports, so it never holds a raw phone number. The
/// template `params` are left out for the same reason (they are free-form).
pub struct OutboxFileNotifier {
    path: PathBuf,
    clock: Arc<dyn Clock>,
    // Serializes appends so lines of concurrent sends never interleave.
    lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for OutboxFileNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxFileNotifier")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl OutboxFileNotifier {
    /// Writes to `path` (created with its parent directories on first send), stamped with the
    /// system clock.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_clock(path, Arc::new(SystemClock))
    }

    /// Writes to `path`, stamping `sent_at` from `clock` (the demo moves time by hand).
    pub fn with_clock(path: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> Self {
        OutboxFileNotifier {
            path: path.into(),
            clock,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn append(&self, line: &[u8]) -> std::io::Result<()> {
        let _guard = self.lock.lock().await;
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent).await?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await?;
        // One write of the whole line, so even another process appending sees whole lines.
        file.write_all(line).await?;
        file.flush().await
    }
}

#[async_trait]
impl Notifier for OutboxFileNotifier {
    async fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        let channel = match n.recipient {
            Recipient::Sms { .. } => "sms",
            Recipient::BankWebhook { .. } => "bank_webhook",
            Recipient::PlatformOps => "platform_ops",
        };
        let entry = serde_json::json!({
            "key": n.key,
            "channel": channel,
            "recipient": n.recipient.masked(),
            "template": n.template,
            "text": n.text,
            "sent_at": self.clock.now().to_rfc3339_opts(SecondsFormat::Millis, true),
        });
        let mut line = serde_json::to_vec(&entry)
            .map_err(|e| NotifyError::Rejected(format!("cannot encode the message: {e}")))?;
        line.push(b'\n');
        self.append(&line).await.map_err(|e| {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write the outbox");
            NotifyError::Unavailable(format!("cannot write the outbox: {e}"))
        })
    }
}

/// The outbox file's entries, oldest first, for the demo to print. A missing or unreadable file
/// reads as empty and unparsable lines are skipped: this is a display helper, not a store.
pub fn read_outbox(path: impl AsRef<Path>) -> Vec<serde_json::Value> {
    let Ok(text) = std::fs::read_to_string(path.as_ref()) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}
