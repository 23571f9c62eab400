//! Lambda entry point of data-export (SQS trigger on `data-exports` with
//! `ReportBatchItemFailures`). Wiring only; the handler is `puhui_api::events::export_job_batch`.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use puhui_services::data_export::DataExportService;
use puhui_services::data_query::DataQueryConfig;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    puhui_edge::observe::init_logging();
    puhui_edge::observe::init_metrics("data-export");
    let (aws, table) = puhui_wiring::backend().await?;
    // It sends nothing (chunks are staged by data-query) and counts nothing (the pairs were
    // counted when the export was submitted).
    let ports = puhui_wiring::data_export(&aws, table, &[])?;
    let service = &DataExportService::new(ports, DataQueryConfig::from_env()?);
    lambda_runtime::run(service_fn(move |e: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(
            puhui_api::events::export_job_batch(service, e.payload).await?,
        )
    }))
    .await
}
