//! SQS batch processing with partial failures (after Powertools for AWS Lambda): each record is
//! handled on its own; failures (errors and panics) are reported by message id so SQS retries
//! only those, and a message that keeps failing reaches the dead-letter queue by the redrive
//! policy. On FIFO queues processing stops at the first failure and every later record is
//! reported too, so order within a group is kept.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::FutureExt;

/// How records relate to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchMode {
    /// Independent records, handled concurrently.
    Standard,
    /// Ordered records (FIFO queue): handled in order; the first failure fails the rest.
    Fifo,
}

/// A batch that cannot be reported record by record (a failed record without a message id);
/// the whole batch must be retried.
#[derive(Debug, thiserror::Error)]
#[error("record {index} failed and has no message id; the whole batch must be retried")]
pub struct WholeBatchFailed {
    /// Position of the record in the batch.
    pub index: usize,
}

/// Handles every record with `handler` and returns the partial-failure response.
pub async fn process_batch<F, Fut, E>(
    event: SqsEvent,
    mode: BatchMode,
    handler: F,
) -> Result<SqsBatchResponse, WholeBatchFailed>
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let records = event.records;
    let ids: Vec<Option<String>> = records.iter().map(|r| r.message_id.clone()).collect();
    let run = |record: SqsMessage| {
        let id = record.message_id.clone().unwrap_or_default();
        let handled = AssertUnwindSafe(handler(record)).catch_unwind();
        // An async block, not a `.map` closure: the closure's inferred panic-payload lifetime
        // makes the future not `Send` enough for callers that spawn it.
        async move {
            match handled.await {
                Ok(Ok(())) => true,
                Ok(Err(e)) => {
                    tracing::warn!(message_id = %id, error = %e, "record failed");
                    false
                }
                Err(_) => {
                    tracing::error!(message_id = %id, "record handler panicked");
                    false
                }
            }
        }
    };
    let succeeded: Vec<bool> = match mode {
        BatchMode::Standard => futures::future::join_all(records.into_iter().map(run)).await,
        BatchMode::Fifo => {
            let mut out = Vec::with_capacity(records.len());
            let mut failed = false;
            for record in records {
                failed = failed || !run(record).await;
                out.push(!failed);
            }
            out
        }
    };
    let mut response = SqsBatchResponse::default();
    for (index, (ok, id)) in succeeded.into_iter().zip(ids).enumerate() {
        if !ok {
            response.add_failure(id.ok_or(WholeBatchFailed { index })?);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event(bodies: &[&str]) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let mut m = SqsMessage::default();
                m.message_id = Some(format!("m{i}"));
                m.body = Some((*b).to_owned());
                m
            })
            .collect();
        e
    }

    async fn handle(m: SqsMessage) -> Result<(), String> {
        match m.body.as_deref() {
            Some("ok") => Ok(()),
            Some("panic") => panic!("poison"),
            other => Err(format!("cannot handle {other:?}")),
        }
    }

    fn failures(r: &SqsBatchResponse) -> Vec<&str> {
        r.batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    #[tokio::test]
    async fn standard_batches_report_only_the_failed_records() {
        let r = process_batch(
            event(&["ok", "bad", "ok", "panic", "ok"]),
            BatchMode::Standard,
            handle,
        )
        .await
        .unwrap();
        assert_eq!(failures(&r), vec!["m1", "m3"]);
        let r = process_batch(event(&["ok", "ok"]), BatchMode::Standard, handle)
            .await
            .unwrap();
        assert!(r.batch_item_failures.is_empty());
    }

    #[tokio::test]
    async fn fifo_batches_fail_everything_after_the_first_failure() {
        let r = process_batch(event(&["ok", "bad", "ok"]), BatchMode::Fifo, handle)
            .await
            .unwrap();
        assert_eq!(failures(&r), vec!["m1", "m2"]);
    }

    #[tokio::test]
    async fn a_failure_without_an_id_fails_the_whole_batch() {
        let mut e = event(&["ok", "bad"]);
        e.records[1].message_id = None;
        assert_eq!(
            process_batch(e, BatchMode::Standard, handle)
                .await
                .unwrap_err()
                .index,
            1
        );
    }
}
