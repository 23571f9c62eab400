//! Lambda entry point of reminders (EventBridge schedule). Wiring only; the handler is
//! `puhui_api::events::remind`.

use lambda_runtime::{LambdaEvent, service_fn};
use puhui_services::financing::ReminderService;
use puhui_services::outbox::Destination;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    puhui_edge::observe::init_logging();
    puhui_edge::observe::init_metrics("reminders");
    let (aws, table) = puhui_wiring::backend().await?;
    let ports = puhui_wiring::financing(&aws, table, &[Destination::Notifications])?;
    let service = &ReminderService::new(ports);
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            let r = puhui_api::events::remind(service).await?;
            Ok::<_, lambda_runtime::Error>(serde_json::json!({
                "reminded": r.reminded, "released": r.released, "skipped": r.skipped
            }))
        },
    ))
    .await
}
