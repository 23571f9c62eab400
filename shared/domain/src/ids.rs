//! Identifiers: unified social credit code, resident ID number, mobile number, bank (tenant)
//! id and ULID entity ids. Each parses strictly and can only hold a valid value.
//!
//! `IdNumber` and `Phone` are personal data: their `Debug` and `Display` print the masked form,
//! so a stray `?value` in a log line cannot leak them. Use `expose()` where the raw value is needed.

use std::fmt;

use crate::error::FieldError;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must be {expected} characters, got {got}")]
    Length { expected: usize, got: usize },
    #[error("character {position} ('{found}') is not allowed")]
    Character { position: usize, found: char },
    #[error("check character should be '{expected}'")]
    CheckCharacter { expected: char },
    #[error("organisation-code check character (position 17) should be '{expected}'")]
    OrgCodeCheck { expected: char },
    #[error("birth date {0} is not a real date")]
    BirthDate(String),
    #[error("{0}")]
    Format(&'static str),
}

impl IdError {
    fn code(&self) -> &'static str {
        match self {
            IdError::Length { .. } => "invalid_length",
            IdError::Character { .. } => "invalid_character",
            IdError::CheckCharacter { .. } | IdError::OrgCodeCheck { .. } => {
                "invalid_check_character"
            }
            IdError::BirthDate(_) => "invalid_birth_date",
            IdError::Format(_) => "invalid_format",
        }
    }
}

impl From<IdError> for FieldError {
    fn from(e: IdError) -> Self {
        FieldError::new("", e.code(), e.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// Unified social credit code (GB 32100-2015)

/// The USCC alphabet: digits and capitals without I, O, Z, S, V. A character's value is its index.
pub const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// Unified social credit code (统一社会信用代码): 18 characters, both check characters valid.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, utoipa::ToSchema)]
#[schema(value_type = String, example = "91350100M000100Y43")]
pub struct Uscc(String);

/// Value of a character in the USCC alphabet.
fn uscc_value(c: u8) -> Option<u32> {
    USCC_ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// The GB 32100 check character for the first 17 characters (which must be in the alphabet).
pub fn uscc_check_character(first17: &[u8]) -> Option<char> {
    let mut sum = 0u32;
    for (i, &c) in first17.iter().take(17).enumerate() {
        sum += uscc_value(c)? * USCC_WEIGHTS[i];
    }
    let c = (31 - sum % 31) % 31;
    Some(USCC_ALPHABET[c as usize] as char)
}

/// The GB 11714 organisation-code check character over the eight body characters (positions 9–16).
pub fn org_code_check_character(body8: &[u8]) -> Option<char> {
    let mut sum = 0u32;
    for (i, &c) in body8.iter().take(8).enumerate() {
        let v = match c {
            b'0'..=b'9' => (c - b'0') as u32,
            b'A'..=b'Z' => (c - b'A') as u32 + 10,
            _ => return None,
        };
        sum += v * ORG_WEIGHTS[i];
    }
    Some(match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        d => char::from_digit(d, 10)?,
    })
}

impl Uscc {
    /// Parses user input strictly: alphabet, GB 32100 check and GB 11714 organisation-code check.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let code = Self::parse_lenient(s)?;
        let b = code.0.as_bytes();
        let expected =
            org_code_check_character(&b[8..16]).ok_or(IdError::Format("bad organisation code"))?;
        if b[16] as char != expected {
            return Err(IdError::OrgCodeCheck { expected });
        }
        Ok(code)
    }

    /// Parses with only the GB 32100 check, for registry data where a few codes fail the
    /// organisation-code check and must be reported rather than refused.
    pub fn parse_lenient(s: &str) -> Result<Self, IdError> {
        let upper = s.to_ascii_uppercase();
        let b = upper.as_bytes();
        if b.len() != 18 || upper.chars().count() != 18 {
            return Err(IdError::Length {
                expected: 18,
                got: s.chars().count(),
            });
        }
        if let Some((i, &c)) = b
            .iter()
            .enumerate()
            .find(|(_, c)| uscc_value(**c).is_none())
        {
            return Err(IdError::Character {
                position: i + 1,
                found: c as char,
            });
        }
        let expected = uscc_check_character(&b[..17]).ok_or(IdError::Format("bad character"))?;
        if b[17] as char != expected {
            return Err(IdError::CheckCharacter { expected });
        }
        Ok(Uscc(upper))
    }

    /// The code as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Administrative division code of the registering authority (positions 3–8).
    pub fn division(&self) -> &str {
        &self.0[2..8]
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uscc({})", self.0)
    }
}
string_newtype!(Uscc);

// ---------------------------------------------------------------------------------------------
// Resident ID number (GB 11643-1999)

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// ISO 7064 MOD 11-2 check character over the first 17 digits.
pub fn id_number_check_character(first17: &[u8]) -> Option<char> {
    let mut sum = 0u32;
    for (i, &c) in first17.iter().take(17).enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        sum += (c - b'0') as u32 * ID_WEIGHTS[i];
    }
    Some(ID_CHECK[(sum % 11) as usize] as char)
}

/// Resident ID number (居民身份证号码): 18 characters, real birth date, valid check character.
/// Personal data (C2): formats masked.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdNumber(String);

impl IdNumber {
    /// Parses and checks an ID number; a lowercase `x` is accepted and stored uppercase.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let upper = s.to_ascii_uppercase();
        let b = upper.as_bytes();
        if b.len() != 18 || upper.chars().count() != 18 {
            return Err(IdError::Length {
                expected: 18,
                got: s.chars().count(),
            });
        }
        if let Some((i, &c)) = b[..17]
            .iter()
            .enumerate()
            .find(|(_, c)| !c.is_ascii_digit())
        {
            return Err(IdError::Character {
                position: i + 1,
                found: c as char,
            });
        }
        if !(b[17].is_ascii_digit() || b[17] == b'X') {
            return Err(IdError::Character {
                position: 18,
                found: b[17] as char,
            });
        }
        let birth = &upper[6..14];
        if chrono::NaiveDate::parse_from_str(birth, "%Y%m%d").is_err() {
            return Err(IdError::BirthDate(birth.to_owned()));
        }
        let expected = id_number_check_character(&b[..17]).ok_or(IdError::Format("bad digits"))?;
        if b[17] as char != expected {
            return Err(IdError::CheckCharacter { expected });
        }
        Ok(IdNumber(upper))
    }

