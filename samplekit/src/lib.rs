//! Puhui samplekit: deterministic synthetic data (banks, products, firms with valid codes),
//! development tokens, and the demo driver that walks the product-listing flow over HTTP.

pub mod data;
pub mod demo;
pub mod tokens;
