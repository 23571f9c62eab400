//! Logistic regression on WOE features: every fixture row's PD against sklearn's
//! `predict_proba` (fixtures and the script that made them: `samplekit/fixtures/logistic`),
//! and refused models.

use puhui_engines::logistic::{LogisticModel, LogisticModelError};
use puhui_engines::scorecard::{Row, Value};

mod common;

const FIXTURES: common::Fixtures = common::Fixtures("logistic");

fn model() -> LogisticModel {
    LogisticModel::from_json(&FIXTURES.text("model.json"))
        .unwrap_or_else(|e| panic!("model.json: {e}"))
}

/// The rows of a fixture as pandas reads them, with their ids.
fn rows(name: &str, model: &LogisticModel) -> (Vec<String>, Vec<Row>) {
    FIXTURES.rows(name, |column| model.feature(column).is_some())
}

struct Observed {
    rows: usize,
    unmatched: usize,
    /// Largest |PD - sklearn's PD scoring the whole frame|.
    max_diff_batch: f64,
    /// Rows whose z equals sklearn's for the whole frame, bit for bit.
    z_equal_batch: usize,
}

/// Compares with sklearn: bins and WOE exactly; z and PD bit for bit with the row scored
/// alone; PD within 1e-12 of the whole frame's.
fn compare(rows_file: &str, expected_file: &str) -> Observed {
    let model = model();
    let (ids, rows) = rows(rows_file, &model);
    let (header, records) = FIXTURES.csv(expected_file);
    assert_eq!(records.len(), rows.len(), "{expected_file}: row count");
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{expected_file}: no column {name}"))
    };
    let num = |record: &[String], name: &str| -> f64 {
        record[col(name)]
            .parse()
            .unwrap_or_else(|e| panic!("{expected_file}: {name}: {e}"))
    };
    let mut seen = Observed {
        rows: rows.len(),
        unmatched: 0,
        max_diff_batch: 0.0,
        z_equal_batch: 0,
    };
    for ((record, id), row) in records.iter().zip(&ids).zip(&rows) {
        assert_eq!(&record[0], id, "{expected_file}: row order");
        let r = model.score(row);
        for (fc, feature) in r.per_feature.iter().zip(model.features()) {
            let bin: i64 = record[col(&format!("{}_bin", fc.variable))]
                .parse()
                .expect("bin index");
            let want_bin = usize::try_from(bin)
                .ok()
                .map(|i| feature.bins().bins()[i].label());
            assert_eq!(
                fc.bin, want_bin,
                "{expected_file} {id}: {} bin",
                fc.variable
            );
            assert_eq!(fc.unmatched, bin == -1);
            seen.unmatched += usize::from(fc.unmatched);
            let want = num(record, &format!("{}_woe", fc.variable));
            assert_eq!(
                fc.woe.to_bits(),
                want.to_bits(),
                "{expected_file} {id}: {} WOE {:?} != toad's {want:?}",
                fc.variable,
                fc.woe
            );
            assert_eq!(
                fc.contribution.to_bits(),
                (feature.coef() * fc.woe).to_bits()
            );
        }
        let (z_alone, pd_alone) = (num(record, "z_alone"), num(record, "pd_alone"));
        assert_eq!(
            (r.z.to_bits(), r.pd.to_bits()),
            (z_alone.to_bits(), pd_alone.to_bits()),
            "{expected_file} {id}: z {:?} pd {:?} != sklearn's alone {z_alone:?} {pd_alone:?}",
            r.z,
            r.pd
        );
        let (z, pd) = (num(record, "z"), num(record, "pd"));
        let diff = (r.pd - pd).abs();
        assert!(
            diff <= 1e-12,
            "{expected_file} {id}: pd {:?} vs {pd:?}",
            r.pd
        );
        seen.max_diff_batch = seen.max_diff_batch.max(diff);
        seen.z_equal_batch += usize::from(r.z.to_bits() == z.to_bits());
        assert_eq!(r.any_unmatched(), r.per_feature.iter().any(|f| f.unmatched));
    }
    assert_eq!(model.score_batch(&rows).len(), rows.len());
    seen
}

