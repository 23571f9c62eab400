//! Scorecards exported by toad (`ScoreCard.export()`), scored as toad's
//! `ScoreCard().load(card).predict(X, return_sub=True)` scores them: every fixture row's bin,
//! per-variable points and total bit for bit (fixtures and the script that made them:
//! `samplekit/fixtures/toad`), properties, and refused cards.

use proptest::prelude::*;
use puhui_engines::scorecard::{Row, Value, python_float_repr};
use puhui_engines::toad::{ToadBinProblem, ToadCard, ToadCardError};

mod common;

const FIXTURES: common::Fixtures = common::Fixtures("toad");

fn card() -> ToadCard {
    ToadCard::from_json(&FIXTURES.text("card.json")).unwrap_or_else(|e| panic!("card.json: {e}"))
}

/// The rows of a fixture as pandas reads them, with their ids.
fn rows(name: &str, card: &ToadCard) -> (Vec<String>, Vec<Row>) {
    FIXTURES.rows(name, |column| card.variable(column).is_some())
}

/// Compares with toad's output: bin index (-1: none), points and total, bit for bit.
fn assert_matches(rows_file: &str, expected_file: &str) -> usize {
    let card = card();
    let (ids, rows) = rows(rows_file, &card);
    let (header, records) = FIXTURES.csv(expected_file);
    assert_eq!(records.len(), rows.len(), "{expected_file}: row count");
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{expected_file}: no column {name}"))
    };
    assert_eq!(header.len(), 2 + 2 * card.variables().len());
    let mut unmatched = 0;
    for ((record, id), row) in records.iter().zip(&ids).zip(&rows) {
        assert_eq!(&record[0], id, "{expected_file}: row order");
        let score = card.score(row);
        for (vp, var) in score.per_variable.iter().zip(card.variables()) {
            let bin: i64 = record[col(&format!("{}_bin", vp.variable))]
                .parse()
                .expect("bin index");
            let want_bin = usize::try_from(bin).ok().map(|i| var.bins()[i].label());
            assert_eq!(
                vp.bin, want_bin,
                "{expected_file} id {id}: {} bin",
                vp.variable
            );
            assert_eq!(vp.unmatched, bin == -1);
            unmatched += usize::from(vp.unmatched);
            let want: f64 = record[col(&format!("{}_points", vp.variable))]
                .parse()
                .expect("points");
            assert_eq!(
                vp.points.map(f64::to_bits),
                Some(want.to_bits()),
                "{expected_file} id {id}: {} points {:?} != toad's {want:?}",
                vp.variable,
                vp.points
            );
        }
        let cell = &record[col("score")];
        let want: f64 = cell.parse().expect("score");
        assert_eq!(
            score.total.to_bits(),
            want.to_bits(),
            "{expected_file} id {id}: total {:?} != toad's {want:?}",
            score.total
        );
        assert_eq!(&python_float_repr(score.total), cell);
    }
    assert_eq!(card.score_batch(&rows).len(), rows.len());
    unmatched
}

#[test]
fn fixture_rows_score_as_toad_predict() {
    // 80 sampled applicants and 93 edge rows; some unseen cities match no bin
    let unmatched = assert_matches("rows.csv", "expected.csv");
    assert!(unmatched > 0);
    // tenure as a float column: missing (filled with -1), ±inf, 2.5
    assert_matches("rows_tenure_float.csv", "expected_tenure_float.csv");
}