    /// The raw number. Call only where the raw value is needed (storage, hashing), never in logs.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Display mask: first and last character shown (`1****************X`).
    pub fn masked(&self) -> String {
        format!("{}{}{}", &self.0[..1], "*".repeat(16), &self.0[17..])
    }
}

impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}
impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}
string_newtype!(IdNumber);

// ---------------------------------------------------------------------------------------------
// Mobile number

/// Mainland mobile number, stored bare (11 digits, `1[3-9]…`). Personal data (C2): formats masked.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    /// Parses `13812345678`, `+8613812345678` or `8613812345678` (spaces and dashes ignored).
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let compact: String = s.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let bare = compact
            .strip_prefix("+86")
            .or_else(|| {
                if compact.len() == 13 {
                    compact.strip_prefix("86")
                } else {
                    None
                }
            })
            .unwrap_or(&compact);
        let b = bare.as_bytes();
        if b.len() != 11 || !b.iter().all(u8::is_ascii_digit) {
            return Err(IdError::Format(
                "must be an 11-digit mainland mobile number",
            ));
        }
        if b[0] != b'1' || !(b'3'..=b'9').contains(&b[1]) {
            return Err(IdError::Format("mainland mobile numbers start with 13–19"));
        }
        Ok(Phone(bare.to_owned()))
    }

    /// The raw number, for sending messages only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Display mask: `138****5678`.
    pub fn masked(&self) -> String {
        format!("{}****{}", &self.0[..3], &self.0[7..])
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}
impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}
string_newtype!(Phone);

// ---------------------------------------------------------------------------------------------
// Bank (tenant) id

