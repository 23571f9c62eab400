//! The daily data-quality job (issue 6), proven on both storage adapters (embedded: SQLite and a
//! local blob directory; AWS: DynamoDB, S3 and SQS on a local AWS-API server, moto):
//!
//! 1. generated files of every source are ingested over two days, the tax-credit files with
//!    firm names planted unlike the registration's (3 on day 1, 12 on day 2), the weekly courts
//!    file delivered only 7 days before day 1;
//! 2. each day's report counts exactly the planted mismatches (rows whose firm has no
//!    registration are counted apart), with masked examples, and flags the courts source stale
//!    on day 2 only;
//! 3. day 2 raises exactly one platform alert per jumped rule (the name rule, 3 → 12; courts'
//!    freshness), each one platform-ops notification on the queue;
//! 4. a rerun for day 2 writes the same report and raises nothing again;
//! 5. the report is readable by platform administrators only.
//!
//! The AWS side needs `PUHUI_TEST_AWS_ENDPOINT` (run through `tests/scripts/with-moto.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;
use puhui_domain::Error;
use puhui_domain::sources::SourceCatalogue;
use puhui_engines::masking;
use puhui_ports::{Notification, Recipient};
use puhui_samplekit::govdata::{self, GovFile};
use puhui_services::ingest::{IngestOutcome, IngestService};
use puhui_services::quality::{DataQualityService, blob_key};
use puhui_tests::harness::{Env, Kind, bank, drain, officer, platform_admin};

const CREDIT_NAME: &str = "tax_credit.taxpayer_name.matches_registration";
const COURTS_FRESH: &str = "courts_negative.freshness";

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Puts the file under `incoming/<source>/<date>/` and ingests it.
async fn deliver(env: &Env, date: &str, file: &GovFile) {
    let key = format!("incoming/{}/{date}/{}", file.source, file.name);
    env.blobs.put(&key, file.utf8(), "text/csv").await.unwrap();
    let svc = IngestService::new(env.table.clone(), env.blobs.clone(), env.clock.clone());
    match svc.ingest(&key).await.unwrap() {
        IngestOutcome::Ingested(r) => assert!(r.loaded > 0, "{key}"),
        other => panic!("{key}: {other:?}"),
    }
}

fn batch(source: &str, firms: &[String], as_of: &str, seed: u64) -> GovFile {
    let source = SourceCatalogue::builtin().get(source).unwrap();
    govdata::batch(source, firms, day(as_of), 4, seed)
}

/// The credit file with `n` firms renamed, all firms the registration loaded.
fn credit_with_other_names(
    firms: &[String],
    registration: &GovFile,
    as_of: &str,
    n: usize,
) -> (GovFile, Vec<String>) {
    let source = SourceCatalogue::builtin().get("tax_credit").unwrap();
    let file = govdata::batch(source, firms, day(as_of), 4, 300);
    let renamed: Vec<String> = file
        .loads
        .keys()
        .filter(|f| registration.loads.contains_key(*f))
        .take(n)
        .cloned()
        .collect();
    assert_eq!(renamed.len(), n, "enough firms in both files");
    let (file, mut changed) = govdata::with_other_names(source, &file, &renamed);
    changed.sort();
    assert_eq!(changed, renamed, "one row each");
    (file, changed)
}

