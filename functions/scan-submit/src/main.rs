//! Lambda entry point of scan-submit: the mini-program's login, loan-code pages and demand
//! submissions. Wiring only; the routes live in `puhui_api::applicant`.

use std::sync::Arc;

use puhui_api::applicant::{ApplicantApi, routes};
use puhui_services::outbox::Destination;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    puhui_edge::observe::init_logging();
    puhui_edge::observe::init_metrics("scan-submit");
    let (aws, table) = puhui_wiring::backend().await?;
    let ports = puhui_wiring::financing(&aws, table, &[Destination::DemandSubmitted])?;
    let sessions = Arc::new(puhui_edge::Sessions::from_env()?);
    let api = ApplicantApi::new(ports, puhui_wiring::wechat()?, sessions);
    let app = puhui_api::finish(routes(api), puhui_edge::max_body_bytes_from_env());
    lambda_http::run(app).await
}