/// A bank's tenant id, as carried in the token's `bank_id` claim: 2–32 of `[a-z0-9-]`,
/// starting with a letter or digit.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, utoipa::ToSchema)]
#[schema(value_type = String, example = "nbcb")]
pub struct BankId(String);

impl BankId {
    /// Parses a bank id.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok_len = (2..=32).contains(&s.len());
        let ok_chars = s
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
        if !ok_len || !ok_chars || s.starts_with('-') {
            return Err(IdError::Format(
                "bank id must be 2–32 characters of a-z, 0-9 and '-'",
            ));
        }
        Ok(BankId(s.to_owned()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BankId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_newtype!(BankId);

// ---------------------------------------------------------------------------------------------
// ULID entity ids

/// Defines an entity id over a ULID: sortable by creation time, serialized as its 26-character
/// string, parsed (from path segments) with a field-level error.
macro_rules! ulid_id {
    ($(#[$doc:meta])* $t:ident) => {
        $(#[$doc])*
        #[derive(
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            Debug,
            serde::Serialize,
            serde::Deserialize,
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[schema(value_type = String, format = Ulid)]
        pub struct $t(pub ulid::Ulid);

        impl $t {
            /// Parses a ULID string (as found in a path segment).
            pub fn parse(s: &str) -> Result<Self, $crate::ids::IdError> {
                ulid::Ulid::from_string(s)
                    .map($t)
                    .map_err(|_| $crate::ids::IdError::Format("must be a 26-character ULID"))
            }
        }

        impl std::str::FromStr for $t {
            type Err = $crate::ids::IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $t::parse(s)
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}
pub(crate) use ulid_id;

ulid_id!(
    /// Id of a loan product (a ULID: sortable by creation time).
    ProductId
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VALID_USCC: [&str; 6] = [
        "91350100M000100Y43",
        "91110000802100433B",
        "91440300708461136T",
        "91110108551385082Q",
        "91110000600037341L",
        "91512081MA62K0260E",
    ];

    #[test]
    fn known_usccs_pass_both_checks() {
        for code in VALID_USCC {
            assert_eq!(
                Uscc::parse(code).map(|u| u.to_string()),
                Ok(code.to_owned()),
                "{code}"
            );
        }
    }

    #[test]
    fn uscc_errors_name_the_problem() {
        assert_eq!(
            Uscc::parse("91350100M000100Y4"),
            Err(IdError::Length {
                expected: 18,
                got: 17
            })
        );
        assert_eq!(
            Uscc::parse("91350100M000100I43"),
            Err(IdError::Character {
                position: 16,
                found: 'I'
            })
        );
        assert_eq!(
            Uscc::parse("91350100M000100Y44"),
            Err(IdError::CheckCharacter { expected: '3' })
        );
        assert_eq!(
            Uscc::parse("91350100m000100y43").map(|u| u.to_string()),
            Ok("91350100M000100Y43".into())
        );
        assert!(
            Uscc::parse("91350100M000100Y4３").is_err(),
            "full-width digit"
        );
    }

    #[test]
    fn org_code_check_is_strict_for_input_and_lenient_for_registry_data() {
        // Build a code whose GB 32100 check holds but whose position 17 is wrong for GB 11714.
        let mut body = b"91350100M000100Y".to_vec();
        let right = org_code_check_character(&body[8..16]).unwrap();
        let wrong = if right == '5' { b'6' } else { b'5' };
        body.push(wrong);
        let check = uscc_check_character(&body).unwrap();
        body.push(check as u8);
        let s = String::from_utf8(body).unwrap();
        assert_eq!(
            Uscc::parse(&s),
            Err(IdError::OrgCodeCheck { expected: right })
        );
        assert!(Uscc::parse_lenient(&s).is_ok());
    }

    #[test]
    fn id_numbers() {
        for ok in [
            "11010519491231002X",
            "440524188001010014",
            "11010519491231002x",
        ] {
            assert!(IdNumber::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            IdNumber::parse("110105194912310021"),
            Err(IdError::CheckCharacter { expected: 'X' })
        );
        assert_eq!(
            IdNumber::parse("110105194902300027")
                .unwrap_err()
                .to_string(),
            "birth date 19490230 is not a real date"
        );
        let id = IdNumber::parse("11010519491231002X").unwrap();
        assert_eq!(id.masked(), "1****************X");
        assert_eq!(
            format!("{id} {id:?}"),
            "1****************X IdNumber(1****************X)"
        );
    }

    #[test]
    fn phones() {
        for ok in [
            "13812345678",
            "+86 138 1234 5678",
            "8613812345678",
            "138-1234-5678",
        ] {
            assert_eq!(Phone::parse(ok).unwrap().expose(), "13812345678", "{ok}");
        }
        for bad in [
            "12812345678",
            "1381234567",
            "23812345678",
            "1381234567a",
            "",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
        let p = Phone::parse("13812345678").unwrap();
        assert_eq!(format!("{p} {p:?}"), "138****5678 Phone(138****5678)");
    }

    #[test]
    fn bank_ids_and_product_ids() {
        assert!(BankId::parse("nbcb").is_ok());
        assert!(BankId::parse("bank-of-ningbo-01").is_ok());
        for bad in ["N", "Bank", "-x", "a b", ""] {
            assert!(BankId::parse(bad).is_err(), "{bad}");
        }
        assert!(ProductId::parse("01HZY3J0Q8D7N5V9W2X4K6M8P0").is_ok());
        assert!(ProductId::parse("not-a-ulid").is_err());
    }

    fn uscc_char() -> impl Strategy<Value = u8> {
        prop::sample::select(USCC_ALPHABET.to_vec())
    }

    /// A valid USCC: random body, both check characters computed.
    fn valid_uscc() -> impl Strategy<Value = String> {
        prop::collection::vec(uscc_char(), 16).prop_filter_map("org check", |mut b| {
            let org = org_code_check_character(&b[8..16])?;
            b.push(org as u8);
            let check = uscc_check_character(&b)?;
            b.push(check as u8);
            String::from_utf8(b).ok()
        })
    }

    fn valid_id_number() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(0u8..10, 6),
            (1900i32..2025, 1u32..13, 1u32..29),
            prop::collection::vec(0u8..10, 3),
        )
            .prop_map(|(area, (y, m, d), seq)| {
                let mut s: String = area.iter().map(|d| (b'0' + d) as char).collect();
                s.push_str(&format!("{y:04}{m:02}{d:02}"));
                s.extend(seq.iter().map(|d| (b'0' + d) as char));
                let check = id_number_check_character(s.as_bytes()).unwrap();
                s.push(check);
                s
            })
    }

    proptest! {
        #[test]
        fn every_valid_uscc_passes(code in valid_uscc()) {
            prop_assert!(Uscc::parse(&code).is_ok());
        }

        #[test]
        fn every_single_character_change_to_a_uscc_fails(
            code in valid_uscc(),
            pos in 0usize..18,
            replacement in prop::sample::select(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ".to_vec()),
        ) {
            let mut b = code.into_bytes();
            prop_assume!(b[pos] != replacement);
            b[pos] = replacement;
            let changed = String::from_utf8(b).unwrap();
            prop_assert!(Uscc::parse(&changed).is_err(), "{changed} accepted");
            prop_assert!(Uscc::parse_lenient(&changed).is_err(), "{changed} accepted leniently");
        }

        #[test]
        fn every_valid_id_number_passes(id in valid_id_number()) {
            prop_assert!(IdNumber::parse(&id).is_ok());
        }

        #[test]
        fn every_single_digit_change_to_an_id_number_fails(
            id in valid_id_number(),
            pos in 0usize..18,
            replacement in prop::sample::select(b"0123456789X".to_vec()),
        ) {
            let mut b = id.into_bytes();
            prop_assume!(b[pos] != replacement);
            b[pos] = replacement;
            let changed = String::from_utf8(b).unwrap();
            prop_assert!(IdNumber::parse(&changed).is_err(), "{changed} accepted");
        }
    }
}
