//! Lambda entry point of product-listing: builds the AWS adapters and the token verifier once
//! per sandbox, then serves the product routes. All logic lives in `shared/`.

use std::sync::Arc;

use lambda_http::Error;
use puhui_api::products::{ProductsApi, routes};
use puhui_edge::{AuthConfig, Authenticator};

#[tokio::main]
async fn main() -> Result<(), Error> {
    puhui_edge::observe::init_logging();
    puhui_edge::observe::init_metrics("product-listing");
    let table_name = std::env::var("PUHUI_TABLE").map_err(|_| "PUHUI_TABLE is not set")?;
    let aws = puhui_aws::AwsBackend::from_env().await;
    let table = Arc::new(aws.table(table_name));
    let auth = Arc::new(Authenticator::new(AuthConfig::from_env()?)?);
    let app = puhui_api::finish(
        routes(ProductsApi::new(table, auth)),
        puhui_edge::max_body_bytes_from_env(),
    );
    lambda_http::run(app).await
}
