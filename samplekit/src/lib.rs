//! Puhui samplekit: deterministic synthetic data (banks, products, firms with valid codes),
//! development tokens, and the demo driver that walks the product-listing flow over HTTP.

pub mod data;
pub mod data_story;
pub mod demo;
pub mod govdata;
pub mod ingest_bench;
pub mod ingest_story;
pub mod load;
pub mod pii;
pub mod qr;
pub mod risk_story;
pub mod scan;
pub mod score;
pub mod scoring_story;
pub mod screening_bench;
pub mod snapshot;
pub mod snapshot_inputs;
pub mod tokens;

/// Why a samplekit operation failed, in words for the person running it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}
