//! The data-query story of the demo (issue 7): the firm of the financing story gets its
//! registration from the market-regulation department's batch file; the bank that claimed it
//! reads the basic-registration view — the legal representative's name, ID number and phone
//! masked, every field with its source and as-of date — while a bank the firm never authorized
//! is refused; a loan officer screens the region for prospects (public identity only); and the
//! claiming bank exports its authorized portfolio, fetched through the job's presigned link.
//! The story checks that none of the representative's raw data reaches any answer or file.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use puhui_domain::sources::SourceCatalogue;
use puhui_ports::BlobStore;
use reqwest::Method;
use serde_json::json;

use crate::Failure;
use crate::demo::{Answer, Api, DemoError, expect, say, step, token};
use crate::govdata;
use crate::scoring_story::story_firm;
use crate::tokens::DevIssuer;

/// The registration source and the columns of its personal data.
const REGISTRATION: &str = "market_regulation_registration";
const PERSONAL: [&str; 3] = ["legal_rep_name", "legal_rep_id_number", "legal_rep_phone"];

/// Fails when any of `raw` is in `text`.
fn clean(what: &str, text: &str, raw: &[String]) -> Result<(), DemoError> {
    match raw.iter().find(|r| text.contains(r.as_str())) {
        Some(r) => Err(Failure(format!("{what}: raw personal data {r} leaked"))),
        None => Ok(()),
    }
}

