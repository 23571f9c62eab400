//! Handlers of the queue consumers and schedules: plain async functions from the event to the
//! result, so the Lambdas, the local runner and the tests call the same code.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use puhui_edge::batch::{BatchMode, WholeBatchFailed, process_batch};
use puhui_ports::Notification;
use puhui_services::financing::{
    DemandSubmitted, DispatchService, NotificationService, ReminderReport, ReminderService,
};
use puhui_services::outbox::Outbox;
use puhui_services::risk::{PlanOutcome, ScanPlanner, ShardTask, ShardWorker};
use puhui_services::scoring::{BatchScoring, JobChunk};

fn body<T: serde::de::DeserializeOwned>(m: &SqsMessage) -> Result<T, String> {
    let text = m.body.as_deref().ok_or("record has no body")?;
    // A body that can never parse fails every delivery and so ends in the dead-letter queue.
    serde_json::from_str(text).map_err(|e| format!("unreadable message: {e}"))
}

/// demand-dispatch: each record names a demand to match and offer.
pub async fn dispatch_batch(
    service: &DispatchService,
    event: SqsEvent,
) -> Result<SqsBatchResponse, WholeBatchFailed> {
    process_batch(event, BatchMode::Standard, |m| async move {
        let msg: DemandSubmitted = body(&m)?;
        service
            .dispatch(msg.demand_id)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
}

/// notify: each record is a notification to deliver once.
pub async fn notify_batch(
    service: &NotificationService,
    event: SqsEvent,
) -> Result<SqsBatchResponse, WholeBatchFailed> {
    process_batch(event, BatchMode::Standard, |m| async move {
        let n: Notification = body(&m)?;
        service
            .deliver(&n)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
}

/// reminders (schedule): remind and release claims without progress.
pub async fn remind(service: &ReminderService) -> Result<ReminderReport, puhui_domain::Error> {
    service.run().await
}

/// How old an outbox entry must be before the relay sends it (younger ones are being flushed
/// by their writers).
pub const RELAY_MIN_AGE: std::time::Duration = std::time::Duration::from_secs(30);

/// outbox-relay (schedule): sends what a crashed writer left in the outbox.
pub async fn relay(outbox: &Outbox) -> Result<usize, puhui_domain::Error> {
    outbox.sweep(RELAY_MIN_AGE, 500).await
}

/// risk-worker: each record is one scan task (a shard for a bank). A task that fails (say, a
/// malformed shard) is reported failed, recorded on the scan, retried and finally dead-lettered.
pub async fn risk_shard_batch(
    worker: &ShardWorker,
    event: SqsEvent,
) -> Result<SqsBatchResponse, WholeBatchFailed> {
    process_batch(event, BatchMode::Standard, |m| async move {
        let task: ShardTask = body(&m)?;
        worker
            .process(&task)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
}

/// risk-scan (schedule): plans a scan of the newest snapshot.
pub async fn risk_scan(planner: &ScanPlanner) -> Result<PlanOutcome, puhui_domain::Error> {
    planner.plan().await
}

/// model-batch: each record is one chunk of a scoring job. A chunk already counted changes
/// nothing; one that fails is retried and finally dead-lettered.
pub async fn scoring_job_batch(
    batch: &BatchScoring,
    event: SqsEvent,
) -> Result<SqsBatchResponse, WholeBatchFailed> {
    process_batch(event, BatchMode::Standard, |m| async move {
        let chunk: JobChunk = body(&m)?;
        batch
            .process(&chunk)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
}