#[test]
fn card_as_exported() {
    let card = card();
    let names: Vec<_> = card.variables().iter().map(|v| v.name()).collect();
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
    let age = card.variable("age").expect("age");
    assert!(age.is_numeric());
    assert_eq!(age.bins().last().map(|b| b.label()), Some("nan"));
    let bin = |var: &str, v: Value| {
        card.variable(var)
            .expect(var)
            .bin_of(&v)
            .map(|b| b.label().to_owned())
    };
    // closed on the left; missing into `nan`
    assert_eq!(
        bin("age", Value::Number(24.0)).as_deref(),
        Some("[24.0 ~ 30.0)")
    );
    assert_eq!(bin("age", Value::Missing).as_deref(), Some("nan"));
    // no `nan` bin: toad fills -1
    assert_eq!(
        bin("income", Value::Missing),
        bin("income", Value::Number(-1.0))
    );
    assert_eq!(
        bin("tenure", Value::Integer(9)).as_deref(),
        Some("[9 ~ 15)")
    );
    // text in a numeric variable: toad raises; here no bin, lowest points, flagged
    assert_eq!(bin("tenure", Value::from("9")), None);
    let city = card.variable("city").expect("city");
    assert!(!city.is_numeric());
    assert_eq!(bin("city", Value::Missing).as_deref(), Some("nan,sz"));
    assert_eq!(bin("city", Value::from("nan")).as_deref(), Some("nan,sz"));
    assert_eq!(bin("city", Value::from("")), None);
    assert_eq!(bin("city", Value::Number(1.0)), None);
    assert_eq!(
        bin("industry", Value::from("unseen")).as_deref(),
        Some("else")
    );
    assert_eq!(bin("industry", Value::Integer(3)).as_deref(), Some("else"));
    assert_eq!(
        bin("industry", Value::from("制造业")).as_deref(),
        Some("制造业,farm")
    );

    let score = card.score(&Row::new().with("city", "unseen"));
    let vp = &score.per_variable[4];
    assert!(vp.unmatched && vp.bin.is_none());
    assert_eq!(vp.points, Some(city.unmatched_points()));
    assert_eq!(score.basepoints, 0.0);
    assert!(score.any_unmatched());
}

fn refused(json: &str) -> ToadCardError {
    match ToadCard::from_json(json) {
        Ok(_) => panic!("accepted: {json}"),
        Err(e) => e,
    }
}

fn problem(json: &str) -> (u64, String, ToadBinProblem) {
    match refused(json) {
        ToadCardError::Variable {
            line,
            variable,
            problem,
        } => (line, variable, *problem),
        other => panic!("{json}: {other}"),
    }
}

#[test]
fn malformed_cards_are_refused_precisely() {
    let e = refused("{\"a\": {\"[-inf ~ inf)\": 1.0}");
    assert_eq!(
        e.to_string(),
        "line 1, column 28: expected `,` or `}`, found the end of the file"
    );
    let e = refused("{\n \"a\": {\"[-inf ~ inf)\": 1},\n \"a\": {\"x\": 2}\n}");
    assert!(
        e.to_string()
            .starts_with("line 3, column 2: key `a` repeated (first on line 2)"),
        "{e}"
    );
    assert!(matches!(refused("{}"), ToadCardError::NoVariables));
    assert!(matches!(refused("[]"), ToadCardError::Json { .. }));
    let e = refused("{\"a\": {\"x\": \"1\"}}");
    assert!(
        e.to_string()
            .contains("variable `a`, bin `x`: expected its points as a number"),
        "{e}"
    );
    assert!(matches!(
        refused("{\"a\": {}} x"),
        ToadCardError::Json { .. }
    ));

    let (line, var, p) = problem("{\n\"a\": {\n\"[-inf ~ 1.0)\": 1,\n\"[1.0 ~ inf)\": NaN}}");
    assert_eq!((line, var.as_str()), (4, "a"));
    assert!(matches!(p, ToadBinProblem::NonFinitePoints { .. }));
    let (_, _, p) = problem("{\"a\": {}}");
    assert_eq!(p, ToadBinProblem::NoBins);
    let (line, _, p) = problem("{\"a\": {\n\"[-inf ~ 1.0)\": 1,\n\"[2.0 ~ inf)\": 2}}");
    assert_eq!(line, 3);
    assert_eq!(
        p.to_string(),
        "bin `[2.0 ~ inf)` starts at 2.0 but the bin before it, `[-inf ~ 1.0)` (line 2), ends at 1.0; intervals must follow each other without a gap or overlap"
    );
    let (_, _, p) = problem("{\"a\": {\"[-inf ~ 2.0)\": 1, \"[1.0 ~ inf)\": 2}}");
    assert!(matches!(p, ToadBinProblem::Unchained { .. }));
    let (_, _, p) = problem("{\"a\": {\"[-inf ~ 2.0)\": 1, \"[2.0 ~ 5.0)\": 2}}");
    assert!(matches!(p, ToadBinProblem::OpenEnd { .. }));
    let (_, _, p) = problem("{\"a\": {\"[0.0 ~ inf)\": 1}}");
    assert!(matches!(p, ToadBinProblem::FirstNotFromNegInf { .. }));
    let (_, _, p) =
        problem("{\"a\": {\"[-inf ~ 2.0)\": 1, \"[2.0 ~ 2.0)\": 1, \"[2.0 ~ inf)\": 2}}");
    assert!(matches!(p, ToadBinProblem::EmptyInterval { .. }));
    let (_, _, p) = problem("{\"a\": {\"[-inf ~ 2.0)\": 1, \"nan\": 0, \"[2.0 ~ inf)\": 2}}");
    assert_eq!(p, ToadBinProblem::NanNotLast);
    let (_, _, p) = problem("{\"a\": {\"[-inf ~ 2.0)\": 1, \"[2.0 ~ 3,0)\": 2}}");
    assert!(matches!(p, ToadBinProblem::NotInterval { .. }));
    let (_, _, p) = problem("{\"a\": {\"nan\": 1, \"[-inf ~ inf)\": 2}}");
    assert!(matches!(p, ToadBinProblem::IntervalInCategorical { .. }));
    let (line, _, p) = problem("{\"a\": {\"x,y\": 1,\n\"z,x\": 2}}");
    assert_eq!(line, 2);
    assert_eq!(
        p.to_string(),
        "category `x` is in bin `z,x` and already in bin `x,y` (line 1); a value can be in only one bin"
    );
    assert!(matches!(
        ToadCard::from_json_bytes(b"{\"a\xff\": {}}"),
        Err(ToadCardError::NotUtf8 { line: 1, offset: 3 })
    ));
}

