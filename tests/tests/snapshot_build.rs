//! Indicator snapshots built from ingested files (issue 6), proven on both storage adapters
//! (embedded: SQLite and a local blob directory; AWS: DynamoDB and S3 on moto):
//!
//! 1. five departments' files for one month are ingested and the month is built: every firm's
//!    snapshot row, read through the store the risk scan reads, holds exactly the indicators
//!    the ingest wrote to the firm's newest indicators, and its registration's industry and
//!    establishment date (the screening columns);
//! 2. the next month, one department delivers again for half the firms (and a late file with
//!    an older as-of date), and market regulation for five: the new values win, the other
//!    values carry forward, the older file changes nothing, and the snapshot still matches the
//!    firms' newest indicators and registrations;
//! 3. ingesting a file again adds no input; building a month again publishes the same content;
//! 4. a file with rows of two months feeds both months' inputs;
//! 5. a month with no inputs and no earlier snapshot is not found.
//!
//! The AWS side needs `PUHUI_TEST_AWS_ENDPOINT` (run through `tests/scripts/with-moto.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;
use puhui_domain::indicators::CATALOGUE;
use puhui_domain::interfaces::ProfileCategory;
use puhui_domain::risk::Period;
use puhui_domain::sources::SourceCatalogue;
use puhui_domain::{IndustryCode, Uscc};
use puhui_samplekit::govdata;
use puhui_services::ingest::{IngestOutcome, IngestReport, IngestService};
use puhui_services::profiles;
use puhui_services::risk::{SnapshotBuilder, SnapshotStore};
use puhui_tests::harness::Env;
use serde_json::{Map, Value, json};

