//! Money in integer fen and rates in basis points: no floating point near a balance.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of money in fen (分, 1/100 yuan).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Debug,
    Default,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct Fen(pub i64);

impl Fen {
    /// An amount from whole yuan.
    pub const fn yuan(y: i64) -> Self {
        Fen(y * 100)
    }

    /// Sum, `None` on overflow.
    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }
}

impl fmt::Display for Fen {
    /// `¥1234.56`, sign first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}¥{}.{:02}", abs / 100, abs % 100)
    }
}

/// A rate in basis points (1 bp = 0.01 %); annual loan rates are stored this way.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Debug,
    Default,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct Bp(pub i32);

impl fmt::Display for Bp {
    /// `3.45%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}%", abs / 100, abs % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        assert_eq!(Fen(123_456).to_string(), "¥1234.56");
        assert_eq!(Fen(-5).to_string(), "-¥0.05");
        assert_eq!(Fen::yuan(3).0, 300);
        assert_eq!(Bp(345).to_string(), "3.45%");
        assert_eq!(Fen(i64::MAX).checked_add(Fen(1)), None);
    }
}
