//! Lambda entry point of risk-worker (SQS trigger on `risk-shard` with
//! `ReportBatchItemFailures`). Wiring only; the handler is `puhui_api::events::risk_shard_batch`.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use puhui_services::risk::ShardWorker;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    puhui_edge::observe::init_logging();
    puhui_edge::observe::init_metrics("risk-worker");
    let (aws, table) = puhui_wiring::backend().await?;
    // Built once per sandbox: warm invocations reuse its compiled rule sets.
    let worker = &ShardWorker::new(puhui_wiring::risk(&aws, table)?);
    lambda_runtime::run(service_fn(move |e: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(
            puhui_api::events::risk_shard_batch(worker, e.payload).await?,
        )
    }))
    .await
}
