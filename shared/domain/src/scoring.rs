//! Credit models as the registry knows them: who owns one (the platform, usable by every bank,
//! or one bank, for its own use only) and its name.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{BankId, IdError};

/// A model's name within its owner: 1–64 of `[a-z0-9_-]`, starting with a letter.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, utoipa::ToSchema)]
#[schema(value_type = String, example = "sme_tax_loan")]
pub struct ModelName(String);

impl ModelName {
    /// Parses a model name.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = (1..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-');
        if !ok {
            return Err(IdError::Format(
                "model name must be 1–64 characters of a-z, 0-9, '_' and '-', starting with a letter",
            ));
        }
        Ok(ModelName(s.to_owned()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_newtype!(ModelName);

/// Who owns a model. Serialized as `platform` or `bank:<bank id>` (a bank may be called
/// "platform", so the two never share a spelling).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum ModelOwner {
    /// The platform: every bank may score with it.
    Platform,
    /// One bank: only that bank may see or use it.
    Bank(BankId),
}

impl ModelOwner {
    /// Parses `platform` or `bank:<id>`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match s.strip_prefix("bank:") {
            Some(id) => Ok(ModelOwner::Bank(BankId::parse(id)?)),
            None if s == "platform" => Ok(ModelOwner::Platform),
            None => Err(IdError::Format(
                "owner must be 'platform' or 'bank:<bank id>'",
            )),
        }
    }

    /// Whether `bank` may see and use this owner's models.
    pub fn usable_by(&self, bank: &BankId) -> bool {
        match self {
            ModelOwner::Platform => true,
            ModelOwner::Bank(b) => b == bank,
        }
    }
}

impl fmt::Display for ModelOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelOwner::Platform => f.write_str("platform"),
            ModelOwner::Bank(b) => write!(f, "bank:{b}"),
        }
    }
}

impl std::str::FromStr for ModelOwner {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModelOwner::parse(s)
    }
}

impl Serialize for ModelOwner {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ModelOwner {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_owners_parse_strictly() {
        assert!(ModelName::parse("sme_tax_loan-v2").is_ok());
        for bad in ["", "Tax", "1st", "a b", &"a".repeat(65)] {
            assert!(ModelName::parse(bad).is_err(), "{bad}");
        }
        let nbcb = BankId::parse("nbcb").expect("valid");
        let owner = ModelOwner::parse("bank:nbcb").expect("valid");
        assert_eq!(owner.to_string(), "bank:nbcb");
        assert!(owner.usable_by(&nbcb));
        assert!(!owner.usable_by(&BankId::parse("czbank").expect("valid")));
        assert!(ModelOwner::Platform.usable_by(&nbcb));
        assert_eq!(ModelOwner::parse("platform"), Ok(ModelOwner::Platform));
        assert!(ModelOwner::parse("nbcb").is_err());
        assert_eq!(
            ModelOwner::parse("bank:platform"),
            Ok(ModelOwner::Bank(BankId::parse("platform").expect("valid")))
        );
    }
}