#[test]
fn fixture_rows_score_as_sklearn_predict_proba() {
    // 80 sampled applicants and 95 edge rows; unseen cities match no bin (lowest WOE)
    let seen = compare("rows.csv", "expected.csv");
    assert_eq!(seen.rows, 175);
    assert_eq!(seen.unmatched, 5);
    // tenure as a float column: missing (filled with -1), ±inf, 2.5
    let float = compare("rows_tenure_float.csv", "expected_tenure_float.csv");
    assert_eq!(float.rows, 20);
    // the whole-frame BLAS order differs from the row alone by an ulp of z at most
    let max = seen.max_diff_batch.max(float.max_diff_batch);
    eprintln!(
        "max |pd - sklearn whole-frame pd| = {max:e}; z bit-equal on {} of 175 and {} of 20 rows",
        seen.z_equal_batch, float.z_equal_batch
    );
    assert!(max <= 1e-15, "{max:e}");
}

#[test]
fn model_as_exported() {
    let model = model();
    assert_eq!(model.target(), "bad");
    let names: Vec<_> = model.features().iter().map(|f| f.name()).collect();
    assert_eq!(
        names,
        [
            "age",
            "income",
            "balance_change",
            "tenure",
            "city",
            "industry"
        ]
    );
    let age = model.feature("age").expect("age");
    assert_eq!(age.coef(), 1.0445042947364678);
    assert_eq!(age.woe_of(&Value::Missing), Some(0.745843983949816));
    assert_eq!(age.woe_of(&Value::Number(29.0)), Some(0.2494091080074314));
    let city = model.feature("city").expect("city");
    assert_eq!(city.woe_of(&Value::from("unseen")), None);
    assert_eq!(city.unmatched_woe(), -0.30726311765088743);
    let r = model.score(&Row::new().with("city", "unseen"));
    let c = &r.per_feature[4];
    assert!(c.unmatched && c.bin.is_none() && r.any_unmatched());
    assert_eq!(c.woe, city.unmatched_woe());
    assert!(r.pd > 0.0 && r.pd < 1.0);
    assert_eq!(
        r.z,
        r.per_feature.iter().fold(0.0, |a, f| a + f.contribution) + model.intercept()
    );
}

fn refused(json: &str) -> LogisticModelError {
    match LogisticModel::from_json(json) {
        Ok(_) => panic!("accepted: {json}"),
        Err(e) => e,
    }
}

const FEATURE: &str = r#"{"coef": 0.5, "woe": {"[-inf ~ 1.0)": -0.2, "[1.0 ~ inf)": 0.3}}"#;

fn with(fields: &str) -> String {
    format!("{{{fields}}}")
}