fn period(s: &str) -> Period {
    Period::parse(s).unwrap()
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

async fn ingest(env: &Env, source: &str, date: &str, name: &str, bytes: Vec<u8>) -> IngestReport {
    let key = format!("incoming/{source}/{date}/{name}");
    env.blobs.put(&key, bytes, "text/csv").await.unwrap();
    let svc = IngestService::new(env.table.clone(), env.blobs.clone(), env.clock.clone());
    match svc.ingest(&key).await.unwrap() {
        IngestOutcome::Ingested(r) => r,
        other => panic!("{key}: {other:?}"),
    }
}

/// One generated file of `source` for `firms` as of `as_of`, without defects.
async fn deliver(env: &Env, source: &str, firms: &[String], as_of: &str, date: &str, seed: u64) {
    let s = SourceCatalogue::builtin().get(source).unwrap();
    // The first bad row would be the 1000th.
    let file = govdata::batch(s, firms, day(as_of), 1000, seed);
    assert!(file.defects.is_empty());
    let report = ingest(env, source, date, &file.name, file.utf8()).await;
    assert_eq!(report.loaded, firms.len() as u64, "{source}");
    assert_eq!(report.indicator_inputs, firms.len() as u64, "{source}");
}

/// Firm → its indicator values (nulls left out) in the period's published snapshot, read shard
/// by shard as the risk scan's workers read them; checks USCC order across shards.
async fn snapshot(env: &Env, p: Period) -> Vec<(String, Map<String, Value>)> {
    let store = SnapshotStore::new(env.blobs.clone());
    let m = store.manifest(p).await.unwrap();
    let mut rows = Vec::new();
    for s in &m.shards {
        for b in store.shard(p, &s.path, None).await.unwrap() {
            rows.extend(puhui_snapshot::rows_as_json(&b));
        }
    }
    assert_eq!(rows.len() as u64, m.total_rows);
    assert!(rows.windows(2).all(|w| w[0].0 < w[1].0), "sorted by USCC");
    rows
}

/// Every firm's snapshot row equals its newest indicators as the ingest wrote them, and its
/// registration columns the industry there and the establishment date of its registration.
async fn matches_newest_indicators(env: &Env, rows: &[(String, Map<String, Value>)]) {
    for (code, values) in rows {
        let uscc = Uscc::parse_lenient(code).unwrap();
        let newest = profiles::indicators(env.table.as_ref(), &uscc)
            .await
            .unwrap()
            .expect("the firm's newest indicators");
        let mut values = values.clone();
        let industry = values.remove(puhui_snapshot::INDUSTRY);
        let established = values.remove(puhui_snapshot::ESTABLISHED_ON);
        assert_eq!(
            numbers_as_f64(&values),
            numbers_as_f64(&newest.values),
            "{code}"
        );
        assert_eq!(
            industry.as_ref().and_then(Value::as_str),
            newest.industry.as_ref().map(IndustryCode::as_str),
            "{code}"
        );
        let registered = profiles::category(env.table.as_ref(), &uscc, ProfileCategory::Basic)
            .await
            .unwrap()
            .and_then(|f| f.get("established_on").map(|f| f.value.clone()));
        assert_eq!(established, registered, "{code}");
    }
}

/// Numbers as floats: DynamoDB gives back a stored ratio of 1.0 as the integer 1.
fn numbers_as_f64(values: &Map<String, Value>) -> Map<String, Value> {
    values
        .iter()
        .map(|(k, v)| {
            let v = v.as_f64().map_or_else(|| v.clone(), |x| json!(x));
            (k.clone(), v)
        })
        .collect()
}

async fn two_months_built_from_ingested_files(env: &Env) {
    let firms = govdata::firms(40, 606);
    for (source, seed) in [
        ("tax_operating", 1),
        ("social_insurance", 2),
        ("courts_negative", 3),
        ("tax_credit", 4),
        ("market_regulation_registration", 5),
    ] {
        deliver(env, source, &firms, "2026-09-30", "2026-10-02", seed).await;
    }
    let builder = SnapshotBuilder::new(env.blobs.clone());
    let september = builder.build(period("2026-09")).await.unwrap();
    assert_eq!(september.firms, 40);
    assert_eq!(september.input_objects, 5);
    assert_eq!(september.input_rows, 200);
    assert_eq!(september.previous, None);
    let rows = snapshot(env, period("2026-09")).await;
    let mut codes: Vec<&String> = firms.iter().collect();
    codes.sort();
    assert_eq!(rows.iter().map(|r| &r.0).collect::<Vec<_>>(), codes);
    matches_newest_indicators(env, &rows).await;
    // Every source's indicators reached the snapshot (tax, social insurance, courts, grade),
    // and every registration's establishment date (a required field) and industry.
    for id in [
        "tax_paid_12m",
        "social_insured_headcount",
        "court_cases_defendant_12m",
        "tax_credit_grade",
        "established_on",
        "industry",
    ] {
        assert!(rows.iter().all(|(_, v)| v.contains_key(id)), "{id}");
    }

    // October: tax again for half the firms, then a late tax file as of early October for
    // the first firm (older than what it already has for the month).
    let half = &firms[..20];
    deliver(env, "tax_operating", half, "2026-10-31", "2026-11-01", 11).await;
    let late = format!(
        "uscc,as_of,tax_paid_12m,tax_paid_yoy,invoice_sales_yoy,tax_arrears\n{},2026-10-05,1,0.5,0.5,true\n",
        firms[0]
    );
    let report = ingest(
        env,
        "tax_operating",
        "2026-11-02",
        "late.csv",
        late.into_bytes(),
    )
    .await;
    assert_eq!(report.indicator_inputs, 1);
    // Market regulation re-registers five firms (another industry, another date: the newest
    // registration wins).
    let moved = &firms[..5];
    deliver(
        env,
        "market_regulation_registration",
        moved,
        "2026-10-15",
        "2026-10-16",
        12,
    )
    .await;
    let october = builder.build(period("2026-10")).await.unwrap();
    assert_eq!(october.previous, Some(period("2026-09")));
    assert_eq!(october.input_objects, 3);
    assert_eq!(october.firms, 40);
    let oct_rows = snapshot(env, period("2026-10")).await;
    matches_newest_indicators(env, &oct_rows).await;
    let by_code = |rows: &[(String, Map<String, Value>)], code: &str| {
        rows.iter().find(|r| r.0 == code).unwrap().1.clone()
    };
    // Half the firms have new tax figures; the others, and everyone's other indicators, carry.
    let changed = half
        .iter()
        .filter(|c| by_code(&oct_rows, c)["tax_paid_12m"] != by_code(&rows, c)["tax_paid_12m"])
        .count();
    assert!(changed >= 15, "{changed} of 20 firms' tax changed");
    // The re-registered firms' establishment dates are October's registration's (checked
    // against the profile above); nobody else's registration moved.
    let moved_dates = moved
        .iter()
        .filter(|c| by_code(&oct_rows, c)["established_on"] != by_code(&rows, c)["established_on"])
        .count();
    assert!(
        moved_dates >= 4,
        "{moved_dates} of 5 re-registered firms' dates changed"
    );
    for c in &firms[20..] {
        assert_eq!(by_code(&oct_rows, c), by_code(&rows, c), "{c}");
    }
    for c in half {
        let (now, before) = (by_code(&oct_rows, c), by_code(&rows, c));
        assert_eq!(
            now["social_insured_headcount"],
            before["social_insured_headcount"]
        );
        assert_eq!(now["tax_credit_grade"], before["tax_credit_grade"]);
    }
    assert_ne!(by_code(&oct_rows, &firms[0])["tax_paid_12m"], json!(1));

    // The risk scan takes the newest snapshot.
    let store = SnapshotStore::new(env.blobs.clone());
    assert_eq!(store.latest().await.unwrap().unwrap().period, "2026-10");

    // The same file again adds no input; building again publishes the same content.
    let s = SourceCatalogue::builtin().get("tax_operating").unwrap();
    let again = govdata::batch(s, half, day("2026-10-31"), 1000, 11);
    let key = format!("incoming/tax_operating/2026-11-01/{}", again.name);
    env.blobs.put(&key, again.utf8(), "text/csv").await.unwrap();
    let svc = IngestService::new(env.table.clone(), env.blobs.clone(), env.clock.clone());
    assert!(matches!(
        svc.ingest(&key).await.unwrap(),
        IngestOutcome::AlreadyIngested(_)
    ));
    assert_eq!(store.input_keys(period("2026-10")).await.unwrap().len(), 3);
    let rebuilt = builder.build(period("2026-10")).await.unwrap();
    assert_eq!(
        (
            rebuilt.firms,
            rebuilt.shards,
            rebuilt.from_inputs,
            rebuilt.previous
        ),
        (
            october.firms,
            october.shards,
            october.from_inputs,
            october.previous
        )
    );
    assert_eq!(snapshot(env, period("2026-10")).await, oct_rows);
    assert_eq!(
        store.manifest(period("2026-10")).await.unwrap().total_rows,
        40
    );
    // Every catalogue indicator is a column, whether or not any source fed it, and both
    // registration columns; the manifest says the schema's version.
    let m = store.manifest(period("2026-10")).await.unwrap();
    assert_eq!(m.schema_version, puhui_snapshot::SCHEMA_VERSION);
    let first = store
        .shard(period("2026-10"), &m.shards[0].path, None)
        .await
        .unwrap();
    assert_eq!(first[0].num_columns(), CATALOGUE.len() + 3);
    assert_eq!(first[0].schema(), puhui_snapshot::schema());
}

/// A row's month is its as-of date's: one file with rows of two months feeds both months'
/// inputs, each under the file's own key.
async fn a_file_spanning_two_months_feeds_both(env: &Env) {
    let firms = govdata::firms(2, 707);
    let text = format!(
        "uscc,as_of,tax_paid_12m,tax_paid_yoy,invoice_sales_yoy,tax_arrears\n\
         {},2026-09-30,100,,,false\n{},2026-10-01,200,,,true\n",
        firms[0], firms[1]
    );
    let report = ingest(
        env,
        "tax_operating",
        "2026-10-02",
        "mixed.csv",
        text.into_bytes(),
    )
    .await;
    assert_eq!(report.indicator_inputs, 2);
    let store = SnapshotStore::new(env.blobs.clone());
    for p in ["2026-09", "2026-10"] {
        assert_eq!(
            store.input_keys(period(p)).await.unwrap(),
            [format!(
                "indicator-inputs/{p}/tax_operating/2026-10-02/mixed.csv.parquet"
            )]
        );
    }
    let builder = SnapshotBuilder::new(env.blobs.clone());
    builder.build(period("2026-09")).await.unwrap();
    let october = builder.build(period("2026-10")).await.unwrap();
    assert_eq!((october.firms, october.input_rows), (2, 1));
    let rows = snapshot(env, period("2026-10")).await;
    let tax = |code: &str| rows.iter().find(|r| r.0 == code).unwrap().1["tax_paid_12m"].clone();
    // September's firm carried forward, October's from its row.
    assert_eq!((tax(&firms[0]), tax(&firms[1])), (json!(100), json!(200)));
}

async fn nothing_to_build_is_not_found(env: &Env) {
    let builder = SnapshotBuilder::new(env.blobs.clone());
    let e = builder.build(period("2030-01")).await.unwrap_err();
    assert!(matches!(e, puhui_domain::Error::NotFound(_)), "{e:?}");
}

puhui_tests::on_both! {
    two_months_built_from_ingested_files => two_months_built_from_ingested_files_on_embedded, two_months_built_from_ingested_files_on_aws;
    a_file_spanning_two_months_feeds_both => a_file_spanning_two_months_feeds_both_on_embedded, a_file_spanning_two_months_feeds_both_on_aws;
    nothing_to_build_is_not_found => nothing_to_build_is_not_found_on_embedded, nothing_to_build_is_not_found_on_aws;
}
