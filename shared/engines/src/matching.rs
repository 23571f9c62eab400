//! Matching a financing demand to the product catalogue: which listed products the firm is
//! eligible for, how well each fits (an additive score whose every point has a stated reason),
//! and which banks are offered the demand, in what order.
//!
//! Eligibility: the product is in the catalogue today, serves the firm's region (from the
//! USCC's registration division) and industry (when known), the amount and term lie in its
//! ranges, a mortgage product needs collateral, and every indicator condition holds — when the
//! firm's profile has that indicator. A condition whose indicator is unknown does not exclude
//! the product (the bank checks it at review) but is reported as unverified.

use chrono::NaiveDate;
use puhui_domain::{BankId, DivisionCode, Fen, IndustryCode, Product, ProductId, ProductType};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::rules::condition_holds;

/// Most banks one demand is offered to.
pub const MAX_OFFERED_BANKS: usize = 10;
/// Most products of one bank listed with an offer.
pub const MAX_PRODUCTS_PER_BANK: usize = 3;

/// What the matcher needs to know about the demand and the firm.
#[derive(Debug, Clone)]
pub struct MatchRequest {
    /// Where the firm is registered.
    pub region: Option<DivisionCode>,
    /// The firm's industry, when its profile says.
    pub industry: Option<IndustryCode>,
    /// Amount wanted.
    pub amount: Fen,
    /// Term wanted (months).
    pub term_months: u16,
    /// Whether collateral is available.
    pub collateral: bool,
    /// The bank whose loan code was scanned: offered first when it has a matching product.
    pub issuing_bank: Option<BankId>,
    /// The product the loan code advertised: listed first within its bank.
    pub code_product: Option<ProductId>,
    /// The firm's indicator values by catalogue id, when a profile exists.
    pub indicators: Option<Map<String, Value>>,
    /// Today's business date (Shanghai).
    pub today: NaiveDate,
}

/// One component of a product's score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ScoreReason {
    /// Which factor (`rate`, `amount_headroom`, `collateral_fit`, `local_product`, `conditions`).
    pub factor: String,
    /// Points it contributed.
    pub points: u32,
    /// In words.
    pub detail: String,
}

/// A product the firm is eligible for, with its score and the reasons for it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ProductMatch {
    /// The product.
    pub product_id: ProductId,
    /// Its name.
    pub name: String,
    /// Total score (0–100).
    pub score: u32,
    /// Every component of the score.
    pub reasons: Vec<ScoreReason>,
    /// Conditions that could not be checked for lack of profile data (indicator ids).
    pub unverified: Vec<String>,
}

/// A bank offered the demand, with its matching products best first.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BankOffer {
    /// The bank.
    pub bank_id: BankId,
    /// 1 for the first bank offered.
    pub rank: u32,
    /// True if this bank issued the scanned loan code.
    pub issuing_bank: bool,
    /// Matching products, best first (at most [`MAX_PRODUCTS_PER_BANK`]).
    pub products: Vec<ProductMatch>,
}

/// Why a product was left out (for tests and explanations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exclusion {
    /// Not in the catalogue today.
    NotListed,
    /// Does not serve the firm's region.
    Region,
    /// Does not serve the firm's industry.
    Industry,
    /// Amount outside the product's range.
    Amount,
    /// Term outside the product's range.
    Term,
    /// A mortgage product and no collateral.
    Collateral,
    /// An indicator condition failed (the indicator id).
    Condition(String),
}

