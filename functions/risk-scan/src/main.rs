//! Lambda entry point of risk-scan (EventBridge schedule). Wiring only; the handler is
//! `puhui_api::events::risk_scan`.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use puhui_services::risk::ScanPlanner;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    puhui_edge::observe::init_logging();
    puhui_edge::observe::init_metrics("risk-scan");
    let (aws, table) = puhui_wiring::backend().await?;
    let ports = puhui_wiring::risk(&aws, table)?;
    let shards = Arc::new(aws.queue(puhui_wiring::env("PUHUI_RISK_SHARD_QUEUE_URL")?));
    let planner = &ScanPlanner::new(ports, shards);
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            let outcome = puhui_api::events::risk_scan(planner).await?;
            Ok::<_, lambda_runtime::Error>(serde_json::to_value(outcome)?)
        },
    ))
    .await
}
