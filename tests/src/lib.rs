//! End-to-end tests live in `tests/`; this library holds what their scenarios share.

pub mod firm_profiles;
pub mod harness;
pub mod logs;
