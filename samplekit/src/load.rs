//! A constant-rate (open-loop) HTTP load generator for loopback benchmarks, and the seeding the
//! data-query benchmark needs.
//!
//! Open loop: request `i` is due at `start + i / rps` whatever happened to earlier requests, and
//! its latency runs from that due instant, not from when it was actually sent. A server that
//! stalls therefore shows the stall in every request queued behind it (no coordinated
//! omission). Only `http://127.0.0.1:<port>/…` is accepted, and the run is bounded by `rps`
//! and `seconds`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::Failure;

/// Highest rate accepted.
pub const MAX_RPS: u32 = 20_000;
/// Longest run accepted.
pub const MAX_SECONDS: u32 = 600;
/// Requests outstanding at once before further due requests are counted as skipped (the
/// generator's own limit, reported separately from the server's answers).
pub const MAX_IN_FLIGHT: usize = 4_096;
/// Per-request timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// The URL every request GETs (`http://127.0.0.1:<port>/…`).
    pub url: String,
    /// `Authorization: Bearer <token>`, when given.
    pub bearer: Option<String>,
    /// Requests per second.
    pub rps: u32,
    /// Duration of the run.
    pub seconds: u32,
}

impl LoadPlan {
    /// Checks the bounds and that the URL is loopback `127.0.0.1` over plain HTTP.
    pub fn check(&self) -> Result<(), Failure> {
        let fail = |m: String| Err(Failure(m));
        if self.rps == 0 || self.rps > MAX_RPS {
            return fail(format!("--rps must be 1..={MAX_RPS}, got {}", self.rps));
        }
        if self.seconds == 0 || self.seconds > MAX_SECONDS {
            return fail(format!(
                "--seconds must be 1..={MAX_SECONDS}, got {}",
                self.seconds
            ));
        }
        let url = reqwest::Url::parse(&self.url).map_err(|e| Failure(format!("--url: {e}")))?;
        let loopback = url.scheme() == "http"
            && url.host_str() == Some("127.0.0.1")
            && url.username().is_empty()
            && url.password().is_none();
        if !loopback {
            return fail(format!(
                "--url must be http://127.0.0.1:<port>/… (loopback only), got {}",
                self.url
            ));
        }
        Ok(())
    }
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Requests due in the run.
    pub scheduled: u64,
    /// Requests not sent because [`MAX_IN_FLIGHT`] were outstanding.
    pub skipped: u64,
    /// Answers by status (`200`, `403`, …) and transport failures (`error: …`).
    pub by_status: BTreeMap<String, u64>,
    /// Latency of every answered request (due instant → full body read), sorted, microseconds.
    pub latencies_us: Vec<u64>,
    /// From the first due instant to the last answer.
    pub elapsed: Duration,
    /// Largest lag of a send behind its due instant (the generator's own scheduling delay).
    pub max_send_lag: Duration,
}

impl LoadReport {
    /// Requests answered 2xx.
    pub fn ok(&self) -> u64 {
        self.by_status
            .iter()
            .filter(|(s, _)| s.starts_with('2'))
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests answered at all (any status) or failed in transport.
    pub fn completed(&self) -> u64 {
        self.by_status.values().sum()
    }

    /// The `p`-th percentile (0–100) of the latencies, nearest rank.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        percentile(&self.latencies_us, p).map(Duration::from_micros)
    }

