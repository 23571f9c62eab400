//! Administrative division codes (GB/T 2260) and industry codes (GB/T 4754-2017), with the
//! "covers" relation products use for eligibility: a province covers its cities and counties.

use std::fmt;

use crate::ids::IdError;

/// A six-digit administrative division code: province (`330000`), city (`330200`) or county (`330203`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, utoipa::ToSchema)]
#[schema(value_type = String, example = "330203")]
pub struct DivisionCode(String);

impl DivisionCode {
    /// Parses a six-digit code whose province part is not `00`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdError::Format("division code must be 6 digits"));
        }
        if &s[..2] == "00" || (&s[2..4] == "00" && &s[4..] != "00") {
            return Err(IdError::Format("not a province, city or county code"));
        }
        Ok(DivisionCode(s.to_owned()))
    }

    /// The significant prefix: `33` for a province, `3302` for a city, all six for a county.
    fn prefix(&self) -> &str {
        if self.0.ends_with("0000") {
            &self.0[..2]
        } else if self.0.ends_with("00") {
            &self.0[..4]
        } else {
            &self.0
        }
    }

    /// True if this area contains `other` (an area contains itself).
    pub fn covers(&self, other: &DivisionCode) -> bool {
        other.0.starts_with(self.prefix())
    }

    /// The code as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An industry code: a GB/T 4754 section letter `A`–`T`, optionally followed by a 2–4 digit class
/// (`C`, `C13`, `C131`, `C1311`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, utoipa::ToSchema)]
#[schema(value_type = String, example = "C1311")]
pub struct IndustryCode(String);

impl IndustryCode {
    /// Parses an industry code.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && (b'A'..=b'T').contains(&b[0])
            && matches!(b.len(), 1 | 3 | 4 | 5)
            && b[1..].iter().all(u8::is_ascii_digit);
        if !ok {
            return Err(IdError::Format(
                "industry code is a section letter A–T and an optional 2–4 digit class",
            ));
        }
        Ok(IndustryCode(s.to_owned()))
    }

    /// True if this industry (a section or class) contains `other`.
    pub fn covers(&self, other: &IndustryCode) -> bool {
        other.0.starts_with(&self.0)
    }

    /// The code as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! code_display {
    ($t:ident) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        string_newtype!($t);
    };
}
code_display!(DivisionCode);
code_display!(IndustryCode);

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> DivisionCode {
        DivisionCode::parse(s).unwrap()
    }

    #[test]
    fn division_cover() {
        assert!(d("330000").covers(&d("330203")));
        assert!(d("330200").covers(&d("330203")));
        assert!(d("330203").covers(&d("330203")));
        assert!(!d("330200").covers(&d("330100")));
        assert!(!d("330203").covers(&d("330200")));
        for bad in ["33020", "000000", "330012", "33020a"] {
            assert!(DivisionCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn industry_cover() {
        let c = IndustryCode::parse("C").unwrap();
        let c13 = IndustryCode::parse("C13").unwrap();
        let c1311 = IndustryCode::parse("C1311").unwrap();
        assert!(c.covers(&c1311) && c13.covers(&c1311) && !c1311.covers(&c13));
        for bad in ["", "Z", "C1", "c13", "C131111"] {
            assert!(IndustryCode::parse(bad).is_err(), "{bad}");
        }
    }
}
