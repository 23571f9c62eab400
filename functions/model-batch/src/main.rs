//! Lambda entry point of model-batch (SQS trigger on `scoring-jobs` with
//! `ReportBatchItemFailures`). Wiring only; the handler is `puhui_api::events::scoring_job_batch`.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use puhui_services::scoring::{BatchScoring, ModelRegistry, ScoringService};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    puhui_edge::observe::init_logging();
    puhui_edge::observe::init_metrics("model-batch");
    let (aws, table) = puhui_wiring::backend().await?;
    let ports = puhui_wiring::scoring(&aws, table, &[])?;
    // Built once per sandbox: warm invocations reuse the parsed models.
    let registry = Arc::new(ModelRegistry::new(ports.clone()));
    let scoring = Arc::new(ScoringService::new(ports.clone(), registry.clone()));
    let batch = &BatchScoring::new(ports, registry, scoring);
    lambda_runtime::run(service_fn(move |e: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(
            puhui_api::events::scoring_job_batch(batch, e.payload).await?,
        )
    }))
    .await
}
