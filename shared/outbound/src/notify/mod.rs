//! Adapters of the [`puhui_ports::Notifier`] port: SMS gateway and bank webhooks over signed HTTP,
//! a router between them, and local stand-ins (outbox file, memory).

mod http;
mod memory;
mod outbox;
mod routing;
mod sms;
mod webhook;

pub use memory::MemoryNotifier;
pub use outbox::{OutboxFileNotifier, read_outbox};
pub use routing::RoutingNotifier;
pub use sms::{HttpSmsNotifier, SmsGatewayConfig};
pub use webhook::{WebhookConfig, WebhookNotifier};

/// The header carrying [`puhui_ports::Notification::key`], so a receiver can drop redeliveries.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
