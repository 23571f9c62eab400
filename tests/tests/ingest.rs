//! Government data ingest (issue 6), proven on both storage adapters (embedded: SQLite and a
//! local blob directory; AWS: DynamoDB and S3 on a local AWS-API server, moto):
//!
//! 1. a generated file set (every source of the catalogue, one file in GB18030) with known
//!    defects: every defect lands in quarantine under exactly its rule, every warned defect is
//!    counted, every other row is in the firm's profile with its source and as-of date, and
//!    read = loaded + quarantined; the reports are queryable by source and date;
//! 2. the same file in UTF-8 with BOM and in GB18030 loads the same rows;
//! 3. empty, binary, truncated and wrong-schema files are quarantined whole with their reason;
//! 4. the same file twice changes nothing; an older file does not overwrite a newer one.
//!
//! The AWS side needs `PUHUI_TEST_AWS_ENDPOINT` (run through `tests/scripts/with-moto.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::NaiveDate;
use puhui_domain::sources::{FieldType, SourceCatalogue};
use puhui_domain::{ProfileCategory, Uscc};
use puhui_samplekit::govdata::{self, GovFile};
use puhui_services::ingest::{IngestOutcome, IngestReport, IngestService};
use puhui_services::profiles;
use puhui_tests::harness::{Env, Kind};
use serde_json::Value;

fn service(env: &Env) -> IngestService {
    IngestService::new(env.table.clone(), env.blobs.clone(), env.clock.clone())
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

async fn deliver(env: &Env, source: &str, date: &str, name: &str, bytes: Vec<u8>) -> String {
    let key = format!("incoming/{source}/{date}/{name}");
    env.blobs.put(&key, bytes, "text/csv").await.unwrap();
    key
}

async fn ingested(svc: &IngestService, key: &str) -> IngestReport {
    match svc.ingest(key).await.unwrap() {
        IngestOutcome::Ingested(r) => r,
        other => panic!("{key}: {other:?}"),
    }
}

/// Quarantine lines: line number → rejecting rules.
async fn quarantine(env: &Env, report: &IngestReport) -> BTreeMap<u64, Vec<String>> {
    let Some(key) = &report.quarantine_key else {
        return BTreeMap::new();
    };
    let bytes = env
        .blobs
        .get(key)
        .await
        .unwrap()
        .expect("quarantine object");
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let rules = v["rejected_by"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_owned())
                .collect();
            (v["line"].as_u64().unwrap(), rules)
        })
        .collect()
}

/// Every defect under its rule, every loading row in the profile.
async fn check_file(env: &Env, file: &GovFile, report: &IngestReport, as_of: NaiveDate) {
    let source = SourceCatalogue::builtin().get(&file.source).unwrap();
    assert_eq!(report.rows_read, file.rows as u64, "{}", file.name);
    assert_eq!(report.rows_read, report.loaded + report.quarantined);
    assert_eq!(report.quarantined, file.rejected().count() as u64);
    assert!(report.rejection.is_none());
    let quarantined = quarantine(env, report).await;
    assert_eq!(quarantined.len(), file.rejected().count());
    for d in file.rejected() {
        assert_eq!(
            quarantined.get(&d.line),
            Some(&vec![d.rule.clone()]),
            "{} line {}",
            file.name,
            d.line
        );
    }
    for d in file
        .defects
        .iter()
        .filter(|d| !file.rejected().any(|r| r == *d))
    {
        assert!(
            report.warnings_by_rule.get(&d.rule).copied().unwrap_or(0) >= 1,
            "warning {} not reported",
            d.rule
        );
    }
    assert_eq!(file.loads.len() as u64, report.loaded);
    for (firm, columns) in &file.loads {
        let uscc = Uscc::parse_lenient(firm).unwrap();
        let profile = profiles::profile(env.table.as_ref(), &uscc).await.unwrap();
        let fields = profile
            .get(&source.category)
            .unwrap_or_else(|| panic!("{firm} has no {}", source.category));
        for f in &source.fields {
            let (Some(target), Some(raw)) = (&f.target, columns.get(&f.name)) else {
                continue;
            };
            let stored = fields
                .get(target)
                .unwrap_or_else(|| panic!("{firm} {} lacks {target}", source.category));
            assert_eq!(stored.as_of, as_of);
            assert_eq!(stored.source, source.department);
            let expected = match f.field_type {
                FieldType::Integer => Value::from(raw.parse::<i64>().unwrap()),
                FieldType::Decimal | FieldType::Boolean => continue,
                _ => Value::String(raw.clone()),
            };
            assert_eq!(stored.value, expected, "{firm} {target}");
        }
    }
}

