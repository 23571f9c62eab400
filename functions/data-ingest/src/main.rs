//! Lambda entry point of data-ingest (S3 `ObjectCreated` events on `incoming/` of the bucket).
//! Wiring only; the handler is `puhui_api::events::ingest_event`.
//!
//! The bucket is the one each record names: the template cannot hand the function the
//! bucket's name, since the bucket's notification already depends on the function.

use aws_lambda_events::event::s3::S3Event;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    puhui_edge::observe::init_logging();
    puhui_edge::observe::init_metrics("data-ingest");
    let (aws, table) = puhui_wiring::backend().await?;
    let (aws, table) = (&aws, &table);
    lambda_runtime::run(service_fn(move |e: LambdaEvent<S3Event>| async move {
        let service_for = |bucket: &str| puhui_wiring::ingest(aws, table.clone(), bucket);
        Ok::<_, lambda_runtime::Error>(
            puhui_api::events::ingest_event(service_for, e.payload).await?,
        )
    }))
    .await
}
