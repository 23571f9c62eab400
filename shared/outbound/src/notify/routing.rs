//! One notifier in front of the per-channel ones.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use puhui_ports::{Notification, Notifier, NotifyError, Recipient};

/// Routes each notification by its recipient's channel: SMS to one notifier, bank and
/// platform-operator webhooks to the other. The use cases hold one `Notifier` and need not know how channels are wired.
#[derive(Clone)]
pub struct RoutingNotifier {
    sms: Arc<dyn Notifier>,
    webhook: Arc<dyn Notifier>,
}

impl fmt::Debug for RoutingNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutingNotifier").finish_non_exhaustive()
    }
}

impl RoutingNotifier {
    /// Routes [`Recipient::Sms`] to `sms`, [`Recipient::BankWebhook`] and
    /// [`Recipient::PlatformOps`] to `webhook`.
    pub fn new(sms: Arc<dyn Notifier>, webhook: Arc<dyn Notifier>) -> Self {
        RoutingNotifier { sms, webhook }
    }
}

#[async_trait]
impl Notifier for RoutingNotifier {
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        // An exhaustive match: a new channel in the port will not compile until it is routed.
        match notification.recipient {
            Recipient::Sms { .. } => self.sms.send(notification).await,
            Recipient::BankWebhook { .. } | Recipient::PlatformOps => {
                self.webhook.send(notification).await
            }
        }
    }
}
