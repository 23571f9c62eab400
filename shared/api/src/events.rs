//! Handlers of the queue consumers and schedules: plain async functions from the event to the
//! result, so the Lambdas, the local runner and the tests call the same code.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use puhui_edge::batch::{BatchMode, WholeBatchFailed, process_batch};
use puhui_ports::Notification;
use puhui_services::data_export::{DataExportService, ExportChunk};
use puhui_services::financing::{
    DemandSubmitted, DispatchService, NotificationService, ReminderReport, ReminderService,
};
use puhui_services::outbox::Outbox;
use puhui_services::risk::{PlanOutcome, ScanPlanner, ShardTask, ShardWorker};
use puhui_services::scoring::{BatchScoring, JobChunk};

fn body<T: serde::de::DeserializeOwned>(m: &SqsMessage) -> Result<T, String> {
    let text = m.body.as_deref().ok_or("record has no body")?;
    // A body that can never parse fails every delivery and so ends in the dead-letter queue.
    serde_json::from_str(text).map_err(|e| format!("unreadable message: {e}"))
}

/// demand-dispatch: each record names a demand to match and offer.
pub async fn dispatch_batch(
    service: &DispatchService,
    event: SqsEvent,
) -> Result<SqsBatchResponse, WholeBatchFailed> {
    process_batch(event, BatchMode::Standard, |m| async move {
        let msg: DemandSubmitted = body(&m)?;
        service
            .dispatch(msg.demand_id)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
}

/// notify: each record is a notification to deliver once.
pub async fn notify_batch(
    service: &NotificationService,
    event: SqsEvent,
) -> Result<SqsBatchResponse, WholeBatchFailed> {
    process_batch(event, BatchMode::Standard, |m| async move {
        let n: Notification = body(&m)?;
        service
            .deliver(&n)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
}

/// reminders (schedule): remind and release claims without progress.
pub async fn remind(service: &ReminderService) -> Result<ReminderReport, puhui_domain::Error> {
    service.run().await
}

/// How old an outbox entry must be before the relay sends it (younger ones are being flushed
/// by their writers).
pub const RELAY_MIN_AGE: std::time::Duration = std::time::Duration::from_secs(30);

/// outbox-relay (schedule): sends what a crashed writer left in the outbox.
pub async fn relay(outbox: &Outbox) -> Result<usize, puhui_domain::Error> {
    outbox.sweep(RELAY_MIN_AGE, 500).await
}

/// risk-worker: each record is one scan task (a shard for a bank). A task that fails (say, a
/// malformed shard) is reported failed, recorded on the scan, retried and finally dead-lettered.
pub async fn risk_shard_batch(
    worker: &ShardWorker,
    event: SqsEvent,
) -> Result<SqsBatchResponse, WholeBatchFailed> {
    process_batch(event, BatchMode::Standard, |m| async move {
        let task: ShardTask = body(&m)?;
        worker
            .process(&task)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
}

/// risk-scan (schedule): plans a scan of the newest snapshot.
pub async fn risk_scan(planner: &ScanPlanner) -> Result<PlanOutcome, puhui_domain::Error> {
    planner.plan().await
}

/// What snapshot-build answers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotBuildAnswer {
    /// `built`, or `nothing_to_build` when the month has no inputs and no earlier snapshot.
    pub outcome: &'static str,
    /// The month, `YYYY-MM`.
    pub period: String,
    /// What the build did, when it built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<puhui_services::risk::BuildReport>,
}

/// snapshot-build: `{"period": "YYYY-MM"}` builds that month's indicator snapshot; any other
/// event (the monthly schedule's) builds the month before the one `now` falls in, the month
/// just closed. A month with nothing to build is answered, not failed (as risk-scan answers a
/// bucket without snapshots); a period that is not `YYYY-MM` is a validation error naming
/// `period`, and storage failures fail the invocation so it is retried.
pub async fn snapshot_build(
    builder: &puhui_services::risk::SnapshotBuilder,
    now: chrono::DateTime<chrono::Utc>,
    event: &serde_json::Value,
) -> Result<SnapshotBuildAnswer, puhui_domain::Error> {
    use puhui_domain::Error;
    use puhui_domain::risk::Period;
    let period = match event.get("period") {
        Some(p) => Period::parse(p.as_str().unwrap_or_default())
            .map_err(|e| Error::Validation(vec![e.under("period")]))?,
        None => Period::parse(&now.format("%Y-%m").to_string())
            .map_err(|e| Error::Internal(format!("the clock's month: {}", e.message)))?
            .minus(1),
    };
    match builder.build(period).await {
        Ok(report) => {
            tracing::info!(period = %period, firms = report.firms, shards = report.shards,
                input_rows = report.input_rows, duration_ms = report.duration_ms,
                "snapshot built");
            Ok(SnapshotBuildAnswer {
                outcome: "built",
                period: period.to_string(),
                report: Some(report),
            })
        }
        Err(Error::NotFound(what)) => {
            tracing::warn!(period = %period, missing = %what, "snapshot-build: nothing to build");
            Ok(SnapshotBuildAnswer {
                outcome: "nothing_to_build",
                period: period.to_string(),
                report: None,
            })
        }
        Err(e) => Err(e),
    }
}

/// data-quality (daily schedule): the day named by `{"date": "YYYY-MM-DD"}`, or — for the
/// schedule's own event, which names none — the business day before the event's `time` (the
/// schedule fires after midnight in China; a retried invocation carries the same time, so it
/// reports the same day), or before `now` for an event with neither. A malformed date or time
/// is a validation error, not a guess.
pub async fn data_quality(
    service: &puhui_services::quality::DataQualityService,
    event: &serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<puhui_services::quality::QualityRun, puhui_domain::Error> {
    use puhui_domain::Error;
    let date = match (event.get("date"), event.get("time")) {
        (Some(v), _) => v
            .as_str()
            .and_then(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .ok_or_else(|| Error::field("date", "invalid_format", "expected YYYY-MM-DD"))?,
        (None, time) => {
            let at = match time {
                Some(v) => v
                    .as_str()
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .ok_or_else(|| Error::field("time", "invalid_format", "expected RFC 3339"))?,
                None => now,
            };
            puhui_domain::time::business_date(at) - chrono::Duration::days(1)
        }
    };
    let run = service.run(date).await?;
    tracing::info!(date = %run.date, failures = run.failures, alerts = run.alerts_raised.len(), "data-quality report written");
    Ok(run)
}

/// model-batch: each record is one chunk of a scoring job. A chunk already counted changes
/// nothing; one that fails is retried and finally dead-lettered.
pub async fn scoring_job_batch(
    batch: &BatchScoring,
    event: SqsEvent,
) -> Result<SqsBatchResponse, WholeBatchFailed> {
    process_batch(event, BatchMode::Standard, |m| async move {
        let chunk: JobChunk = body(&m)?;
        batch
            .process(&chunk)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
}

/// data-export: each record is one chunk of an export job. A chunk already counted changes
/// nothing; one that fails is retried and finally dead-lettered.
pub async fn export_job_batch(
    service: &DataExportService,
    event: SqsEvent,
) -> Result<SqsBatchResponse, WholeBatchFailed> {
    process_batch(event, BatchMode::Standard, |m| async move {
        let chunk: ExportChunk = body(&m)?;
        service
            .process(&chunk)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
}

/// What data-ingest did with one S3 event: per record, the file ingested (now or before) or
/// skipped and why. S3 ignores a function's answer; it is for logs, tests and `cargo lambda
/// invoke`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct IngestEventAnswer {
    /// Records whose file is ingested: now or by an earlier delivery.
    pub processed: u32,
    /// Files ingested by this invocation.
    pub ingested: u32,
    /// Files an earlier delivery already ingested (same key and content): nothing changed.
    pub already_ingested: u32,
    /// Records skipped: not an object creation, a key outside `incoming/<source>/<date>/<file>`,
    /// an unknown source or an object that no longer exists. Logged; retrying cannot help.
    pub skipped: u32,
    /// One entry per record, in order.
    pub files: Vec<IngestedFile>,
}

/// One record of an S3 event.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IngestedFile {
    /// The object key, URL-decoded.
    pub key: String,
    /// `ingested`, `already_ingested` or `skipped`.
    pub outcome: &'static str,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Rows read, loaded and quarantined (a file rejected whole reads 0 rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_read: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<u64>,
    /// Why the whole file was quarantined, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection: Option<String>,
}

/// An S3 event key as S3 encodes it (`application/x-www-form-urlencoded`: `+` for a space,
/// `%XX` for other bytes), decoded. `None` when the escapes do not decode to UTF-8.
pub fn decode_s3_key(key: &str) -> Option<String> {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// data-ingest: each record names an object created in the bucket. Its file is ingested once
/// (a repeated delivery answers `already_ingested`). A record that can never succeed — not an
/// object creation, a key outside `incoming/<source>/<YYYY-MM-DD>/<file>`, a source the
/// catalogue does not know, an object deleted since — is logged and skipped. Anything else
/// (storage unavailable, another delivery of the same file still processing) fails the
/// invocation so Lambda retries it; the event goes to the function's failure destination once
/// the retries are spent.
///
/// `service_for` gives the ingest service over the bucket a record names.
pub async fn ingest_event<F>(
    service_for: F,
    event: aws_lambda_events::event::s3::S3Event,
) -> Result<IngestEventAnswer, puhui_domain::Error>
where
    F: Fn(&str) -> puhui_services::ingest::IngestService,
{
    use puhui_domain::Error;
    use puhui_services::ingest::IngestOutcome;
    let mut answer = IngestEventAnswer::default();
    for record in event.records {
        let raw = record.s3.object.key.clone().unwrap_or_default();
        let key = decode_s3_key(&raw).unwrap_or_else(|| raw.clone());
        let skip = |answer: &mut IngestEventAnswer, reason: String| {
            tracing::warn!(key = %key, reason = %reason, "ingest: record skipped");
            answer.skipped += 1;
            answer.files.push(IngestedFile {
                key: key.clone(),
                outcome: "skipped",
                reason: Some(reason),
                rows_read: None,
                loaded: None,
                quarantined: None,
                rejection: None,
            });
        };
        let event_name = record.event_name.as_deref().unwrap_or_default();
        if !event_name.starts_with("ObjectCreated:") {
            skip(
                &mut answer,
                format!("not an object creation: {event_name:?}"),
            );
            continue;
        }
        let Some(bucket) = record.s3.bucket.name.as_deref().filter(|b| !b.is_empty()) else {
            skip(&mut answer, "the record names no bucket".into());
            continue;
        };
        if decode_s3_key(&raw).is_none() {
            skip(&mut answer, "the key's escapes are not UTF-8".into());
            continue;
        }
        if !key.starts_with(puhui_services::ingest::INCOMING) {
            skip(&mut answer, "outside incoming/".into());
            continue;
        }
        let report = match service_for(bucket).ingest(&key).await {
            Ok(IngestOutcome::Ingested(r)) => {
                answer.ingested += 1;
                ("ingested", r)
            }
            Ok(IngestOutcome::AlreadyIngested(r)) => {
                answer.already_ingested += 1;
                ("already_ingested", r)
            }
            Ok(IngestOutcome::InProgress) => {
                // Retried: once the other delivery finishes this answers already_ingested,
                // and if it crashed its lease expires and a later attempt takes over.
                return Err(Error::Unavailable(format!(
                    "{key}: another delivery is ingesting this file"
                )));
            }
            Err(e @ (Error::Validation(_) | Error::Malformed { .. } | Error::NotFound(_))) => {
                skip(&mut answer, e.to_string() + &field_detail(&e));
                continue;
            }
            Err(e) => {
                tracing::error!(key = %key, error = %e, "ingest failed; Lambda retries");
                return Err(e);
            }
        };
        let (outcome, r) = report;
        tracing::info!(key = %key, outcome, rows_read = r.rows_read, loaded = r.loaded,
            quarantined = r.quarantined, "ingest");
        answer.processed += 1;
        answer.files.push(IngestedFile {
            key: key.clone(),
            outcome,
            reason: None,
            rows_read: Some(r.rows_read),
            loaded: Some(r.loaded),
            quarantined: Some(r.quarantined),
            rejection: r.rejection.map(|x| x.to_string()),
        });
    }
    Ok(answer)
}

/// The field errors' messages, after the error's own text (`invalid input` says little).
fn field_detail(e: &puhui_domain::Error) -> String {
    let errors = match e {
        puhui_domain::Error::Validation(errors) => errors,
        puhui_domain::Error::Malformed { errors, .. } => errors,
        _ => return String::new(),
    };
    errors
        .iter()
        .map(|f| format!(": {}", f.message))
        .collect::<String>()
}

#[cfg(test)]
mod ingest_key_tests {
    use super::decode_s3_key;

    #[test]
    fn keys_decode_as_s3_encodes_them() {
        assert_eq!(
            decode_s3_key("incoming/tax_credit/2026-11-23/%E7%BA%B3%E7%A8%8E+2026.csv").as_deref(),
            Some("incoming/tax_credit/2026-11-23/纳税 2026.csv")
        );
        assert_eq!(decode_s3_key("a%2Bb%25").as_deref(), Some("a+b%"));
        assert_eq!(
            decode_s3_key("plain/key.csv").as_deref(),
            Some("plain/key.csv")
        );
        assert_eq!(decode_s3_key("bad%2"), None);
        assert_eq!(decode_s3_key("bad%FF"), None);
    }
}

#[cfg(test)]
mod snapshot_build_tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use puhui_domain::Error;
    use puhui_ports::{BlobStore, SystemClock};
    use puhui_services::risk::SnapshotBuilder;
    use serde_json::json;

    use super::snapshot_build;

    fn builder() -> (SnapshotBuilder, Arc<dyn BlobStore>, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("puhui-api-snap-{}", ulid::Ulid::new()));
        let blobs: Arc<dyn BlobStore> = Arc::new(puhui_embedded::LocalBlobStore::new(
            dir.join("blobs"),
            "http://127.0.0.1/blobs".into(),
            b"test".to_vec(),
            Arc::new(SystemClock),
        ));
        (
            SnapshotBuilder::with_scratch(blobs.clone(), dir.clone()),
            blobs,
            dir,
        )
    }

    #[tokio::test]
    async fn the_schedule_builds_the_month_just_closed_and_a_period_that_month() {
        let (b, blobs, dir) = builder();
        let now = chrono::DateTime::parse_from_rfc3339("2027-01-01T18:00:00Z")
            .unwrap()
            .to_utc();
        let a = snapshot_build(&b, now, &json!({"version": "0", "detail": {}}))
            .await
            .unwrap();
        assert_eq!(
            (a.outcome, a.period.as_str()),
            ("nothing_to_build", "2026-12")
        );

        // Inputs for 2026-11: an explicit period builds them.
        let mut rows = puhui_snapshot::build::InputRows::new();
        let v = json!(3);
        rows.push(
            "91330200MA2H000001",
            chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            [("penalties_12m", &v)],
        );
        let bytes = puhui_snapshot::build::write_input_bytes(&[rows.finish().unwrap()]).unwrap();
        blobs
            .put(
                "indicator-inputs/2026-11/x/2026-12-01/f.csv.parquet",
                bytes,
                "x",
            )
            .await
            .unwrap();
        let a = snapshot_build(&b, now, &json!({"period": "2026-11"}))
            .await
            .unwrap();
        assert_eq!((a.outcome, a.period.as_str()), ("built", "2026-11"));
        assert_eq!(a.report.unwrap().firms, 1);

        match snapshot_build(&b, now, &json!({"period": "2026-13"})).await {
            Err(Error::Validation(errors)) => assert_eq!(errors[0].field, "period"),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
