//! The demo's government-data story: samplekit writes a day's batch files from four departments
//! (about 200 firms each, a known share of bad rows breaking one declared rule each, the courts'
//! file in GB18030) and one file that cannot be read at all into `incoming/`, the platform's
//! data-ingest picks them up, and the story reads the ingest reports back and checks each
//! against the defects it planted: every row went somewhere, every bad row under its rule.
//! Then the daily data-quality job reports on the day: the firm names the tax credit file gives
//! unlike the registration's, and the source that delivered nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use puhui_domain::sources::{Severity, SourceCatalogue};
use puhui_ports::{BlobStore, SystemClock, Table};
use puhui_services::ingest::{INCOMING, IngestReport, IngestService};

use crate::Failure;
use crate::demo::{say, step};
use crate::govdata::{self, GovFile};

/// Delivery date of the story's files.
pub const DELIVERY_DATE: &str = "2026-11-23";
/// Firms in each file.
pub const FIRMS: usize = 200;
/// Firms the tax credit file names unlike the registration does.
pub const RENAMED: usize = 6;

/// One delivered file and what its report must say.
struct Delivery {
    source: String,
    name: String,
    encoding: &'static str,
    expected: Expected,
}

enum Expected {
    /// Rows read; quarantined rows by rule; warned rows by rule.
    Rows {
        rows: u64,
        rejected: BTreeMap<String, u64>,
        warned: BTreeMap<String, u64>,
    },
    /// Quarantined whole, for this reason (`FileRejection`'s `reason`).
    Whole(&'static str),
}

fn by_rule(file: &GovFile, severity: Severity) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for d in file.defects.iter().filter(|d| d.severity == severity) {
        *out.entry(d.rule.clone()).or_default() += 1;
    }
    out
}

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure(e.to_string())
}