/// Scores one product for the request, or says why it is excluded.
pub fn assess(req: &MatchRequest, p: &Product) -> Result<ProductMatch, Exclusion> {
    if !p.in_catalogue(req.today) {
        return Err(Exclusion::NotListed);
    }
    if let Some(r) = &req.region
        && !p.serves_region(r)
    {
        return Err(Exclusion::Region);
    }
    if let Some(i) = &req.industry
        && !p.serves_industry(i)
    {
        return Err(Exclusion::Industry);
    }
    let t = &p.terms;
    if !t.amount.contains(req.amount) {
        return Err(Exclusion::Amount);
    }
    if !t.term_months.contains(req.term_months) {
        return Err(Exclusion::Term);
    }
    if t.product_type == ProductType::Mortgage && !req.collateral {
        return Err(Exclusion::Collateral);
    }
    let mut unverified = Vec::new();
    for c in &t.conditions {
        match req.indicators.as_ref().and_then(|m| m.get(&c.fact)) {
            Some(v) if !v.is_null() => {
                if !condition_holds(c, v) {
                    return Err(Exclusion::Condition(c.fact.clone()));
                }
            }
            _ => unverified.push(c.fact.clone()),
        }
    }
    let mut reasons = Vec::new();
    // Price matters most to a small firm: 3 % or less earns all 40 points, 12 % or more none.
    let rate = t.annual_rate_bp.min.0;
    let rate_points = (40 * (1200 - rate.clamp(300, 1200)) / 900) as u32;
    reasons.push(ScoreReason {
        factor: "rate".into(),
        points: rate_points,
        detail: format!("lowest annual rate {}.{:02} %", rate / 100, rate % 100),
    });
    // Room above the request: a product whose ceiling is at least twice the amount fits easily.
    let headroom = if req.amount.0.saturating_mul(2) <= t.amount.max.0 {
        20
    } else {
        10
    };
    reasons.push(ScoreReason {
        factor: "amount_headroom".into(),
        points: headroom,
        detail: format!("up to {} available", t.amount.max),
    });
    let (fit, why) = match (t.product_type, req.collateral) {
        (ProductType::Mortgage, true) => (15, "secured product and collateral offered"),
        (ProductType::Credit, false) => (15, "unsecured product, no collateral needed"),
        (ProductType::Credit, true) => (10, "unsecured product"),
        (ProductType::Guaranteed, _) => (5, "needs a guarantor"),
        (ProductType::Mortgage, false) => (0, "unreachable: excluded above"),
    };
    reasons.push(ScoreReason {
        factor: "collateral_fit".into(),
        points: fit,
        detail: why.into(),
    });
    let local = !t.regions.is_empty();
    reasons.push(ScoreReason {
        factor: "local_product".into(),
        points: if local { 10 } else { 5 },
        detail: if local {
            "designed for the firm's area".into()
        } else {
            "available everywhere".into()
        },
    });
    let verified = t.conditions.len() - unverified.len();
    let cond_points = if t.conditions.is_empty() {
        15
    } else {
        (15 * verified / t.conditions.len()) as u32
    };
    reasons.push(ScoreReason {
        factor: "conditions".into(),
        points: cond_points,
        detail: format!(
            "{verified} of {} conditions verified on the firm's data",
            t.conditions.len()
        ),
    });
    Ok(ProductMatch {
        product_id: p.id,
        name: t.name.clone(),
        score: reasons.iter().map(|r| r.points).sum(),
        reasons,
        unverified,
    })
}