fn arb_card() -> impl Strategy<Value = (Vec<f64>, Vec<f64>, bool)> {
    (
        prop::collection::btree_set(-1000i32..1000, 0..6),
        prop::collection::vec(-200i32..200, 8),
        any::<bool>(),
    )
        .prop_map(|(splits, points, nan)| {
            let splits: Vec<f64> = splits.into_iter().map(|s| f64::from(s) / 4.0).collect();
            let points = points.into_iter().map(|p| f64::from(p) / 100.0).collect();
            (splits, points, nan)
        })
}

fn card_json(splits: &[f64], points: &[f64], nan: bool, monotone: bool) -> String {
    let mut bounds = vec!["-inf".to_owned()];
    bounds.extend(splits.iter().map(|s| python_float_repr(*s)));
    bounds.push("inf".to_owned());
    let mut bins: Vec<String> = bounds
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let p = if monotone { i as f64 } else { points[i] };
            format!("\"[{} ~ {})\": {}", w[0], w[1], python_float_repr(p))
        })
        .collect();
    if nan {
        bins.push(format!("\"nan\": {}", python_float_repr(points[7])));
    }
    format!(
        "{{\"x\": {{{}}}, \"c\": {{\"a,b\": {}, \"else\": {}}}}}",
        bins.join(", "),
        python_float_repr(points[6]),
        python_float_repr(points[5])
    )
}

proptest! {
    #[test]
    fn total_is_the_sum_of_points(
        (splits, points, nan) in arb_card(),
        x in prop_oneof![(-300.0f64..300.0).prop_map(Value::Number), Just(Value::Missing)],
        c in prop_oneof![Just(Value::from("a")), Just(Value::from("q")), Just(Value::Missing)],
    ) {
        let card = ToadCard::from_json(&card_json(&splits, &points, nan, false)).expect("card");
        let s = card.score(&Row::new().with("x", x).with("c", c));
        let sum = s.per_variable.iter().fold(0.0, |a, p| a + p.points.expect("points"));
        prop_assert_eq!(s.total.to_bits(), sum.to_bits());
        prop_assert!(!s.any_unmatched());
    }

    #[test]
    fn monotone_bins_give_monotone_points(
        (splits, points, _) in arb_card(),
        a in -300.0f64..300.0,
        b in -300.0f64..300.0,
    ) {
        let card = ToadCard::from_json(&card_json(&splits, &points, false, true)).expect("card");
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let p = |v: f64| card.score(&Row::new().with("x", v)).per_variable[0].points;
        prop_assert!(p(lo) <= p(hi));
    }
}
