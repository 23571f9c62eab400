//! Puhui domain: identifiers with their check digits, money and rates, loan products, the
//! authenticated caller, and the one error type every layer returns.
//!
//! Nothing here does I/O; every type validates itself on construction so that a value that
//! exists is a value that is valid.

pub mod error;
pub mod ids;
pub mod indicators;
pub mod money;
pub mod principal;
pub mod product;
pub mod region;
pub mod time;

pub use error::{Error, FieldError};
pub use ids::{BankId, IdNumber, Phone, ProductId, Uscc};
pub use money::{Bp, Fen};
pub use principal::{Principal, Role};
pub use product::{Product, ProductDraft, ProductStatus, ProductType};
pub use region::{DivisionCode, IndustryCode};
