//! Firm profiles full of raw personal data, written as the ingest writes them, and the firms'
//! authorizations of banks: what the data-query and data-export scenarios read through masks.
// A helper failure is a test failure: panicking with the cause is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::Duration;
use puhui_domain::authorization::{Authorization, AuthorizationId, ConsentEvidence, Purpose};
use puhui_domain::interfaces::{ProfileCategory, ProfileField};
use puhui_domain::{BankId, Uscc};
use puhui_ports::IdGenerator;
use puhui_samplekit::data::{Rng, uscc};
use puhui_services::authorizations::Authorizations;
use puhui_services::profiles::category_item;
use serde_json::{Value, json};

use crate::harness::Env;

/// A person's raw data as the ingest stores it: what must never leave.
pub struct Person {
    /// Full name.
    pub name: String,
    /// Resident ID number.
    pub id_number: String,
    /// Mobile phone.
    pub phone: String,
    /// Email.
    pub email: String,
    /// Bank account number.
    pub account: String,
}

impl Person {
    /// Every raw value, none of which may leave the platform.
    pub fn raw(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.id_number.clone(),
            self.phone.clone(),
            self.email.clone(),
            self.account.clone(),
        ]
    }
}

/// A valid resident ID number (GB 11643 check character).
pub fn id_number(n: u64) -> String {
    let body = format!(
        "3302031985{:02}{:02}{:03}",
        1 + n % 12,
        1 + n % 28,
        n % 1000
    );
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .bytes()
        .zip(weights)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{body}{check}")
}

/// The `n`th made-up person (valid ID number and phone).
pub fn person(n: u64) -> Person {
    const NAMES: [&str; 6] = [
        "欧阳娜娜",
        "张小明",
        "李建国",
        "司马光明",
        "王秀英",
        "陈志强",
    ];
    let p = Person {
        name: format!(
            "{}{}",
            NAMES[(n % 6) as usize],
            ["", "伟", "芳"][(n / 6 % 3) as usize]
        ),
        id_number: id_number(n),
        phone: format!("139{:08}", 10_000_000 + n * 7_919),
        email: format!("legal.rep{n}@example.com"),
        account: format!("6222021{:012}", 100_000_000_000 + n * 31),
    };
    assert!(puhui_domain::IdNumber::parse(&p.id_number).is_ok());
    assert!(puhui_domain::Phone::parse(&p.phone).is_ok());
    p
}

/// A profile field as the ingest stores it.
pub fn field(value: Value, source: &str, as_of: &str) -> ProfileField {
    ProfileField {
        value,
        source: source.into(),
        as_of: as_of.parse().unwrap(),
    }
}