async fn two_days_of_files(env: &Env) {
    let firms = govdata::firms(60, 23);
    let service = DataQualityService::new(env.risk_ports());
    let registration = batch("market_regulation_registration", &firms, "2026-11-22", 100);
    // Day 1: every source fresh; the weekly courts file is 7 days old, the monthly social
    // insurance one 22.
    deliver(env, "2026-11-23", &registration).await;
    deliver(
        env,
        "2026-11-23",
        &batch("tax_operating", &firms, "2026-10-31", 101),
    )
    .await;
    deliver(
        env,
        "2026-11-01",
        &batch("social_insurance", &firms, "2026-10-31", 103),
    )
    .await;
    deliver(
        env,
        "2026-11-16",
        &batch("courts_negative", &firms, "2026-11-15", 104),
    )
    .await;
    let (credit1, renamed1) = credit_with_other_names(&firms, &registration, "2026-11-22", 3);
    deliver(env, "2026-11-23", &credit1).await;

    let run1 = service.run(day("2026-11-23")).await.unwrap();
    assert!(run1.alerts_raised.is_empty(), "{run1:?}");
    let d1 = service
        .report(&platform_admin(), day("2026-11-23"))
        .await
        .unwrap();
    let credit = d1.rule(CREDIT_NAME).unwrap();
    let registered = credit1
        .loads
        .keys()
        .filter(|f| registration.loads.contains_key(*f))
        .count() as u64;
    assert_eq!(credit.failed, 3);
    assert_eq!(credit.checked, registered);
    assert_eq!(credit.unchecked, credit1.loads.len() as u64 - registered);
    assert_eq!(credit.examples.len(), 3);
    for e in &credit.examples {
        assert!(renamed1.contains(&e.uscc));
        let registered = govdata::firm_name(&e.uscc);
        assert_eq!(e.registered, masking::firm_name(&registered));
        assert!(e.registered.contains('*') && e.name.contains('*'), "{e:?}");
    }
    assert_eq!(credit.trend.previous, None);
    for r in d1.rules.iter().filter(|r| r.kind == "freshness") {
        assert_eq!(r.failed, 0, "{} on day 1", r.rule_id);
    }
    // The courts file of 11-16 was not delivered on the day: its names are not checked today.
    let courts = d1
        .rule("courts_negative.party_name.matches_registration")
        .unwrap();
    assert_eq!((courts.checked, courts.unchecked), (0, 0));

    // Day 2: registration and tax credit again (12 renamed); no courts file for 8 days now.
    deliver(env, "2026-11-24", &registration).await;
    let (credit2, _) = credit_with_other_names(&firms, &registration, "2026-11-23", 12);
    deliver(env, "2026-11-24", &credit2).await;
    drain(env.notify_queue.as_ref()).await;
    let run2 = service.run(day("2026-11-24")).await.unwrap();
    let d2 = service
        .report(&platform_admin(), day("2026-11-24"))
        .await
        .unwrap();
    let credit = d2.rule(CREDIT_NAME).unwrap();
    assert_eq!(credit.failed, 12);
    assert_eq!(credit.examples.len(), 5);
    assert_eq!(
        (
            credit.trend.previous,
            credit.trend.delta,
            credit.trend.ratio
        ),
        (Some(3), Some(9), Some(4.0))
    );
    let stale = d2.rule(COURTS_FRESH).unwrap();
    assert_eq!(stale.failed, 1);
    // Nothing within the 7 days; the last delivery is known from day 1's report.
    assert_eq!(stale.last_update, Some(day("2026-11-16")));
    let stale_sources: Vec<&str> = d2
        .rules
        .iter()
        .filter(|r| r.kind == "freshness" && r.failed > 0)
        .map(|r| r.source.as_str())
        .collect();
    assert_eq!(stale_sources, ["courts_negative"]);
    let mut expected = vec![COURTS_FRESH.to_owned(), CREDIT_NAME.to_owned()];
    expected.sort();
    let mut raised = run2.alerts_raised.clone();
    raised.sort();
    assert_eq!(raised, expected);
    let mut sent: Vec<Notification> = drain(env.notify_queue.as_ref())
        .await
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    sent.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(sent.len(), 2, "{sent:?}");
    for n in &sent {
        assert_eq!(n.recipient, Recipient::PlatformOps);
        assert_eq!(n.template, "data_quality_alert");
    }
    assert_eq!(
        sent[1].key,
        format!("data-quality:2026-11-24:{CREDIT_NAME}")
    );

    // A rerun: the same report, no alert again.
    let stored = env.blobs.get(&blob_key(day("2026-11-24"))).await.unwrap();
    let rerun = service.run(day("2026-11-24")).await.unwrap();
    assert!(rerun.alerts_raised.is_empty(), "{rerun:?}");
    assert_eq!(rerun.alerts_already_raised.len(), 2);
    assert!(drain(env.notify_queue.as_ref()).await.is_empty());
    assert_eq!(
        service
            .report(&platform_admin(), day("2026-11-24"))
            .await
            .unwrap(),
        d2
    );
    assert_eq!(
        env.blobs.get(&blob_key(day("2026-11-24"))).await.unwrap(),
        stored
    );
    let written: puhui_engines::quality::DailyReport =
        serde_json::from_slice(&stored.unwrap()).unwrap();
    assert_eq!(written, d2);

    // Platform administrators only; a day never run is not found.
    assert!(matches!(
        service
            .report(&officer(&bank("nbcb")), day("2026-11-24"))
            .await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        service.report(&platform_admin(), day("2026-11-25")).await,
        Err(Error::NotFound(_))
    ));
}

/// The handler's day: explicit, else the business day before the scheduled event's time (or
/// before now); a malformed one is refused.
async fn the_handler_picks_the_day(env: &Env) {
    use puhui_api::events::data_quality;
    use serde_json::json;
    let service = DataQualityService::new(env.risk_ports());
    // 17:30 UTC on the 24th is 01:30 on the 25th in China: the report is for the 24th.
    let now = puhui_tests::harness::at("2026-11-24T17:30:00Z");
    let scheduled = json!({"detail-type": "Scheduled Event", "time": "2026-11-24T17:30:00Z"});
    let run = data_quality(
        &service,
        &scheduled,
        puhui_tests::harness::at(puhui_tests::harness::T0),
    )
    .await
    .unwrap();
    assert_eq!(run.date, day("2026-11-24"));
    assert_eq!(run.blob_key, "quality/2026-11-24/report.json");
    let run = data_quality(&service, &json!({}), now).await.unwrap();
    assert_eq!(run.date, day("2026-11-24"));
    let run = data_quality(&service, &json!({"date": "2026-11-20"}), now)
        .await
        .unwrap();
    assert_eq!(run.date, day("2026-11-20"));
    // Nothing delivered: every source is stale.
    assert_eq!(
        run.failures,
        SourceCatalogue::builtin().sources.len() as u64
    );
    for bad in [
        json!({"date": "2026-11-31"}),
        json!({"date": 20261120}),
        json!({"time": "yesterday"}),
    ] {
        assert!(
            matches!(
                data_quality(&service, &bad, now).await,
                Err(Error::Validation(_))
            ),
            "{bad}"
        );
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_handler_picks_the_day_on_embedded() {
    the_handler_picks_the_day(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test]
async fn the_handler_picks_the_day_on_aws() {
    the_handler_picks_the_day(&Env::new(Kind::Aws).await).await;
}

#[tokio::test]
async fn two_days_of_files_on_embedded() {
    two_days_of_files(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test]
async fn two_days_of_files_on_aws() {
    two_days_of_files(&Env::new(Kind::Aws).await).await;
}