/// Polls `path` as `token` until it answers 200 (the runner's ingest sweep or export consumer
/// catching up), for at most about 30 s.
async fn until_ok(
    api: &Api,
    path: &str,
    token: &str,
    done: impl Fn(&Answer) -> bool,
) -> Result<Answer, DemoError> {
    let mut last = None;
    for _ in 0..150 {
        let a = api.call(Method::GET, path, Some(token), &[], None).await?;
        if a.status.as_u16() == 200 && done(&a) {
            return Ok(a);
        }
        last = Some(a);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let last = last
        .map(|a| format!("{} {}", a.status, a.body))
        .unwrap_or_default();
    Err(Failure(format!("{path} did not become ready: {last}")))
}

/// The story, from step `first_step`. `blobs` is the runner's blob store (its folder): the
/// department's file is delivered there, and the runner's sweep ingests it.
pub async fn data_story(
    api: &Api,
    issuer: &DevIssuer,
    first_step: u32,
    blobs: Arc<dyn BlobStore>,
) -> Result<u32, DemoError> {
    let mut n = first_step;
    let mut next = |what: &str| {
        step(n, what);
        n += 1;
    };
    let officer = token(issuer, "nbcb", &["loan_officer"])?;
    let stranger = token(issuer, "nbrcb", &["loan_officer"])?;
    let firm = story_firm();

    next("The market-regulation department's file names the financing story's firm");
    let source = SourceCatalogue::builtin()
        .get(REGISTRATION)
        .ok_or_else(|| Failure(format!("no source {REGISTRATION}")))?;
    let as_of = NaiveDate::from_ymd_opt(2026, 11, 30).ok_or_else(|| Failure("date".into()))?;
    let file = govdata::batch(source, std::slice::from_ref(&firm), as_of, 1000, 77);
    let raw: Vec<String> = file
        .loads
        .values()
        .flat_map(|row| PERSONAL.iter().filter_map(|c| row.get(*c).cloned()))
        .filter(|v| !v.is_empty())
        .collect();
    if raw.len() != PERSONAL.len() {
        return Err(Failure(format!(
            "the generated row lacks personal data: {raw:?}"
        )));
    }
    let key = format!("incoming/{REGISTRATION}/2026-11-30/story-firm.csv");
    blobs
        .put(&key, file.utf8(), "text/csv")
        .await
        .map_err(|e| Failure(e.to_string()))?;
    say(&format!(
        "{key}: one row, with the legal representative's name, ID number and phone"
    ));

    next(
        "The bank that claimed the demand reads the basic-registration view: personal data masked",
    );
    let path = format!("/v1/firms/{firm}/interfaces/basic_registration?purpose=pre_loan");
    let view = until_ok(api, &path, &officer, |_| true).await?;
    clean("data query", &view.body.to_string(), &raw)?;
    let fields = view.body["fields"].as_array().cloned().unwrap_or_default();
    for f in &fields {
        let name = f["field"].as_str().unwrap_or_default();
        if !(name.starts_with("legal_rep") || name == "firm_name") {
            continue;
        }
        let rule = format!(
            "{} {}",
            f["sensitivity"].as_str().unwrap_or(""),
            f["rule"].as_str().unwrap_or("")
        );
        match f.get("value") {
            Some(v) if !v.is_null() => say(&format!(
                "{name} = {v} ({rule}; {} as of {})",
                f["source"].as_str().unwrap_or(""),
                f["as_of"].as_str().unwrap_or("")
            )),
            _ => say(&format!(
                "{name}: {} ({rule})",
                f["status"].as_str().unwrap_or("")
            )),
        }
    }
    say(&format!(
        "{} fields in all; the query is audited",
        fields.len()
    ));

    next("A bank the firm never authorized asks for the same view");
    let refused = api
        .call(Method::GET, &path, Some(&stranger), &[], None)
        .await?;
    expect("data query: stranger", &refused, 403)?;
    say(&format!(
        "403 {}: {}",
        refused.body["type"].as_str().unwrap_or(""),
        refused.body["detail"].as_str().unwrap_or("")
    ));

    next("A loan officer screens the region's indicator snapshot for prospects");
    let filters =
        json!({"filters": {"regions": ["330203"], "tax_credit_grades": ["A", "B"]}, "limit": 3});
    let screened = api
        .call(
            Method::POST,
            "/v1/screening",
            Some(&officer),
            &[],
            Some(&filters),
        )
        .await?;
    expect("screening", &screened, 200)?;
    say(&format!(
        "snapshot {}: {} firms match{}; first page:",
        screened.body["period"].as_str().unwrap_or(""),
        screened.body["total"],
        if screened.body["capped"] == json!(true) {
            " (capped)"
        } else {
            ""
        }
    ));
    for f in screened.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        say(&format!(
            "  {} {} region {} industry {}",
            f["uscc"].as_str().unwrap_or(""),
            f["name"].as_str().unwrap_or("(no registration yet)"),
            f["region"].as_str().unwrap_or(""),
            f["industry"].as_str().unwrap_or("")
        ));
    }

    next("The claiming bank exports its authorized portfolio's registration view as CSV");
    let submitted = api
        .call(
            Method::POST,
            "/v1/exports",
            Some(&officer),
            &[],
            Some(&json!({"interfaces": ["basic_registration"], "purpose": "pre_loan", "format": "csv"})),
        )
        .await?;
    expect("export: submit", &submitted, 202)?;
    let id = submitted.body["id"].as_str().unwrap_or_default().to_owned();
    let done = until_ok(api, &format!("/v1/exports/{id}"), &officer, |a| {
        a.body["status"] == "completed"
    })
    .await?;
    let job = &done.body["job"];
    say(&format!(
        "job {id}: {} firms, {} included, {} skipped",
        job["firms"], job["firms_included"], job["firms_skipped"]
    ));
    let link = done.body["results"][0].as_str().unwrap_or_default();
    let csv = reqwest::get(link)
        .await
        .map_err(|e| Failure(e.to_string()))?
        .text()
        .await
        .map_err(|e| Failure(e.to_string()))?;
    clean("export", &csv, &raw)?;
    let header: Vec<&str> = csv.lines().next().unwrap_or("").split(',').collect();
    say(&format!(
        "presigned part: {} columns, {} rows, masked as the API masks them",
        header.len(),
        csv.lines().count().saturating_sub(1)
    ));
    if !csv.contains(&firm) {
        return Err(Failure(format!(
            "the export lacks the authorized firm {firm}"
        )));
    }
    Ok(n)
}
