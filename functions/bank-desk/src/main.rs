//! Lambda entry point of bank-desk: loan codes, offered demands, claims and progress for bank
//! staff. Wiring only; the routes live in `puhui_api::desk`.

use puhui_api::desk::{DeskApi, routes};
use puhui_services::outbox::Destination;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    puhui_edge::observe::init_logging();
    puhui_edge::observe::init_metrics("bank-desk");
    let (aws, table) = puhui_wiring::backend().await?;
    let ports = puhui_wiring::financing(&aws, table, &[Destination::Notifications])?;
    let api = DeskApi::new(ports, puhui_wiring::authenticator()?);
    let app = puhui_api::finish(routes(api), puhui_edge::max_body_bytes_from_env());
    lambda_http::run(app).await
}
