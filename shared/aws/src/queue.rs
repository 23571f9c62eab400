//! [`SqsQueue`]: the queue port on one SQS queue (standard or FIFO).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageSystemAttributeName, SendMessageBatchRequestEntry};
use puhui_ports::queue::MAX_BATCH;
use puhui_ports::{PortError, PortResult, Queue, QueueMessage, ReceivedMessage};

use crate::errors::{build_error, sdk_error};

/// Most messages one ReceiveMessage returns (SQS's limit).
const MAX_RECEIVE: u32 = 10;
/// Longest visibility timeout SQS accepts.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

/// One SQS queue, by URL; a URL ending in `.fifo` is a FIFO queue.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    url: String,
    fifo: bool,
}

impl SqsQueue {
    /// The queue at `queue_url`, reached through `client`.
    pub fn new(client: Client, queue_url: String) -> SqsQueue {
        let fifo = queue_url.ends_with(".fifo");
        SqsQueue {
            client,
            url: queue_url,
            fifo,
        }
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Deduplication and group ids: FIFO queues only (standard queues refuse them), where a
    /// group is required, as in SQS. Without a deduplication id a FIFO queue needs
    /// content-based deduplication.
    fn fifo_ids(&self, m: &QueueMessage) -> PortResult<(Option<String>, Option<String>)> {
        if !self.fifo {
            return Ok((None, None));
        }
        let group = m
            .group_id
            .clone()
            .ok_or_else(|| PortError::Invalid("a FIFO queue needs a message group id".into()))?;
        Ok((m.dedup_id.clone(), Some(group)))
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, message: QueueMessage) -> PortResult<String> {
        let (dedup, group) = self.fifo_ids(&message)?;
        let out = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(message.body)
            .set_message_deduplication_id(dedup)
            .set_message_group_id(group)
            .send()
            .await
            .map_err(|e| sdk_error("SendMessage", e))?;
        out.message_id
            .ok_or_else(|| PortError::Backend("SendMessage returned no message id".into()))
    }

    async fn send_batch(&self, messages: Vec<QueueMessage>) -> PortResult<Vec<PortResult<String>>> {
        if messages.len() > MAX_BATCH {
            return Err(PortError::Invalid(format!(
                "a batch has at most {MAX_BATCH} messages, not {}",
                messages.len()
            )));
        }
        if messages.is_empty() {
            return Ok(Vec::new()); // SQS refuses empty batches; there is nothing to send.
        }
        let mut entries = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            let (dedup, group) = self.fifo_ids(m)?;
            let entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(&m.body)
                .set_message_deduplication_id(dedup)
                .set_message_group_id(group)
                .build()
                .map_err(build_error)?;
            entries.push(entry);
        }
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sdk_error("SendMessageBatch", e))?;
        let mut results: Vec<PortResult<String>> = (0..messages.len())
            .map(|_| {
                Err(PortError::Backend(
                    "SendMessageBatch: no result for this entry".into(),
                ))
            })
            .collect();
        for ok in out.successful() {
            if let Some(slot) = ok
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|i| results.get_mut(i))
            {
                *slot = Ok(ok.message_id().to_owned());
            }
        }
        for failed in out.failed() {
            if let Some(slot) = failed
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|i| results.get_mut(i))
            {
                let text = format!(
                    "SendMessageBatch: {}: {}",
                    failed.code(),
                    failed.message().unwrap_or("")
                );
                *slot = Err(if failed.sender_fault() {
                    PortError::Invalid(text)
                } else {
                    PortError::Unavailable(text)
                });
            }
        }
        Ok(results)
    }

    async fn receive(&self, max: u32, visibility: Duration) -> PortResult<Vec<ReceivedMessage>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        if visibility > MAX_VISIBILITY {
            return Err(PortError::Invalid(format!(
                "visibility timeout {visibility:?} is above SQS's 12 hours"
            )));
        }
        // Whole seconds, rounded up so a message is never visible before `visibility` passed.
        let secs = visibility.as_secs() + u64::from(visibility.subsec_nanos() > 0);
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(i32::try_from(max.min(MAX_RECEIVE)).unwrap_or(10))
            .visibility_timeout(i32::try_from(secs).unwrap_or(i32::MAX))
            // Short polling: a long poll could outlast a short visibility timeout and hand the
            // caller a message it has just been given.
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| sdk_error("ReceiveMessage", e))?;
        out.messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let receive_count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                let missing = |what: &str| {
                    PortError::Backend(format!("ReceiveMessage returned a message without {what}"))
                };
                Ok(ReceivedMessage {
                    id: m.message_id.ok_or_else(|| missing("an id"))?,
                    body: m.body.unwrap_or_default(),
                    receipt: m
                        .receipt_handle
                        .ok_or_else(|| missing("a receipt handle"))?,
                    receive_count,
                })
            })
            .collect()
    }

    async fn delete(&self, receipt: &str) -> PortResult<()> {
        if receipt.is_empty() {
            return Err(PortError::Invalid("empty receipt handle".into()));
        }
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteMessage", e))?;
        Ok(())
    }
}
