//! Lambda entry point of outbox-relay (EventBridge schedule): sends outbox messages whose
//! writer did not. Wiring only; the handler is `puhui_api::events::relay`.

use lambda_runtime::{LambdaEvent, service_fn};
use puhui_services::outbox::Destination;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    puhui_edge::observe::init_logging();
    puhui_edge::observe::init_metrics("outbox-relay");
    let (aws, table) = puhui_wiring::backend().await?;
    let all = [
        Destination::DemandSubmitted,
        Destination::Notifications,
        Destination::ScoringJobs,
        Destination::DataExports,
    ];
    let ports = puhui_wiring::financing(&aws, table, &all)?;
    let outbox = &ports.outbox;
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            let flushed = puhui_api::events::relay(outbox).await?;
            Ok::<_, lambda_runtime::Error>(serde_json::json!({ "flushed": flushed }))
        },
    ))
    .await
}