/// Writes every category of the firm's profile as the ingest will, with the legal
/// representative `rep` and an insured roster of `roster` (raw personal data everywhere).
pub async fn write_profile(env: &Env, firm: &Uscc, rep: &Person, roster: &[Person]) {
    let f =
        |pairs: Vec<(&str, Value)>, source: &str, as_of: &str| -> BTreeMap<String, ProfileField> {
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), field(v, source, as_of)))
                .collect()
        };
    let roster: Vec<Value> = roster
        .iter()
        .map(|p| json!({"name": p.name, "id_number": p.id_number, "phone": p.phone}))
        .collect();
    let categories = [
        (
            ProfileCategory::Basic,
            f(
                vec![
                    ("firm_name", json!("宁波甬江机械有限公司")),
                    (
                        "registered_address",
                        json!("浙江省宁波市鄞州区首南街道天童南路588号"),
                    ),
                    ("established_on", json!("2012-05-18")),
                    ("registered_capital", json!(500_000_000)),
                    ("industry", json!("C34")),
                    ("status", json!("存续")),
                    ("legal_rep_name", json!(rep.name)),
                    ("legal_rep_id_number", json!(rep.id_number)),
                    ("legal_rep_phone", json!(rep.phone)),
                    (
                        "legal_rep_address",
                        json!("浙江省宁波市海曙区柳汀街99弄3号502室"),
                    ),
                    ("contact_email", json!(rep.email)),
                ],
                "market_regulation",
                "2026-11-01",
            ),
        ),
        (
            ProfileCategory::Property,
            f(
                vec![
                    ("real_estate_count", json!(2)),
                    ("real_estate_value", json!(345_678_901)),
                    ("vehicles_count", json!(3)),
                    ("patents", json!(4)),
                ],
                "natural_resources",
                "2026-09-30",
            ),
        ),
        (
            ProfileCategory::Financial,
            f(
                vec![
                    ("revenue_12m", json!(1_234_567_890)),
                    ("profit_12m", json!(87_654_321)),
                ],
                "tax",
                "2026-10-31",
            ),
        ),
        (
            ProfileCategory::Operating,
            f(
                vec![
                    ("tax_paid_12m", json!(61_234_567)),
                    ("tax_paid_yoy", json!(0.12)),
                    ("invoice_sales_yoy", json!(0.08)),
                    ("tax_arrears", json!(false)),
                    ("tax_paid_monthly", json!([5_100_000, 4_900_000, 5_300_000])),
                    ("settlement_account", json!(rep.account)),
                    ("social_insured_headcount", json!(roster.len())),
                    ("social_insured_change_6m", json!(0.05)),
                    ("social_insurance_arrears_months", json!(0)),
                    ("housing_fund_headcount", json!(roster.len())),
                    ("housing_fund_arrears_months", json!(0)),
                    ("payroll_12m", json!(345_000_000)),
                    ("insured_roster", json!(roster)),
                    ("electricity_kwh_12m", json!(456_789)),
                    ("electricity_yoy", json!(-0.03)),
                    ("water_yoy", json!(0.01)),
                    ("gas_yoy", json!(null)),
                    ("utility_arrears", json!(false)),
                    ("electricity_monthly", json!([38_000, 37_500, 39_100])),
                ],
                "tax",
                "2026-10-31",
            ),
        ),
        (
            ProfileCategory::Positive,
            f(
                vec![
                    ("high_tech", json!(true)),
                    ("specialised", json!(false)),
                    ("honours", json!(["守合同重信用企业"])),
                ],
                "economy_and_information",
                "2026-06-30",
            ),
        ),
        (
            ProfileCategory::Negative,
            f(
                vec![
                    ("court_cases_defendant_12m", json!(1)),
                    ("enforcement_cases_active", json!(0)),
                    ("enforcement_amount", json!(0)),
                    ("dishonest_debtor", json!(false)),
                    ("consumption_restricted", json!(false)),
                    ("property_seized", json!(false)),
                    ("equity_frozen", json!(false)),
                    ("penalties_12m", json!(0)),
                    ("abnormal_operation", json!(false)),
                    ("serious_violation", json!(false)),
                    ("environmental_penalty_12m", json!(false)),
                ],
                "courts",
                "2026-11-15",
            ),
        ),
        (
            ProfileCategory::Credit,
            f(
                vec![
                    ("tax_credit_grade", json!("A")),
                    ("public_credit_rating", json!("AA")),
                    ("platform_score", json!(712)),
                ],
                "tax",
                "2026-04-30",
            ),
        ),
    ];
    for (category, fields) in categories {
        env.table
            .put(category_item(firm, category, &fields).unwrap(), None)
            .await
            .unwrap();
    }
}

/// Grants `bank` an authorization of `firm` for `scope`, valid from `from` to `until` (relative
/// to now), for pre- and in-loan use.
pub async fn grant(
    env: &Env,
    firm: &Uscc,
    bank: &BankId,
    scope: Vec<String>,
    from: Duration,
    until: Duration,
) -> AuthorizationId {
    let id = AuthorizationId(env.ids.ulid());
    let now = env.now();
    Authorizations::new(env.table.clone(), env.clock.clone())
        .grant(&Authorization {
            id,
            uscc: firm.clone(),
            bank_id: bank.clone(),
            scope,
            purposes: vec![Purpose::PreLoan, Purpose::InLoan],
            valid_from: now + from,
            valid_until: now + until,
            evidence: ConsentEvidence {
                consented_by: "legal-rep-1".into(),
                method: "counter".into(),
                text_version: "consent-v3".into(),
                at: now + from,
            },
            revoked_at: None,
        })
        .await
        .unwrap();
    id
}

/// `n` distinct made-up firms of Ningbo's Haishu district, the same for the same `seed`.
pub fn firms(n: usize, seed: u64) -> Vec<Uscc> {
    let mut rng = Rng::new(seed);
    let mut out: Vec<Uscc> = Vec::new();
    while out.len() < n {
        let u = Uscc::parse(&uscc(&mut rng, "330203")).unwrap();
        if !out.contains(&u) {
            out.push(u);
        }
    }
    out
}
