//! Lambda entry point of data-quality (EventBridge daily schedule, or `{"date": "YYYY-MM-DD"}`
//! to run one day again). Wiring only; the handler is `puhui_api::events::data_quality`.

use lambda_runtime::{LambdaEvent, service_fn};
use puhui_ports::{Clock, SystemClock};
use puhui_services::quality::DataQualityService;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    puhui_edge::observe::init_logging();
    puhui_edge::observe::init_metrics("data-quality");
    let (aws, table) = puhui_wiring::backend().await?;
    let service = &DataQualityService::new(puhui_wiring::quality(&aws, table)?);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let run =
                puhui_api::events::data_quality(service, &event.payload, SystemClock.now()).await?;
            Ok::<_, lambda_runtime::Error>(serde_json::to_value(run)?)
        },
    ))
    .await
}
