//! Lambda entry point of model-score: single scores, pre-approval jobs and the model registry
//! for banks. Wiring only; the routes live in `puhui_api::scoring`.

use puhui_api::scoring::{ScoringApi, routes};
use puhui_services::outbox::Destination;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    puhui_edge::observe::init_logging();
    puhui_edge::observe::init_metrics("model-score");
    let (aws, table) = puhui_wiring::backend().await?;
    let ports = puhui_wiring::scoring(&aws, table, &[Destination::ScoringJobs])?;
    // Built once per sandbox: warm invocations reuse the parsed models.
    let api = ScoringApi::new(ports, puhui_wiring::authenticator()?);
    let app = puhui_api::finish(routes(api), puhui_edge::max_body_bytes_from_env());
    lambda_http::run(app).await
}
