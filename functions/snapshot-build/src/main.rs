//! Lambda entry point of snapshot-build (EventBridge monthly schedule, or an explicit
//! `{"period": "YYYY-MM"}`). Wiring only; the handler is `puhui_api::events::snapshot_build`.

use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    puhui_edge::observe::init_logging();
    puhui_edge::observe::init_metrics("snapshot-build");
    let builder = &puhui_wiring::snapshot_builder().await?;
    lambda_runtime::run(service_fn(
        move |e: LambdaEvent<serde_json::Value>| async move {
            let report =
                puhui_api::events::snapshot_build(builder, chrono::Utc::now(), &e.payload).await?;
            Ok::<_, lambda_runtime::Error>(serde_json::to_value(report)?)
        },
    ))
    .await
}
