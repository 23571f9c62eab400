//! Lambda entry point of notify (SQS trigger with `ReportBatchItemFailures`).
//! Wiring only; the handler is `puhui_api::events::notify_batch`.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use puhui_services::financing::NotificationService;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    puhui_edge::observe::init_logging();
    puhui_edge::observe::init_metrics("notify");
    let (_, table) = puhui_wiring::backend().await?;
    let clock = std::sync::Arc::new(puhui_ports::SystemClock);
    let service = &NotificationService::new(table, clock, puhui_wiring::notifier()?);
    lambda_runtime::run(service_fn(move |e: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(puhui_api::events::notify_batch(service, e.payload).await?)
    }))
    .await
}