#[test]
fn malformed_models_are_refused_naming_the_field() {
    let ok = with(&format!(
        r#""kind": "logistic_woe", "target": "bad", "intercept": -1.5, "features": {{"x": {FEATURE}}}"#
    ));
    let m = LogisticModel::from_json(&ok).expect("minimal model");
    assert_eq!(m.intercept(), -1.5);

    let cases: Vec<(String, &str)> = vec![
        (
            with(&format!(
                r#""target": "bad", "intercept": 1, "features": {{"x": {FEATURE}}}"#
            )),
            "line 1: field `kind`: missing",
        ),
        (
            with(&format!(
                r#""kind": "toad", "target": "bad", "intercept": 1, "features": {{"x": {FEATURE}}}"#
            )),
            "line 1: field `kind`: `toad` is not `logistic_woe`",
        ),
        (
            with(&format!(
                r#""kind": "logistic_woe", "target": 1, "intercept": 1, "features": {{"x": {FEATURE}}}"#
            )),
            "line 1: field `target`: expected text, found `1`",
        ),
        (
            with(&format!(
                r#""kind": "logistic_woe", "target": "bad", "features": {{"x": {FEATURE}}}"#
            )),
            "line 1: field `intercept`: missing",
        ),
        (
            with(&format!(
                r#""kind": "logistic_woe", "target": "bad", "intercept": "1", "features": {{"x": {FEATURE}}}"#
            )),
            "line 1: field `intercept`: expected a number, found `\"`",
        ),
        (
            with(&format!(
                r#""kind": "logistic_woe", "target": "bad", "intercept": NaN, "features": {{"x": {FEATURE}}}"#
            )),
            "line 1: field `intercept`: `NaN` is not finite",
        ),
        (
            with(r#""kind": "logistic_woe", "target": "bad", "intercept": 1"#),
            "line 1: field `features`: missing",
        ),
        (
            with(r#""kind": "logistic_woe", "target": "bad", "intercept": 1, "features": {}"#),
            "line 1: field `features`: no features",
        ),
        (
            with(&format!(
                r#""kind": "logistic_woe", "target": "bad", "intercept": 1, "bias": 2, "features": {{"x": {FEATURE}}}"#
            )),
            "line 1: field `bias`: unknown field; a model has `kind`, `target`, `intercept` and `features`",
        ),
        (
            with(
                r#""kind": "logistic_woe", "target": "bad", "intercept": 1, "features": {"x": {"woe": {"[-inf ~ inf)": 0}}}"#,
            ),
            "line 1: field `features.x.coef`: missing",
        ),
        (
            with(
                r#""kind": "logistic_woe", "target": "bad", "intercept": 1, "features": {"x": {"coef": 1}}"#,
            ),
            "line 1: field `features.x.woe`: missing",
        ),
        (
            with(
                r#""kind": "logistic_woe", "target": "bad", "intercept": 1, "features": {"x": {"coef": Infinity, "woe": {"[-inf ~ inf)": 0}}}"#,
            ),
            "line 1: field `features.x.coef`: `Infinity` is not finite",
        ),
        (
            with(
                r#""kind": "logistic_woe", "target": "bad", "intercept": 1, "features": {"x": {"coef": 1, "woe": {"[-inf ~ inf)": NaN}}}"#,
            ),
            "line 1: field `features.x.woe`: bin `[-inf ~ inf)`: WOE `NaN` is not finite",
        ),
        (
            with(
                r#""kind": "logistic_woe", "target": "bad", "intercept": 1, "features": {"x": {"coef": 1, "woe": {"[-inf ~ inf)": 0}, "iv": 2}}"#,
            ),
            "line 1: field `features.x.iv`: unknown field; a feature has `coef` and `woe`",
        ),
    ];
    for (json, message) in cases {
        assert_eq!(refused(&json).to_string(), message, "{json}");
    }

    // bins refused as toad's card parser refuses them, naming the feature and line
    let e = refused(
        "{\"kind\": \"logistic_woe\", \"target\": \"bad\", \"intercept\": 1, \"features\": {\n\"x\": {\"coef\": 1, \"woe\": {\"[-inf ~ 1.0)\": 0,\n\"[2.0 ~ inf)\": 1}}}}",
    );
    assert!(matches!(e, LogisticModelError::Bins { line: 3, .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("line 3: feature `x`: bin `[2.0 ~ inf)` starts at 2.0"),
        "{e}"
    );
    let e = refused(
        r#"{"kind": "logistic_woe", "target": "bad", "intercept": 1, "features": {"c": {"coef": 1, "woe": {"a,b": 0, "b": 1}}}}"#,
    );
    assert!(e.to_string().contains("category `b` is in bin `b`"), "{e}");
    let e = refused(
        r#"{"kind": "logistic_woe", "target": "bad", "intercept": 1, "features": {"c": {"coef": 1, "woe": {"a": "x"}}}}"#,
    );
    assert!(
        e.to_string()
            .contains("feature `c`, bin `a`: expected its WOE as a number"),
        "{e}"
    );

    // JSON errors: position, repeated keys, trailing text, not UTF-8
    let e = refused("{\"kind\": \"logistic_woe\",\n\"kind\": \"logistic_woe\"}");
    assert!(
        e.to_string()
            .starts_with("line 2, column 1: key `kind` repeated (first on line 1)"),
        "{e}"
    );
    let e = refused(&format!(
        r#"{{"kind": "logistic_woe", "target": "bad", "intercept": 1, "features": {{"x": {FEATURE}, "x": {FEATURE}}}}}"#
    ));
    assert!(e.to_string().contains("key `x` repeated"), "{e}");
    assert!(matches!(
        refused(&format!("{ok} x")),
        LogisticModelError::Json { .. }
    ));
    assert!(matches!(refused("[]"), LogisticModelError::Json { .. }));
    assert!(matches!(
        refused("{\"kind\": \"logistic_woe\""),
        LogisticModelError::Json { .. }
    ));
    assert!(matches!(
        LogisticModel::from_json_bytes(b"{\"k\xff\": 1}"),
        Err(LogisticModelError::NotUtf8 { line: 1, offset: 3 })
    ));
}