    /// The summary printed by `samplekit load`.
    pub fn render(&self, plan: &LoadPlan) -> String {
        let secs = self.elapsed.as_secs_f64().max(f64::EPSILON);
        let ms = |d: Option<Duration>| {
            d.map_or_else(
                || "-".into(),
                |d| format!("{:.2} ms", d.as_secs_f64() * 1e3),
            )
        };
        let mut s = format!(
            "target {} rps for {} s: {} due, {} completed, {} skipped (generator in-flight cap {})\n",
            plan.rps,
            plan.seconds,
            self.scheduled,
            self.completed(),
            self.skipped,
            MAX_IN_FLIGHT
        );
        s += &format!(
            "achieved: {:.1} completed/s, {:.1} 2xx/s over {:.2} s\n",
            self.completed() as f64 / secs,
            self.ok() as f64 / secs,
            secs
        );
        let statuses: Vec<String> = self
            .by_status
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        s += &format!("by status: {}\n", statuses.join(", "));
        s += &format!(
            "latency (from due instant): p50 {}  p90 {}  p99 {}  p99.9 {}  max {}\n",
            ms(self.percentile(50.0)),
            ms(self.percentile(90.0)),
            ms(self.percentile(99.0)),
            ms(self.percentile(99.9)),
            ms(self.percentile(100.0)),
        );
        s += &format!(
            "generator max send lag: {:.2} ms",
            self.max_send_lag.as_secs_f64() * 1e3
        );
        s
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[derive(Default)]
struct Tally {
    by_status: BTreeMap<String, u64>,
    latencies_us: Vec<u64>,
    last_done: Option<Instant>,
}

/// Runs the plan: GETs `plan.url` at a constant rate for `plan.seconds`, then waits for the
/// outstanding answers (each bounded by a 10 s timeout).
pub async fn run(plan: &LoadPlan) -> Result<LoadReport, Failure> {
    plan.check()?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(TIMEOUT)
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| Failure(format!("HTTP client: {e}")))?;
    let url = reqwest::Url::parse(&plan.url).map_err(|e| Failure(e.to_string()))?;
    let total = u64::from(plan.rps) * u64::from(plan.seconds);
    let period = Duration::from_secs(1).as_secs_f64() / f64::from(plan.rps);
    let tally = Arc::new(Mutex::new(Tally {
        latencies_us: Vec::with_capacity(usize::try_from(total).unwrap_or(0)),
        ..Tally::default()
    }));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    let mut report = LoadReport {
        scheduled: total,
        ..LoadReport::default()
    };
    // Start a little ahead so the first due instants are not already late.
    let start = Instant::now() + Duration::from_millis(50);
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 * period);
        tokio::time::sleep_until(due).await;
        report.max_send_lag = report.max_send_lag.max(Instant::now() - due);
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            report.skipped += 1;
            continue;
        };
        let (client, url, tally) = (client.clone(), url.clone(), tally.clone());
        let bearer = plan.bearer.clone();
        tasks.spawn(async move {
            let mut req = client.get(url);
            if let Some(t) = bearer {
                req = req.bearer_auth(t);
            }
            let outcome = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16().to_string();
                    match resp.bytes().await {
                        Ok(_) => Ok(status),
                        Err(e) => Err(format!("error: body: {}", kind(&e))),
                    }
                }
                Err(e) => Err(format!("error: {}", kind(&e))),
            };
            let done = Instant::now();
            drop(permit);
            let mut t = tally.lock().await;
            t.last_done = Some(t.last_done.map_or(done, |l| l.max(done)));
            match outcome {
                Ok(status) => {
                    let us = u64::try_from((done - due).as_micros()).unwrap_or(u64::MAX);
                    t.latencies_us.push(us);
                    *t.by_status.entry(status).or_default() += 1;
                }
                Err(e) => *t.by_status.entry(e).or_default() += 1,
            }
        });
        // Reap finished tasks so the set does not grow with the run.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let mut t = std::mem::take(&mut *tally.lock().await);
    t.latencies_us.sort_unstable();
    report.by_status = t.by_status;
    report.latencies_us = t.latencies_us;
    report.elapsed = t.last_done.map_or(Duration::ZERO, |l| l - start);
    Ok(report)
}

fn kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "other"
    }
}

/// Seeds what one data query needs into the runner's table (`<data_dir>/puhui.db`, another
/// connection to the same SQLite file): the firm's authorization of `bank` covering every
/// catalogue interface for every purpose, valid from a day ago for 30 days, and every profile
/// category the catalogue reads, with plausible values.
pub async fn seed_data_query(data_dir: &Path, uscc: &str, bank: &str) -> Result<(), Failure> {
    use puhui_domain::authorization::{Authorization, ConsentEvidence, Purpose};
    use puhui_domain::interfaces::{Catalogue, ProfileCategory, ProfileField};
    use puhui_ports::{IdGenerator, Table};

    let fail = |e: &dyn std::fmt::Display| Failure(e.to_string());
    let table: Arc<dyn Table> = Arc::new(
        puhui_embedded::SqliteTable::open(data_dir.join("puhui.db")).map_err(|e| fail(&e))?,
    );
    let clock: Arc<dyn puhui_ports::Clock> = Arc::new(puhui_ports::SystemClock);
    let uscc = puhui_domain::Uscc::parse(uscc).map_err(|e| fail(&e))?;
    let bank = puhui_domain::BankId::parse(bank).map_err(|e| fail(&e))?;
    let now = clock.now();
    let catalogue = Catalogue::builtin();
    let scope: Vec<String> = catalogue.interfaces.iter().map(|i| i.id.clone()).collect();
    let a = Authorization {
        id: puhui_domain::AuthorizationId(puhui_ports::UlidGenerator::default().ulid()),
        uscc: uscc.clone(),
        bank_id: bank,
        scope,
        purposes: vec![
            Purpose::PreLoan,
            Purpose::InLoan,
            Purpose::PostLoan,
            Purpose::Marketing,
        ],
        valid_from: now - chrono::Duration::days(1),
        valid_until: now + chrono::Duration::days(30),
        evidence: ConsentEvidence {
            consented_by: "bench-applicant".into(),
            method: "counter".into(),
            text_version: "v1".into(),
            at: now - chrono::Duration::days(1),
        },
        revoked_at: None,
    };
    puhui_services::authorizations::Authorizations::new(table.clone(), clock.clone())
        .grant(&a)
        .await
        .map_err(|e| fail(&e))?;
    let as_of = now.date_naive() - chrono::Duration::days(3);
    let mut profile: BTreeMap<ProfileCategory, BTreeMap<String, ProfileField>> = BTreeMap::new();
    for iface in catalogue.interfaces.iter() {
        for f in &iface.fields {
            profile.entry(f.category).or_default().insert(
                f.field.clone(),
                ProfileField {
                    value: sample_value(&f.field),
                    source: "bench".into(),
                    as_of,
                },
            );
        }
    }
    for (category, fields) in &profile {
        let item = puhui_services::profiles::category_item(&uscc, *category, fields)
            .map_err(|e| fail(&e))?;
        table.put(item, None).await.map_err(|e| fail(&e))?;
    }
    Ok(())
}