async fn file_set_with_known_defects(env: &Env) {
    let svc = service(env);
    let firms = govdata::firms(40, 11);
    let as_of = day("2026-10-31");
    for (n, source) in SourceCatalogue::builtin().sources.iter().enumerate() {
        let file = govdata::batch(source, &firms, as_of, 4, 100 + n as u64);
        // Courts deliver GB18030; the others UTF-8.
        let bytes = if source.id == "courts_negative" {
            file.gb18030()
        } else {
            file.utf8()
        };
        let key = deliver(env, &source.id, "2026-11-23", &file.name, bytes).await;
        let report = ingested(&svc, &key).await;
        check_file(env, &file, &report, as_of).await;
        let listed = svc.reports(&source.id, day("2026-11-23")).await.unwrap();
        assert_eq!(listed, vec![report]);
    }
    // Two sources feed the operating category: both sets of fields are there.
    let firm = Uscc::parse_lenient(&firms[0]).unwrap();
    let profile = profiles::profile(env.table.as_ref(), &firm).await.unwrap();
    let operating = &profile[&ProfileCategory::Operating];
    assert!(
        operating.contains_key("tax_paid_12m")
            && operating.contains_key("social_insured_headcount")
    );
}

async fn encodings_load_the_same(env: &Env) {
    let svc = service(env);
    let source = SourceCatalogue::builtin()
        .get("market_regulation_registration")
        .unwrap();
    let file = govdata::batch(source, &govdata::firms(30, 5), day("2026-11-20"), 3, 9);
    let bom = deliver(env, &source.id, "2026-11-23", "bom.csv", file.utf8_bom()).await;
    let gb = deliver(env, &source.id, "2026-11-23", "gb.csv", file.gb18030()).await;
    let a = ingested(&svc, &bom).await;
    let b = ingested(&svc, &gb).await;
    check_file(env, &file, &a, day("2026-11-20")).await;
    check_file(env, &file, &b, day("2026-11-20")).await;
    assert_eq!(
        (
            a.rows_read,
            a.loaded,
            &a.quarantined_by_rule,
            &a.warnings_by_rule
        ),
        (
            b.rows_read,
            b.loaded,
            &b.quarantined_by_rule,
            &b.warnings_by_rule
        )
    );
    assert_eq!(quarantine(env, &a).await, quarantine(env, &b).await);
    let qa = env
        .blobs
        .get(a.quarantine_key.as_ref().unwrap())
        .await
        .unwrap();
    let qb = env
        .blobs
        .get(b.quarantine_key.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(qa, qb, "the same quarantined rows, masked the same");
    let text = String::from_utf8(qa.unwrap()).unwrap();
    assert!(text.contains('*'), "C2 values are masked in quarantine");
    assert!(a.profiles_written > 0);
    assert_eq!(b.profiles_written, 0, "the same as-of date is not newer");
}

async fn unreadable_files_are_quarantined_whole(env: &Env) {
    let svc = service(env);
    let source = SourceCatalogue::builtin()
        .get("market_regulation_registration")
        .unwrap();
    // Registration files carry Chinese text, so the truncated one is cut inside a character.
    let file = govdata::batch(source, &govdata::firms(10, 3), day("2026-11-20"), 5, 1);
    let cases = govdata::unreadable(&file);
    assert_eq!(cases.len(), 4);
    for (name, bytes, reason) in cases {
        let src = &source.id;
        let key = deliver(env, src, "2026-11-24", &name, bytes).await;
        let report = ingested(&svc, &key).await;
        let rejection = report
            .rejection
            .clone()
            .unwrap_or_else(|| panic!("{name} loaded"));
        assert_eq!(
            serde_json::to_value(&rejection).unwrap()["reason"],
            reason,
            "{name}: {rejection}"
        );
        assert_eq!(
            (report.rows_read, report.loaded, report.quarantined),
            (0, 0, 0)
        );
        let q = env
            .blobs
            .get(report.quarantine_key.as_ref().unwrap())
            .await
            .unwrap()
            .unwrap();
        let line: Value = serde_json::from_slice(q.split(|b| *b == b'\n').next().unwrap()).unwrap();
        assert_eq!(line["whole_file"], true);
        assert_eq!(line["reason"], rejection.to_string());
    }
    let unsupported = deliver(env, &source.id, "2026-11-24", "grades.xlsx", vec![1, 2]).await;
    let report = ingested(&svc, &unsupported).await;
    assert!(report.rejection.is_some());
}

async fn the_same_file_twice_changes_nothing(env: &Env) {
    let svc = service(env);
    let source = SourceCatalogue::builtin().get("tax_credit").unwrap();
    let firms = govdata::firms(12, 21);
    let file = govdata::batch(source, &firms, day("2026-06-30"), 6, 4);
    let key = deliver(env, &source.id, "2026-11-25", &file.name, file.utf8()).await;
    let first = ingested(&svc, &key).await;
    let firm = Uscc::parse_lenient(&firms[0]).unwrap();
    let before = profiles::profile(env.table.as_ref(), &firm).await.unwrap();
    // The same event twice, and a redelivery of the same content.
    for _ in 0..2 {
        match svc.ingest(&key).await.unwrap() {
            IngestOutcome::AlreadyIngested(r) => assert_eq!(r, first),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        profiles::profile(env.table.as_ref(), &firm).await.unwrap(),
        before
    );
    assert_eq!(
        svc.reports(&source.id, day("2026-11-25"))
            .await
            .unwrap()
            .len(),
        1
    );

    // The same event delivered twice at once: processed by exactly one of them.
    let twice = govdata::batch(source, &firms, day("2026-06-30"), 6, 8);
    let key = deliver(env, &source.id, "2026-11-26", &twice.name, twice.utf8()).await;
    let (a, b) = tokio::join!(svc.ingest(&key), svc.ingest(&key));
    let ingested_now = [a.unwrap(), b.unwrap()]
        .iter()
        .filter(|o| matches!(o, IngestOutcome::Ingested(_)))
        .count();
    assert_eq!(ingested_now, 1);
    assert_eq!(
        svc.reports(&source.id, day("2026-11-26"))
            .await
            .unwrap()
            .len(),
        1
    );

    // An older file under another name writes nothing; a newer one replaces the grade.
    let old = govdata::batch(source, &firms, day("2025-06-30"), 6, 5);
    let key = deliver(env, &source.id, "2026-11-25", "old.csv", old.utf8()).await;
    assert_eq!(ingested(&svc, &key).await.profiles_written, 0);
    assert_eq!(
        profiles::profile(env.table.as_ref(), &firm).await.unwrap(),
        before
    );
    let newer_text = file.text.replace("2026-06-30", "2026-09-30");
    let key = deliver(
        env,
        &source.id,
        "2026-11-25",
        "newer.csv",
        newer_text.into_bytes(),
    )
    .await;
    let newer = ingested(&svc, &key).await;
    assert_eq!(newer.profiles_written, newer.loaded);
    let after = profiles::profile(env.table.as_ref(), &firm).await.unwrap();
    assert_eq!(
        after[&ProfileCategory::Credit]["tax_credit_grade"].as_of,
        day("2026-09-30")
    );
}

// ---------------------------------------------------------------------------------------------

macro_rules! on_both {
    ($($name:ident => $embedded:ident, $aws:ident;)*) => {$(
        #[tokio::test]
        async fn $embedded() {
            $name(&Env::new(Kind::Embedded).await).await;
        }

        #[tokio::test]
        async fn $aws() {
            $name(&Env::new(Kind::Aws).await).await;
        }
    )*};
}

on_both! {
    file_set_with_known_defects => file_set_with_known_defects_on_embedded, file_set_with_known_defects_on_aws;
    encodings_load_the_same => encodings_load_the_same_on_embedded, encodings_load_the_same_on_aws;
    unreadable_files_are_quarantined_whole => unreadable_files_are_quarantined_whole_on_embedded, unreadable_files_are_quarantined_whole_on_aws;
    the_same_file_twice_changes_nothing => the_same_file_twice_changes_nothing_on_embedded, the_same_file_twice_changes_nothing_on_aws;
}
