//! Puhui domain: identifiers with their check digits, money and rates, loan products, the
//! financing flow (loan codes, demands, claims), the authenticated caller, and the one error
//! type every layer returns.
//!
//! Nothing here does I/O; every type validates itself on construction so that a value that
//! exists is a value that is valid.

/// `FromStr` (through the type's `parse`) and serde as a plain string, for newtypes over a
/// validated `String`: deserializing runs the same validation as parsing.
macro_rules! string_newtype {
    ($t:ident) => {
        impl std::str::FromStr for $t {
            type Err = $crate::ids::IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $t::parse(s)
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub mod authorization;
pub mod error;
pub mod financing;
pub mod ids;
pub mod indicators;
pub mod interfaces;
pub mod money;
pub mod principal;
pub mod product;
pub mod region;
pub mod risk;
pub mod rules;
pub mod scoring;
pub mod sources;
pub mod time;

pub use authorization::{Authorization, AuthorizationId, AuthorizationRefusal, Purpose};
pub use error::{Error, FieldError};
pub use financing::{
    ApplicantId, ApplicantRole, Claim, ClaimStage, DemandId, DemandStatus, FinancingDemand,
    LoanCode, LoanCodeId, ProgressUpdate, Submission,
};
pub use ids::{BankId, IdNumber, Phone, ProductId, Uscc};
pub use interfaces::{Catalogue, DataInterface, FirmProfile, ProfileCategory, ProfileField};
pub use money::{Bp, Fen};
pub use principal::{Principal, Role};
pub use product::{Product, ProductDraft, ProductStatus, ProductType};
pub use region::{DivisionCode, IndustryCode};
pub use scoring::{ModelName, ModelOwner};