/// Matches a demand against the catalogue: the banks to offer it to, best first. The issuing
/// bank comes first when it has a matching product; the others by their best product's score,
/// then by bank id so the order is stable.
pub fn match_demand(req: &MatchRequest, products: &[Product]) -> Vec<BankOffer> {
    let mut by_bank: std::collections::BTreeMap<&BankId, Vec<ProductMatch>> = Default::default();
    for p in products {
        if let Ok(m) = assess(req, p) {
            by_bank.entry(&p.bank_id).or_default().push(m);
        }
    }
    let mut offers: Vec<BankOffer> = by_bank
        .into_iter()
        .map(|(bank, mut matches)| {
            matches.sort_by(|a, b| {
                let advertised = |m: &ProductMatch| Some(m.product_id) == req.code_product;
                advertised(b)
                    .cmp(&advertised(a))
                    .then(b.score.cmp(&a.score))
                    .then(a.product_id.cmp(&b.product_id))
            });
            matches.truncate(MAX_PRODUCTS_PER_BANK);
            BankOffer {
                issuing_bank: req.issuing_bank.as_ref() == Some(bank),
                bank_id: bank.clone(),
                rank: 0,
                products: matches,
            }
        })
        .collect();
    let best = |o: &BankOffer| o.products.iter().map(|m| m.score).max().unwrap_or(0);
    offers.sort_by(|a, b| {
        b.issuing_bank
            .cmp(&a.issuing_bank)
            .then(best(b).cmp(&best(a)))
            .then(a.bank_id.cmp(&b.bank_id))
    });
    offers.truncate(MAX_OFFERED_BANKS);
    for (i, o) in offers.iter_mut().enumerate() {
        o.rank = i as u32 + 1;
    }
    offers
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use puhui_domain::ProductStatus;
    use serde_json::json;

    fn product(bank: &str, n: u128, extra: Value) -> Product {
        let mut terms = json!({
            "name": format!("P{n}"), "product_type": "credit",
            "amount": {"min": 100_000, "max": 100_000_000},
            "term_months": {"min": 1, "max": 36},
            "annual_rate_bp": {"min": 400, "max": 900},
            "regions": ["330200"], "valid_from": "2026-01-01"
        });
        for (k, v) in extra.as_object().unwrap() {
            terms[k] = v.clone();
        }
        let now = chrono::Utc::now();
        Product {
            id: ProductId(ulid::Ulid(n)),
            bank_id: BankId::parse(bank).unwrap(),
            terms: serde_json::from_value(terms).unwrap(),
            status: ProductStatus::Listed,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    fn request() -> MatchRequest {
        MatchRequest {
            region: Some(DivisionCode::parse("330203").unwrap()),
            industry: None,
            amount: Fen::yuan(200_000),
            term_months: 12,
            collateral: false,
            issuing_bank: None,
            code_product: None,
            indicators: None,
            today: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
        }
    }

    #[test]
    fn ineligible_products_are_excluded_with_the_reason() {
        let r = request();
        let cases = [
            (json!({"regions": ["310000"]}), Exclusion::Region),
            (
                json!({"amount": {"min": 100, "max": 1_000_000}}),
                Exclusion::Amount,
            ),
            (
                json!({"term_months": {"min": 24, "max": 36}}),
                Exclusion::Term,
            ),
            (json!({"product_type": "mortgage"}), Exclusion::Collateral),
            (json!({"valid_to": "2026-06-30"}), Exclusion::NotListed),
        ];
        for (extra, why) in cases {
            assert_eq!(assess(&r, &product("a1", 1, extra)), Err(why));
        }
        let mut p = product("a1", 1, json!({}));
        p.status = ProductStatus::Delisted;
        assert_eq!(assess(&r, &p), Err(Exclusion::NotListed));
    }

    #[test]
    fn conditions_apply_when_the_profile_has_the_indicator() {
        let p = product(
            "a1",
            1,
            json!({"conditions": [
                {"fact": "tax_credit_grade", "operator": "in", "value": ["A", "B"]},
                {"fact": "social_insured_headcount", "operator": "greaterThanInclusive", "value": 5}
            ]}),
        );
        let mut r = request();
        let unknown = assess(&r, &p).unwrap();
        assert_eq!(
            unknown.unverified,
            vec!["tax_credit_grade", "social_insured_headcount"]
        );
        r.indicators = Some(
            json!({"tax_credit_grade": "A", "social_insured_headcount": 12.0})
                .as_object()
                .cloned()
                .unwrap(),
        );
        let verified = assess(&r, &p).unwrap();
        assert!(verified.unverified.is_empty());
        assert!(
            verified.score > unknown.score,
            "verified conditions earn points"
        );
        r.indicators = Some(
            json!({"tax_credit_grade": "C"})
                .as_object()
                .cloned()
                .unwrap(),
        );
        assert_eq!(
            assess(&r, &p),
            Err(Exclusion::Condition("tax_credit_grade".into()))
        );
    }

    #[test]
    fn the_score_is_the_sum_of_its_reasons() {
        let m = assess(&request(), &product("a1", 1, json!({}))).unwrap();
        assert_eq!(m.score, m.reasons.iter().map(|r| r.points).sum::<u32>());
        // 4.00 % → 40 × 800 / 900 = 35; headroom 20; credit w/o collateral 15; local 10; no conditions 15.
        assert_eq!(m.score, 35 + 20 + 15 + 10 + 15);
        assert!(m.score <= 100);
    }

    #[test]
    fn the_issuing_bank_goes_first_then_the_best_score() {
        let cheap = json!({"annual_rate_bp": {"min": 300, "max": 500}});
        let dear = json!({"annual_rate_bp": {"min": 1000, "max": 1200}});
        let products = vec![
            product("zz", 1, cheap.clone()),
            product("mm", 2, dear.clone()),
            product("aa", 3, dear),
            product("mm", 4, json!({"regions": ["110000"]})),
        ];
        let mut r = request();
        let order = |offers: Vec<BankOffer>| {
            offers
                .into_iter()
                .map(|o| (o.bank_id.to_string(), o.rank))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            order(match_demand(&r, &products)),
            vec![("zz".into(), 1), ("aa".into(), 2), ("mm".into(), 3)]
        );
        r.issuing_bank = Some(BankId::parse("mm").unwrap());
        let offers = match_demand(&r, &products);
        assert!(offers[0].issuing_bank);
        assert_eq!(
            order(offers),
            vec![("mm".into(), 1), ("zz".into(), 2), ("aa".into(), 3)]
        );
        // An issuing bank without a matching product is not offered at all.
        r.issuing_bank = Some(BankId::parse("qq").unwrap());
        assert_eq!(match_demand(&r, &products).len(), 3);
    }

    #[test]
    fn offers_are_capped() {
        let products: Vec<Product> = (0..40)
            .map(|i| product(&format!("b{:02}", i % 20), i as u128 + 1, json!({})))
            .collect();
        let offers = match_demand(&request(), &products);
        assert_eq!(offers.len(), MAX_OFFERED_BANKS);
        assert!(
            offers
                .iter()
                .all(|o| o.products.len() <= MAX_PRODUCTS_PER_BANK)
        );
    }

    proptest::proptest! {
        #[test]
        fn matching_never_offers_an_ineligible_product(
            amount in 1i64..200_000_000, term in 1u16..60, collateral: bool,
            rates in proptest::collection::vec((100i64..3000, 0i64..500), 1..12),
        ) {
            let kinds = ["credit", "mortgage", "guaranteed"];
            let products: Vec<Product> = rates.iter().enumerate().map(|(i, (min, spread))| {
                let kind = kinds[i % 3];
                product(&format!("b{}", i % 4), i as u128 + 1, json!({
                    "annual_rate_bp": {"min": min, "max": min + spread},
                    "product_type": kind,
                }))
            }).collect();
            let mut r = request();
            r.amount = Fen(amount);
            r.term_months = term;
            r.collateral = collateral;
            for offer in match_demand(&r, &products) {
                for m in offer.products {
                    let p = products.iter().find(|p| p.id == m.product_id).unwrap();
                    proptest::prop_assert!(assess(&r, p).is_ok());
                    proptest::prop_assert_eq!(&p.bank_id, &offer.bank_id);
                    proptest::prop_assert!(m.score <= 100);
                }
            }
        }
    }
}
