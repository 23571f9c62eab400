//! The risk-monitoring story of the demo: a snapshot is published, a bank writes threshold
//! rules and a watch list, the scheduled scan raises alerts on its borrowers only, and risk
//! staff work an alert while another bank sees none of it. Needs the runner's risk-scan
//! schedule and risk-worker consumer running.

use std::path::Path;
use std::time::Duration;

use arrow_array::cast::AsArray;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Failure;
use crate::demo::{Api, DemoError, expect, say, step, token};
use crate::tokens::DevIssuer;

/// Firms in the demo snapshot, and how many of them the bank watches.
const FIRMS: usize = 2_000;
const WATCHED: usize = 300;

/// The rules a bank's risk admin writes: thresholds on the catalogue's indicators.
pub fn sample_rules() -> Value {
    json!([
        {"id": "tax-drop", "name": "纳税额同比下降超过30% Tax paid down > 30%", "severity": "warning",
         "cooldown_periods": 2,
         "conditions": {"all": [
            {"fact": "tax_paid_yoy", "operator": "lessThan", "value": -0.3},
            {"fact": "tax_paid_12m", "operator": "greaterThan", "value": 0}]}},
        {"id": "seizure", "name": "房产查封或股权冻结 Property seized or equity frozen", "severity": "critical",
         "conditions": {"any": [
            {"fact": "property_seized", "operator": "equal", "value": true},
            {"fact": "equity_frozen", "operator": "equal", "value": true}]}},
        {"id": "dishonest", "name": "失信被执行人 Dishonest debtor", "severity": "critical",
         "conditions": {"all": [{"fact": "dishonest_debtor", "operator": "equal", "value": true}]}},
        {"id": "utilities-collapse", "name": "水电用量骤降 Utilities use collapsing", "severity": "warning",
         "conditions": {"all": [
            {"fact": "electricity_yoy", "operator": "lessThan", "value": -0.5},
            {"not": {"fact": "tax_credit_grade", "operator": "equal", "value": "A"}}]}}
    ])
}

/// Writes the demo snapshot (period 2026-10, 4 shards) to `dir`; returns the firms' codes.
pub fn write_snapshot(dir: &Path) -> Result<Vec<String>, DemoError> {
    crate::snapshot::write(dir, FIRMS, 2026, 4, "2026-10")?;
    let snap = puhui_snapshot::Snapshot::open(dir).map_err(|e| Failure(e.to_string()))?;
    let mut usccs = Vec::new();
    for batch in snap.read_all().map_err(|e| Failure(e.to_string()))? {
        if let Some(col) = batch.column_by_name(puhui_snapshot::USCC) {
            usccs.extend(col.as_string::<i32>().iter().flatten().map(str::to_owned));
        }
    }
    Ok(usccs)
}

