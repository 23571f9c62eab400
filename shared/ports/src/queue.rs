//! The queue port (SQS semantics): at-least-once delivery, visibility timeout, receive count,
//! and a dead-letter queue after too many receives.

use std::time::Duration;

use async_trait::async_trait;

use crate::PortResult;

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    /// Body (JSON by convention).
    pub body: String,
    /// Deduplication id (FIFO queues, ignored by standard ones): a second message with the same
    /// id within five minutes is accepted but not delivered again.
    pub dedup_id: Option<String>,
    /// Ordering group: required on FIFO queues (a message without one is `Invalid`), ignored by
    /// standard queues.
    pub group_id: Option<String>,
}

impl QueueMessage {
    /// A message with a body only.
    pub fn new(body: impl Into<String>) -> Self {
        QueueMessage {
            body: body.into(),
            dedup_id: None,
            group_id: None,
        }
    }

    /// With a deduplication id.
    pub fn dedup(mut self, id: impl Into<String>) -> Self {
        self.dedup_id = Some(id.into());
        self
    }
}

/// A message handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// Message id assigned by the queue.
    pub id: String,
    /// Body.
    pub body: String,
    /// Handle to delete (acknowledge) this delivery.
    pub receipt: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// Largest number of messages in one batch send (SQS's limit).
pub const MAX_BATCH: usize = 10;

/// One queue.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends one message; returns its id.
    async fn send(&self, message: QueueMessage) -> PortResult<String>;

    /// Sends up to [`MAX_BATCH`] messages; returns, per message, its id or why it failed.
    async fn send_batch(&self, messages: Vec<QueueMessage>) -> PortResult<Vec<PortResult<String>>>;

    /// Receives up to `max` visible messages, hiding them for `visibility`. A message received
    /// more often than the queue's limit moves to its dead-letter queue instead.
    async fn receive(&self, max: u32, visibility: Duration) -> PortResult<Vec<ReceivedMessage>>;

    /// Acknowledges a delivery so the message is not delivered again.
    async fn delete(&self, receipt: &str) -> PortResult<()>;
}
