//! Lambda entry point of data-query: banks' data-interface queries (masked, audited,
//! quota-counted), screening (public identity of firms matching indicator filters), bulk
//! exports, the catalogue, the audit listing, and applicants' own authorizations; also the
//! platform administrators' daily data-quality reports (a table read). Wiring only; the routes
//! live in `puhui_api::data_query`, `puhui_api::screening`, `puhui_api::data_export` and
//! `puhui_api::quality`.

use std::sync::Arc;

use puhui_api::data_export::DataExportApi;
use puhui_api::data_query::DataQueryApi;
use puhui_api::quality::QualityApi;
use puhui_api::screening::ScreeningApi;
use puhui_ports::{SystemClock, UlidGenerator};
use puhui_services::data_query::DataQueryConfig;
use puhui_services::outbox::Destination;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    puhui_edge::observe::init_logging();
    puhui_edge::observe::init_metrics("data-query");
    let (aws, table) = puhui_wiring::backend().await?;
    let auth = puhui_wiring::authenticator()?;
    let screening = ScreeningApi::new(
        table.clone(),
        puhui_wiring::blobs(&aws)?,
        Arc::new(SystemClock),
        Arc::new(UlidGenerator::default()),
        auth.clone(),
    );
    let quotas = DataQueryConfig::from_env()?;
    let exports = DataExportApi::new(
        puhui_wiring::data_export(&aws, table.clone(), &[Destination::DataExports])?,
        quotas.clone(),
        auth.clone(),
    );
    let quality = QualityApi::new(table.clone(), auth.clone());
    let api = DataQueryApi::new(
        table,
        Arc::new(SystemClock),
        Arc::new(UlidGenerator::default()),
        quotas,
        auth,
        Arc::new(puhui_edge::Sessions::from_env()?),
    );
    let routes = puhui_api::data_query::routes(api)
        .merge(puhui_api::screening::routes(screening))
        .merge(puhui_api::data_export::routes(exports))
        .merge(puhui_api::quality::routes(quality));
    let app = puhui_api::finish(routes, puhui_edge::max_body_bytes_from_env());
    lambda_http::run(app).await
}