/// The story, from step `first_step`. `usccs` are the firms of the snapshot already published
/// to the deployment's blob store; `outbox` is the runner's notification file, if local.
pub async fn risk_story(
    api: &Api,
    issuer: &DevIssuer,
    first_step: u32,
    usccs: &[String],
    outbox: Option<&Path>,
) -> Result<u32, DemoError> {
    let mut n = first_step;
    let mut next = |what: &str| {
        step(n, what);
        n += 1;
    };
    let admin = token(issuer, "nbcb", &["risk_admin"])?;
    let officer = token(issuer, "nbcb", &["loan_officer"])?;
    let other = token(issuer, "icbc-nb", &["risk_admin"])?;

    next("Bank of Ningbo's risk admin saves threshold rules (json-rules-engine conditions)");
    let bad = json!({"rules": [{"id": "x", "name": "x", "severity": "info",
        "conditions": {"all": [{"fact": "tax_paid_yoy", "operator": "equal", "value": "low"}]}}]});
    let refused = api
        .call(
            Method::PUT,
            "/v1/risk/rule-set",
            Some(&admin),
            &[],
            Some(&bad),
        )
        .await?;
    expect("bad rule set", &refused, 422)?;
    say(&format!(
        "422 a text value for a ratio is refused at {}",
        refused.body["errors"][0]["field"]
    ));
    let saved = api
        .call(
            Method::PUT,
            "/v1/risk/rule-set",
            Some(&admin),
            &[],
            Some(&json!({"rules": sample_rules()})),
        )
        .await?;
    expect("save rule set", &saved, 201)?;
    say(&format!(
        "201 version {} with {} rules",
        saved.body["version"],
        saved.body["rules"].as_array().map_or(0, Vec::len)
    ));

    next("Its watch list: the borrower approved in the financing flow, plus a bulk upload");
    let listed = api
        .call(
            Method::GET,
            "/v1/risk/watch-list?limit=5",
            Some(&officer),
            &[],
            None,
        )
        .await?;
    expect("watch list", &listed, 200)?;
    for e in listed.body["items"].as_array().into_iter().flatten() {
        say(&format!("{} added by {}", e["uscc"], e["source"]));
    }
    let upload: Vec<&String> = usccs
        .iter()
        .step_by(FIRMS / WATCHED)
        .take(WATCHED)
        .collect();
    let bulk = api
        .call(
            Method::POST,
            "/v1/risk/watch-list/bulk",
            Some(&admin),
            &[],
            Some(&json!({"usccs": upload})),
        )
        .await?;
    expect("bulk upload", &bulk, 200)?;
    say(&format!(
        "bulk: {} received, {} added",
        bulk.body["received"], bulk.body["added"]
    ));
    let settings = api
        .call(
            Method::PUT,
            "/v1/risk/settings",
            Some(&admin),
            &[],
            Some(&json!({"sms": ["13800138000"], "webhook": true})),
        )
        .await?;
    expect("settings", &settings, 200)?;
    say("alerts go to one risk manager by SMS and to the bank's webhook");

    next("Dry run on the newest snapshot: counts only, nothing raised");
    let dry = api
        .call(
            Method::POST,
            "/v1/risk/rule-set/dry-run",
            Some(&officer),
            &[],
            Some(&json!({})),
        )
        .await?;
    expect("dry run", &dry, 200)?;
    say(&format!(
        "snapshot {}: {} firms, {} watched",
        dry.body["period"], dry.body["firms"], dry.body["watched_firms"]
    ));
    for r in dry.body["rules"].as_array().into_iter().flatten() {
        say(&format!(
            "{:<20} {:>4} watched hits {:>5} in the region  {:>3} missing values",
            r["rule_id"].as_str().unwrap_or(""),
            r["watched_hits"],
            r["all_hits"],
            r["watched_missing"]
        ));
    }
    let expected_alerts: u64 = dry.body["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["watched_hits"].as_u64())
        .sum();

    next("The scheduled risk scan plans shard × bank tasks; risk-worker evaluates them");
    let mut scan = Value::Null;
    for _ in 0..600 {
        let scans = api
            .call(Method::GET, "/v1/risk/scans", Some(&officer), &[], None)
            .await?;
        expect("scans", &scans, 200)?;
        scan = scans.body["items"][0].clone();
        if scan["status"] == "completed" || scan["status"] == "failing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if scan["status"] != "completed" {
        // Show the tasks and their errors: the scan reports what failed.
        let id = scan["id"].as_str().unwrap_or_default();
        let report = api
            .call(
                Method::GET,
                &format!("/v1/risk/scans/{id}"),
                Some(&officer),
                &[],
                None,
            )
            .await?;
        return Err(Failure(format!(
            "risk story: scan did not complete: {}",
            report.body
        )));
    }
    say(&format!(
        "scan {}: {}/{} of this bank's tasks done, {} alerts",
        scan["id"].as_str().unwrap_or(""),
        scan["tasks_done"],
        scan["tasks_planned"],
        scan["alerts"]
    ));
    if scan["alerts"].as_u64() != Some(expected_alerts) {
        return Err(Failure(format!(
            "risk story: the scan raised {} alerts, the dry run counted {expected_alerts}",
            scan["alerts"]
        )));
    }

    next("Critical alerts on the bank's desk");
    let critical = api
        .call(
            Method::GET,
            "/v1/risk/alerts?severity=critical&limit=3",
            Some(&officer),
            &[],
            None,
        )
        .await?;
    expect("alerts", &critical, 200)?;
    for a in critical.body["items"].as_array().into_iter().flatten() {
        say(&format!(
            "{}  {}  {}",
            a["id"].as_str().unwrap_or(""),
            a["rule_name"].as_str().unwrap_or(""),
            a["facts"]
        ));
    }
    let Some(first) = critical.body["items"][0]["id"].as_str().map(str::to_owned) else {
        return Err(Failure("risk story: no critical alert to work".into()));
    };

    next("A loan officer works one: acknowledge → verify (false alarm, with a note) → close");
    for action in [
        json!({"action": "acknowledge"}),
        json!({"action": "verify", "verdict": "false_alarm", "note": "查封已解除，见法院解封通知书"}),
        json!({"action": "close"}),
    ] {
        let moved = api
            .call(
                Method::POST,
                &format!("/v1/risk/alerts/{first}/actions"),
                Some(&officer),
                &[],
                Some(&action),
            )
            .await?;
        expect("alert action", &moved, 200)?;
        say(&format!("200 status={}", moved.body["status"]));
    }
    let again = api
        .call(
            Method::POST,
            &format!("/v1/risk/alerts/{first}/actions"),
            Some(&officer),
            &[],
            Some(&json!({"action": "acknowledge"})),
        )
        .await?;
    expect("invalid move", &again, 409)?;
    say("409 a closed alert cannot be acknowledged again");
    let stats = api
        .call(Method::GET, "/v1/risk/stats", Some(&officer), &[], None)
        .await?;
    expect("stats", &stats, 200)?;
    for s in stats.body.as_array().into_iter().flatten() {
        say(&format!(
            "{:<20} {:>3} alerts  {} confirmed  {} false alarms  rate {}",
            s["rule_id"].as_str().unwrap_or(""),
            s["hits"],
            s["confirmed"],
            s["false_alarm"],
            s.get("false_alarm_rate").unwrap_or(&Value::Null)
        ));
    }

    next("Another bank sees none of it");
    let theirs = api
        .call(
            Method::GET,
            &format!("/v1/risk/alerts/{first}"),
            Some(&other),
            &[],
            None,
        )
        .await?;
    expect("other bank's alert", &theirs, 404)?;
    let their_list = api
        .call(Method::GET, "/v1/risk/alerts", Some(&other), &[], None)
        .await?;
    expect("other bank's list", &their_list, 200)?;
    say(&format!(
        "ICBC Ningbo: 404 on Bank of Ningbo's alert, {} alerts of its own",
        their_list.body["items"].as_array().map_or(0, Vec::len)
    ));

    if let Some(outbox) = outbox {
        next("Alert notifications sent (webhook and SMS, each once)");
        let want = 2 * expected_alerts as usize;
        let mut sent = Vec::new();
        for _ in 0..300 {
            sent = puhui_outbound::notify::read_outbox(outbox)
                .into_iter()
                .filter(|s| s["template"] == "risk_alert")
                .collect();
            if sent.len() >= want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if sent.len() != want {
            return Err(Failure(format!(
                "risk story: {} of {want} alert notifications sent",
                sent.len()
            )));
        }
        if let Some(s) = sent.first() {
            say(&format!(
                "{:<22} {}",
                s["recipient"].as_str().unwrap_or(""),
                s["text"].as_str().unwrap_or("")
            ));
        }
        say(&format!("{} alert notifications in total", sent.len()));
    }
    Ok(n)
}