/// Writes the file set into `blobs` (the runner's blob store), waits for the runner to ingest
/// it and checks the reports read through `table` (the runner's table). Returns the next step
/// and how many firms the tax credit file names unlike the registration.
pub async fn ingest_story(
    first_step: u32,
    blobs: Arc<dyn BlobStore>,
    table: Arc<dyn Table>,
) -> Result<(u32, u64), Failure> {
    let date = NaiveDate::parse_from_str(DELIVERY_DATE, "%Y-%m-%d").map_err(fail)?;
    let as_of = NaiveDate::from_ymd_opt(2026, 10, 31).ok_or_else(|| fail("bad as-of date"))?;
    let catalogue = SourceCatalogue::builtin();
    let firms = govdata::firms(FIRMS, 2026);
    step(
        first_step,
        &format!(
            "Four departments deliver {DELIVERY_DATE}'s batch files for {FIRMS} firms into incoming/"
        ),
    );
    let mut deliveries = Vec::new();
    let sources = [
        ("market_regulation_registration", "utf8"),
        ("tax_credit", "utf8_bom"),
        ("social_insurance", "utf8"),
        ("courts_negative", "gb18030"),
    ];
    let mut registration: Option<GovFile> = None;
    let mut renamed = Vec::new();
    for (n, (id, encoding)) in sources.into_iter().enumerate() {
        let source = catalogue
            .get(id)
            .ok_or_else(|| fail(format!("no source {id} in the catalogue")))?;
        let mut file = govdata::batch(source, &firms, as_of, 20, 300 + n as u64);
        if id == "tax_credit"
            && let Some(reg) = &registration
        {
            // Names only checkable where the registration loaded the firm too.
            let pick: Vec<String> = file
                .loads
                .keys()
                .filter(|f| reg.loads.contains_key(*f))
                .take(RENAMED)
                .cloned()
                .collect();
            (file, renamed) = govdata::with_other_names(source, &file, &pick);
        }
        let bytes = match encoding {
            "utf8_bom" => file.utf8_bom(),
            "gb18030" => file.gb18030(),
            _ => file.utf8(),
        };
        put(blobs.as_ref(), id, &file.name, bytes).await?;
        deliveries.push(Delivery {
            source: id.to_owned(),
            name: file.name.clone(),
            encoding,
            expected: Expected::Rows {
                rows: file.rows as u64,
                rejected: by_rule(&file, Severity::Reject),
                warned: by_rule(&file, Severity::Warn),
            },
        });
        say(&format!(
            "{INCOMING}{id}/{DELIVERY_DATE}/{} ({encoding}): {} rows, {} planted defects{}",
            file.name,
            file.rows,
            file.defects.len(),
            if id == "tax_credit" {
                format!(", {} firms named unlike their registration", renamed.len())
            } else {
                String::new()
            }
        ));
        if id == "market_regulation_registration" {
            registration = Some(file);
        }
    }
    // A registration export whose header row is not the declared one: nothing in it can load.
    let registration = registration.ok_or_else(|| fail("no registration file"))?;
    let (name, bytes, reason) = govdata::unreadable(&registration)
        .into_iter()
        .find(|(_, _, reason)| *reason == "missing_columns")
        .ok_or_else(|| fail("no wrong-schema file"))?;
    put(
        blobs.as_ref(),
        "market_regulation_registration",
        &name,
        bytes,
    )
    .await?;
    say(&format!(
        "{INCOMING}market_regulation_registration/{DELIVERY_DATE}/{name}: a wrong header row"
    ));
    deliveries.push(Delivery {
        source: "market_regulation_registration".into(),
        name,
        encoding: "utf8",
        expected: Expected::Whole(reason),
    });

    step(
        first_step + 1,
        "data-ingest reads, validates, loads and quarantines (S3 events in AWS; a sweep of incoming/ here)",
    );
    let reports = IngestService::new(table, blobs, Arc::new(SystemClock));
    let mut found: BTreeMap<(String, String), IngestReport> = BTreeMap::new();
    for _ in 0..120 {
        found.clear();
        for source in deliveries.iter().map(|d| &d.source) {
            for r in reports.reports(source, date).await.map_err(fail)? {
                found.insert((r.source.clone(), r.file.clone()), r);
            }
        }
        if deliveries
            .iter()
            .all(|d| found.contains_key(&(d.source.clone(), d.name.clone())))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for d in &deliveries {
        let r = found
            .get(&(d.source.clone(), d.name.clone()))
            .ok_or_else(|| fail(format!("{}: no ingest report within 60 s", d.name)))?;
        check(d, r)?;
        match &r.rejection {
            Some(rejection) => say(&format!(
                "{}: quarantined whole — {rejection} → {}",
                d.name,
                r.quarantine_key.as_deref().unwrap_or("-")
            )),
            None => {
                say(&format!(
                    "{} ({}): {} rows read = {} loaded + {} quarantined, {} profile categories written, {} ms",
                    d.name,
                    d.encoding,
                    r.rows_read,
                    r.loaded,
                    r.quarantined,
                    r.profiles_written,
                    r.duration_ms
                ));
                for (rule, n) in &r.quarantined_by_rule {
                    say(&format!("    quarantined  {n:>3}  {rule}"));
                }
                for (rule, n) in &r.warnings_by_rule {
                    say(&format!("    warned       {n:>3}  {rule}"));
                }
            }
        }
    }
    say("every planted defect is under its rule; read = loaded + quarantined for every file");
    Ok((first_step + 2, renamed.len() as u64))
}

/// The daily data-quality job run for the delivery date (as the Lambda does for
/// `{"date": ...}`) over the runner's table and blob store, and its report read back over HTTP
/// as a platform administrator: the planted names counted with masked examples, the source
/// that delivered nothing flagged stale, and each jump a platform alert (its notification is
/// left in the outbox for the runner's relay to send). `planted` is what [`ingest_story`]
/// answered. Returns the next step.
pub async fn quality_story(
    first_step: u32,
    planted: u64,
    api: &crate::demo::Api,
    issuer: &crate::tokens::DevIssuer,
    blobs: Arc<dyn BlobStore>,
    table: Arc<dyn Table>,
) -> Result<u32, Failure> {
    use puhui_services::quality::DataQualityService;
    use puhui_services::storage::StoragePorts;
    let date = NaiveDate::parse_from_str(DELIVERY_DATE, "%Y-%m-%d").map_err(fail)?;
    step(
        first_step,
        &format!("data-quality reports on {DELIVERY_DATE} (daily in AWS; here for that day)"),
    );
    // No queue here: the alerts' notifications stay in the outbox for the runner's relay.
    let ports = StoragePorts::new(
        table,
        blobs,
        Arc::new(SystemClock),
        Arc::new(puhui_ports::UlidGenerator::default()),
        std::collections::HashMap::new(),
    );
    let run = DataQualityService::new(ports)
        .run(date)
        .await
        .map_err(fail)?;
    say(&format!(
        "report written to {}; {} failures; alerts raised: {}",
        run.blob_key,
        run.failures,
        if run.alerts_raised.is_empty() {
            "none".to_owned()
        } else {
            run.alerts_raised.join(", ")
        }
    ));
    step(
        first_step + 1,
        &format!("A platform administrator reads GET /v1/data-quality/reports/{DELIVERY_DATE}"),
    );
    let path = format!("/v1/data-quality/reports/{DELIVERY_DATE}");
    let officer = crate::demo::token(issuer, "nbcb", &["loan_officer"])?;
    let refused = api
        .call(reqwest::Method::GET, &path, Some(&officer), &[], None)
        .await?;
    crate::demo::expect("a loan officer reads the report", &refused, 403)?;
    let admin = crate::demo::token(issuer, "nbcb", &["platform_admin"])?;
    let answer = api
        .call(reqwest::Method::GET, &path, Some(&admin), &[], None)
        .await?;
    crate::demo::expect("the platform administrator reads the report", &answer, 200)?;
    let report: puhui_services::quality::DailyReport =
        serde_json::from_value(answer.body).map_err(fail)?;
    for r in &report.rules {
        let detail = match (r.kind.as_str(), r.last_update) {
            ("freshness", Some(d)) => format!("last delivery {d}"),
            ("freshness", None) => format!(
                "no delivery within {} days",
                r.interval_days.unwrap_or_default()
            ),
            _ => format!(
                "{} checked, {} without registration",
                r.checked, r.unchecked
            ),
        };
        say(&format!(
            "{:<52} failed {:>3}  ({detail}){}",
            r.rule_id,
            r.failed,
            if r.jumped { "  → platform alert" } else { "" }
        ));
        for e in &r.examples {
            say(&format!(
                "    {} line {:>3}: {} ≠ registered {}",
                e.uscc, e.line, e.name, e.registered
            ));
        }
    }
    let names = report
        .rule("tax_credit.taxpayer_name.matches_registration")
        .ok_or_else(|| fail("no tax credit name rule in the report"))?;
    if names.failed != planted {
        return Err(fail(format!(
            "{} names reported unlike the registration, {planted} planted",
            names.failed
        )));
    }
    let stale = report
        .rule("tax_operating.freshness")
        .ok_or_else(|| fail("no tax freshness rule in the report"))?;
    if stale.failed != 1 {
        return Err(fail("the tax source delivered nothing, yet is not stale"));
    }
    say("every planted name counted (examples masked); the source that delivered nothing is stale");
    Ok(first_step + 2)
}

async fn put(
    blobs: &dyn BlobStore,
    source: &str,
    name: &str,
    bytes: Vec<u8>,
) -> Result<(), Failure> {
    let key = format!("{INCOMING}{source}/{DELIVERY_DATE}/{name}");
    blobs.put(&key, bytes, "text/csv").await.map_err(fail)
}

fn check(d: &Delivery, r: &IngestReport) -> Result<(), Failure> {
    let wrong = |what: String| Err(fail(format!("{}: {what}", d.name)));
    if r.rows_read != r.loaded + r.quarantined {
        return wrong(format!(
            "{} read but {} loaded and {} quarantined",
            r.rows_read, r.loaded, r.quarantined
        ));
    }
    match &d.expected {
        Expected::Rows {
            rows,
            rejected,
            warned,
        } => {
            if r.rejection.is_some() || r.rows_read != *rows {
                return wrong(format!("{} rows read, expected {rows}", r.rows_read));
            }
            if &r.quarantined_by_rule != rejected || r.quarantined != rejected.values().sum::<u64>()
            {
                return wrong(format!(
                    "quarantined {:?}, planted {rejected:?}",
                    r.quarantined_by_rule
                ));
            }
            if &r.warnings_by_rule != warned {
                return wrong(format!(
                    "warned {:?}, planted {warned:?}",
                    r.warnings_by_rule
                ));
            }
        }
        Expected::Whole(reason) => {
            let got = r
                .rejection
                .as_ref()
                .and_then(|x| serde_json::to_value(x).ok())
                .and_then(|v| v["reason"].as_str().map(str::to_owned));
            if got.as_deref() != Some(*reason) || r.rows_read != 0 || r.quarantine_key.is_none() {
                return wrong(format!(
                    "expected quarantined whole as {reason}, got {got:?}"
                ));
            }
        }
    }
    Ok(())
}
