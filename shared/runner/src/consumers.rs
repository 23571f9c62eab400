//! In-process stand-ins for Lambda's SQS event source mapping and EventBridge schedules.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use puhui_ports::Queue;

/// A boxed future, as handlers are stored behind `dyn`.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A queue and the handler that consumes it, as a Lambda with an SQS trigger would.
#[derive(Clone)]
pub struct Consumer {
    /// Name for logs.
    pub name: &'static str,
    /// The queue polled.
    pub queue: Arc<dyn Queue>,
    /// Messages per batch (like the event source mapping's batch size).
    pub batch_size: u32,
    /// How long a received batch stays hidden.
    pub visibility: Duration,
    /// The function's handler.
    pub handler: Arc<dyn Fn(SqsEvent) -> BoxFuture<SqsBatchResponse> + Send + Sync>,
}

/// Messages per batch, as the SAM template's event source mappings.
pub const BATCH_SIZE: u32 = 10;
/// How long a received batch stays hidden, as the queues' visibility timeout.
pub const VISIBILITY: Duration = Duration::from_secs(60);

impl Consumer {
    /// A consumer of `queue` with the deployment's batch size and visibility timeout.
    pub fn new(
        name: &'static str,
        queue: Arc<dyn Queue>,
        handler: impl Fn(SqsEvent) -> BoxFuture<SqsBatchResponse> + Send + Sync + 'static,
    ) -> Self {
        Consumer {
            name,
            queue,
            batch_size: BATCH_SIZE,
            visibility: VISIBILITY,
            handler: Arc::new(handler),
        }
    }
}

/// A job run at a fixed interval, as an EventBridge schedule would.
#[derive(Clone)]
pub struct Schedule {
    /// Name for logs.
    pub name: &'static str,
    /// Interval.
    pub every: Duration,
    /// The job.
    pub job: Arc<dyn Fn() -> BoxFuture<()> + Send + Sync>,
}

impl Schedule {
    /// A job run every `every`.
    pub fn new(
        name: &'static str,
        every: Duration,
        job: impl Fn() -> BoxFuture<()> + Send + Sync + 'static,
    ) -> Self {
        Schedule {
            name,
            every,
            job: Arc::new(job),
        }
    }
}

/// Receives one batch, hands it to the handler as an `SqsEvent`, and deletes the messages
/// the handler did not report as failed. Returns how many messages were received.
pub async fn poll_once(c: &Consumer) -> Result<usize, puhui_ports::PortError> {
    let received = c.queue.receive(c.batch_size, c.visibility).await?;
    if received.is_empty() {
        return Ok(0);
    }
    let mut event = SqsEvent::default();
    event.records = received
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = Some(m.id.clone());
            record.receipt_handle = Some(m.receipt.clone());
            record.body = Some(m.body.clone());
            record.attributes.insert(
                "ApproximateReceiveCount".into(),
                m.receive_count.to_string(),
            );
            record.event_source = Some("aws:sqs".into());
            record
        })
        .collect();
    let response = (c.handler)(event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    for m in &received {
        if !failed.contains(&m.id.as_str()) {
            c.queue.delete(&m.receipt).await?;
        }
    }
    Ok(received.len())
}

/// Polls a consumer until the process ends, backing off while the queue is empty.
pub async fn run_consumer(c: Consumer) {
    loop {
        match poll_once(&c).await {
            Ok(0) => tokio::time::sleep(Duration::from_millis(250)).await,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(consumer = c.name, error = %e, "poll failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Runs a schedule until the process ends.
pub async fn run_schedule(s: Schedule) {
    let mut ticker = tokio::time::interval(s.every);
    ticker.tick().await; // the first tick is immediate; schedules fire after one interval
    loop {
        ticker.tick().await;
        tracing::info!(schedule = s.name, "schedule fired");
        (s.job)().await;
    }
}
