//! Deterministic synthetic data: the same seed gives the same banks, products and firms on every
//! machine, so demos and tests are reproducible. Codes are valid (check characters computed).

use puhui_domain::ids::{USCC_ALPHABET, org_code_check_character, uscc_check_character};
use serde_json::{Value, json};

/// A small deterministic generator (SplitMix64). Hand-rolled on purpose: its output is fixed
/// forever, unlike library RNGs whose streams may change between versions.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A sample bank: tenant id and display name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bank {
    /// Tenant id (`bank_id` claim).
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
}

/// The sample banks of a Ningbo-like city.
pub const BANKS: &[Bank] = &[
    Bank {
        id: "nbcb",
        name: "宁波银行 Bank of Ningbo",
    },
    Bank {
        id: "icbc-nb",
        name: "工商银行宁波分行 ICBC Ningbo",
    },
    Bank {
        id: "ccb-nb",
        name: "建设银行宁波分行 CCB Ningbo",
    },
    Bank {
        id: "nbrcb",
        name: "宁波农商银行 Ningbo Rural Commercial Bank",
    },
];

/// Districts of Ningbo (330200) used for regions.
pub const NINGBO_DISTRICTS: &[&str] = &["330203", "330205", "330206", "330211", "330212", "330213"];

const PRODUCT_NAMES: &[(&str, &str)] = &[
    ("税易贷 Tax-credit loan", "credit"),
    ("科技贷 Tech-firm credit", "credit"),
    ("厂房抵押贷 Factory mortgage", "mortgage"),
    ("政采贷 Government-contract loan", "credit"),
    ("担保通 Guarantee-fund loan", "guaranteed"),
    ("订单贷 Purchase-order loan", "credit"),
];

/// A valid product body (the JSON a product admin sends) for product `n` of a bank.
pub fn product(rng: &mut Rng, n: usize) -> Value {
    let (name, kind) = PRODUCT_NAMES[n % PRODUCT_NAMES.len()];
    let min_rate = 300 + rng.below(150) as i64; // 3.00 %–4.49 %
    let max_amount_yuan = [1_000_000i64, 3_000_000, 5_000_000, 10_000_000][rng.below(4) as usize];
    let regions: Vec<&str> = if rng.below(3) == 0 {
        vec!["330200"]
    } else {
        vec![*rng.pick(NINGBO_DISTRICTS)]
    };
    let industries: Vec<&str> = match rng.below(3) {
        0 => vec![],
        1 => vec!["C"],
        _ => vec!["C", "I", "M"],
    };
    json!({
        "name": name,
        "description": "示例产品 sample product",
        "product_type": kind,
        "amount": {"min": 10_000_000, "max": max_amount_yuan * 100},
        "term_months": {"min": 3, "max": if kind == "mortgage" { 120 } else { 36 }},
        "annual_rate_bp": {"min": min_rate, "max": min_rate + 300},
        "regions": regions,
        "industries": industries,
        "conditions": [{"fact": "dishonest_debtor", "operator": "equal", "value": false}],
        "valid_from": "2026-01-01",
        "valid_to": "2027-12-31"
    })
}

/// A valid unified social credit code for an enterprise (`91`) registered in `division`.
pub fn uscc(rng: &mut Rng, division: &str) -> String {
    let mut b: Vec<u8> = format!("91{division}").into_bytes();
    while b.len() < 16 {
        // Organisation codes use digits and capitals; keep to the USCC alphabet.
        b.push(USCC_ALPHABET[rng.below(USCC_ALPHABET.len() as u64) as usize]);
    }
    let org = org_code_check_character(&b[8..16]).unwrap_or('0');
    b.push(org as u8);
    let check = uscc_check_character(&b).unwrap_or('0');
    b.push(check as u8);
    String::from_utf8(b).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use puhui_domain::{ProductDraft, Uscc};

    #[test]
    fn generated_data_is_valid_and_deterministic() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for n in 0..50 {
            let p = product(&mut a, n);
            assert_eq!(p, product(&mut b, n));
            let draft: ProductDraft = serde_json::from_value(p).unwrap();
            draft.check().unwrap();
            let code = uscc(&mut a, "330203");
            assert_eq!(code, uscc(&mut b, "330203"));
            Uscc::parse(&code).unwrap();
        }
    }
}