/// A plausible stored value for a profile field, by its name.
pub fn sample_value(field: &str) -> serde_json::Value {
    use serde_json::json;
    match field {
        "firm_name" => json!("宁波示例精密机械有限公司"),
        "registered_address" | "legal_rep_address" => {
            json!("浙江省宁波市鄞州区首南街道天童南路588号")
        }
        "established_on" => json!("2015-06-18"),
        "industry" => json!("C3311"),
        "status" => json!("存续"),
        "legal_rep_name" => json!("张三丰"),
        "legal_rep_id_number" => json!("330203198001011234"),
        "legal_rep_phone" => json!("13812345678"),
        "contact_email" => json!("finance@example.cn"),
        "settlement_account" => json!("6222020200112233445"),
        "tax_credit_grade" => json!("A"),
        "public_credit_rating" => json!("AA"),
        "honours" => json!(["专精特新"]),
        "high_tech" | "specialised" => json!(true),
        "dishonest_debtor"
        | "consumption_restricted"
        | "property_seized"
        | "equity_frozen"
        | "abnormal_operation"
        | "serious_violation" => json!(false),
        "tax_paid_monthly" | "electricity_monthly" => json!([10, 12, 11, 13, 12, 14]),
        "insured_roster" => json!([{"name": "李四", "id": "330203199001011234"}]),
        f if f.ends_with("_yoy") || f.ends_with("_change_6m") => json!(0.05),
        f if f.ends_with("_count")
            || f.ends_with("_headcount")
            || f.ends_with("_months")
            || f.ends_with("_12m") && f.starts_with("court")
            || f.contains("cases")
            || f.starts_with("penalties")
            || f == "patents" =>
        {
            json!(3)
        }
        _ => json!(1_250_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(url: &str) -> LoadPlan {
        LoadPlan {
            url: url.into(),
            bearer: None,
            rps: 10,
            seconds: 1,
        }
    }

    #[test]
    fn only_loopback_127_0_0_1_over_http_is_accepted() {
        assert!(
            plan("http://127.0.0.1:8080/v1/x?purpose=pre_loan")
                .check()
                .is_ok()
        );
        for bad in [
            "http://localhost:8080/",
            "https://127.0.0.1:8080/",
            "http://10.0.0.1/",
            "http://example.com/",
            "http://u:p@127.0.0.1:1/",
            "not a url",
        ] {
            assert!(plan(bad).check().is_err(), "{bad}");
        }
    }

    #[test]
    fn rate_and_duration_are_bounded() {
        let mut p = plan("http://127.0.0.1:1/");
        p.rps = 0;
        assert!(p.check().is_err());
        p.rps = MAX_RPS + 1;
        assert!(p.check().is_err());
        p.rps = 1;
        p.seconds = MAX_SECONDS + 1;
        assert!(p.check().is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[tokio::test]
    async fn a_refused_connection_is_counted_not_fatal() {
        // Bind then drop a listener to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        let mut p = plan(&format!("http://127.0.0.1:{port}/"));
        p.rps = 20;
        let report = run(&p).await.map_err(|e| e.0).unwrap_or_default();
        assert_eq!(report.scheduled, 20);
        assert_eq!(report.completed() + report.skipped, 20);
        assert_eq!(report.ok(), 0);
    }
}
