//! notify: delivers queued notifications through the notifier, once per notification key.
//!
//! A delivery is claimed with a conditional write that expires (a lease), so two deliveries of
//! the same message cannot both send, and a crashed attempt does not block the retry forever.
//! After sending, the record is kept for a month: a redelivered message within that window is
//! recognised and skipped.

use std::sync::Arc;
use std::time::Duration;

use puhui_domain::Error;
use puhui_ports::{
    Clock, Condition, Item, Key, Notification, Notifier, NotifyError, PortError, Table,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// What happened to one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Sent now.
    Sent,
    /// Sent before (a redelivery); nothing done.
    AlreadySent,
}

/// The delivery use case.
pub struct NotificationService {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    notifier: Arc<dyn Notifier>,
    lease: Duration,
    keep: Duration,
}

impl NotificationService {
    /// Deliveries leased for 60 s and remembered for 30 days.
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>, notifier: Arc<dyn Notifier>) -> Self {
        NotificationService {
            table,
            clock,
            notifier,
            lease: Duration::from_secs(60),
            keep: Duration::from_secs(30 * 24 * 3600),
        }
    }

    /// Sends `n` unless it was sent already. Errors (gateway down, recipient refused) leave the
    /// notification unsent, for the queue to retry and finally dead-letter.
    pub async fn deliver(&self, n: &Notification) -> Result<Delivery, Error> {
        let key = Key::new(
            format!("NOTIFICATION#{}", hex::encode(Sha256::digest(&n.key))),
            "DELIVERY",
        );
        let now = self.clock.now().timestamp();
        let mut lease = Item::new(
            key.clone(),
            obj(json!({"state": "sending", "template": n.template})),
        );
        lease.expires_at = Some(now + self.lease.as_secs() as i64);
        match self
            .table
            .put(lease, Some(Condition::NotExistsOrExpired { now }))
            .await
        {
            Ok(()) => {}
            Err(PortError::ConditionFailed(_)) => {
                let state = self.table.get(&key).await?.and_then(|i| {
                    i.attrs
                        .get("state")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                });
                return match state.as_deref() {
                    Some("sent") => Ok(Delivery::AlreadySent),
                    _ => Err(Error::Unavailable(
                        "another delivery of this notification is in progress".into(),
                    )),
                };
            }
            Err(e) => return Err(e.into()),
        }
        match self.notifier.send(n).await {
            Ok(()) => {
                let mut done = Item::new(
                    key,
                    obj(
                        json!({"state": "sent", "template": n.template, "sent_at": self.clock.now()}),
                    ),
                );
                done.expires_at = Some(now + self.keep.as_secs() as i64);
                if let Err(e) = self.table.put(done, None).await {
                    // Sent already; a failed record only risks a duplicate after the lease.
                    tracing::warn!(error = %e, "could not record the delivery");
                }
                tracing::info!(template = %n.template, to = %n.recipient.masked(), "notification sent");
                Ok(Delivery::Sent)
            }
            Err(e) => {
                if let Err(del) = self.table.delete(&key, None).await {
                    tracing::warn!(error = %del, "could not release the delivery lease");
                }
                tracing::warn!(template = %n.template, to = %n.recipient.masked(), error = %e, "notification not sent");
                Err(match e {
                    NotifyError::Rejected(m) => {
                        Error::Internal(format!("notification rejected: {m}"))
                    }
                    NotifyError::Unavailable(m) => Error::Unavailable(m),
                })
            }
        }
    }
}

fn obj(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}
