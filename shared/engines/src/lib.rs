//! Puhui engines: pure functions that take domain data and return domain data — no I/O, no
//! clock, no randomness — so they are unit-tested and benchmarked on their own.

pub mod columnar;
pub mod decision;
pub mod features;
pub mod ingest;
pub mod logistic;
pub mod masking;
pub mod matching;
pub mod model;
pub mod onnx;
pub mod quality;
pub mod rules;
pub mod scorecard;
pub mod toad;

pub use matching::{BankOffer, MatchRequest, ProductMatch, ScoreReason, match_demand};
