//! Lambda entry point of risk-desk: rule sets, watch lists, alerts, statistics and scans for
//! bank risk staff. Wiring only; the routes live in `puhui_api::risk`.

use puhui_api::risk::{RiskApi, routes};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    puhui_edge::observe::init_logging();
    puhui_edge::observe::init_metrics("risk-desk");
    let (aws, table) = puhui_wiring::backend().await?;
    let ports = puhui_wiring::risk(&aws, table)?;
    let api = RiskApi::new(ports, puhui_wiring::authenticator()?);
    let app = puhui_api::finish(routes(api), puhui_edge::max_body_bytes_from_env());
    lambda_http::run(app).await
}
