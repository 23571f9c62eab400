//! Lambda entry point of demand-dispatch (SQS trigger with `ReportBatchItemFailures`).
//! Wiring only; the handler is `puhui_api::events::dispatch_batch`.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use puhui_services::financing::DispatchService;
use puhui_services::outbox::Destination;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    puhui_edge::observe::init_logging();
    puhui_edge::observe::init_metrics("demand-dispatch");
    let (aws, table) = puhui_wiring::backend().await?;
    let ports = puhui_wiring::financing(&aws, table, &[Destination::Notifications])?;
    let service = &DispatchService::new(ports);
    lambda_runtime::run(service_fn(move |e: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(puhui_api::events::dispatch_batch(service, e.payload).await?)
    }))
    .await
}
