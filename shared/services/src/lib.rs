//! Puhui use cases. Each service takes its ports and a verified [`puhui_domain::Principal`],
//! and is the only place that decides who may do what.

pub mod audit;
pub mod authorizations;
pub mod codec;
pub mod data_export;
pub mod data_query;
pub mod financing;
pub mod ingest;
pub mod outbox;
pub mod paging;
pub mod products;
pub mod profiles;
pub mod quality;
pub mod quota;
pub mod risk;
pub mod scoring;
pub mod screening;
pub mod storage;

pub use paging::{Listing, PageRequest};
pub use products::{CatalogueFilter, ProductService};
