//! Lambda entry point of data-query: banks' data-interface queries (masked, audited,
//! quota-counted), the catalogue, the audit listing, and applicants' own authorizations.
//! Also the platform administrators' daily data-quality reports (a table read). Wiring only;
//! the routes live in `puhui_api::data_query` and `puhui_api::quality`.

use std::sync::Arc;

use puhui_api::data_query::{DataQueryApi, routes};
use puhui_ports::{SystemClock, UlidGenerator};
use puhui_services::data_query::DataQueryConfig;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    puhui_edge::observe::init_logging();
    puhui_edge::observe::init_metrics("data-query");
    let (_aws, table) = puhui_wiring::backend().await?;
    let auth = puhui_wiring::authenticator()?;
    let quality = puhui_api::quality::QualityApi::new(table.clone(), auth.clone());
    let api = DataQueryApi::new(
        table,
        Arc::new(SystemClock),
        Arc::new(UlidGenerator::default()),
        DataQueryConfig::from_env()?,
        auth,
        Arc::new(puhui_edge::Sessions::from_env()?),
    );
    let routes = routes(api).merge(puhui_api::quality::routes(quality));
    let app = puhui_api::finish(routes, puhui_edge::max_body_bytes_from_env());
    lambda_http::run(app).await
}
