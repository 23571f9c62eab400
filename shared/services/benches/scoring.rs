//! In-process latency of one score as model-score serves it, on the embedded backend (SQLite
//! table, local blob directory): the caller's authorization looked up, the model record read
//! (the parsed version comes from the warm cache), the firm's profile read, features, score
//! and policy, and the audit record written. Reports p50/p99/max over `PUHUI_BENCH_SCORES`
//! scores (default 5,000) of 500 authorized firms, with the sample scorecard and policy.
//!
//!     cargo bench -p puhui-services --bench scoring
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::Duration as Span;
use puhui_domain::authorization::{
    Authorization, AuthorizationId, CREDIT_EVALUATION, ConsentEvidence, Purpose,
};
use puhui_domain::{BankId, ModelName, Principal, Role, Uscc, ids};
use puhui_embedded::{LocalBlobStore, SqliteTable};
use puhui_ports::{Clock, Item, SystemClock, Table, UlidGenerator};
use puhui_services::authorizations::Authorizations;
use puhui_services::profiles::indicators_key;
use puhui_services::scoring::{
    ModelRegistry, ModelUpload, ScoreRequest, ScoringPorts, ScoringService,
};
use serde_json::json;

const CARD: &str = include_str!("../../../samplekit/fixtures/models/sme_tax_card.csv");
const POLICY: &str = include_str!("../../../samplekit/fixtures/policies/default.json");

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// A valid USCC for firm `i` (both check characters computed).
fn uscc(i: usize) -> Uscc {
    let org = format!("{i:08}");
    let org_check = ids::org_code_check_character(org.as_bytes()).unwrap();
    let body = format!("91330203{org}{org_check}");
    let check = ids::uscc_check_character(body.as_bytes()).unwrap();
    Uscc::parse(&format!("{body}{check}")).unwrap()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let scores: usize = std::env::var("PUHUI_BENCH_SCORES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let dir = std::env::temp_dir().join(format!("puhui-bench-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let table: Arc<dyn Table> = Arc::new(SqliteTable::open(dir.join("puhui.db")).unwrap());
    let ids = Arc::new(UlidGenerator::default());
    let ports = ScoringPorts::new(
        table.clone(),
        Arc::new(LocalBlobStore::new(
            dir.join("blobs"),
            "http://127.0.0.1:8080/blobs".into(),
            b"bench".to_vec(),
            clock.clone(),
        )),
        clock.clone(),
        ids,
        Default::default(),
    );
    let bank = BankId::parse("nbcb").unwrap();
    let who = |role| Principal {
        subject: "bench".into(),
        bank_id: Some(bank.clone()),
        roles: vec![role],
    };
    let registry = Arc::new(ModelRegistry::new(ports.clone()));
    let name = ModelName::parse("default").unwrap();
    registry
        .upload(
            &who(Role::RiskAdmin),
            &name,
            ModelUpload {
                content_base64: base64::engine::general_purpose::STANDARD.encode(CARD),
                format: None,
                policy: serde_json::from_str(POLICY).unwrap(),
                features: Default::default(),
                note: None,
            },
        )
        .await
        .unwrap();
    registry
        .activate(&who(Role::RiskAdmin), &name, 1)
        .await
        .unwrap();
    let scoring = ScoringService::new(ports.clone(), registry);
    let authorizations = Authorizations::new(table.clone(), clock.clone());
    let firms: Vec<Uscc> = (0..500).map(uscc).collect();
    let now = clock.now();
    for (i, firm) in firms.iter().enumerate() {
        let mut attrs = serde_json::Map::new();
        attrs.insert("industry".into(), json!("C3311"));
        attrs.insert(
            "values".into(),
            json!({"tax_paid_12m": 1_000_000 * i as i64, "tax_paid_yoy": 0.1, "tax_credit_grade": "B",
                   "social_insured_headcount": i % 40, "court_cases_defendant_12m": i % 3,
                   "dishonest_debtor": false, "abnormal_operation": false, "tax_arrears": false,
                   "serious_violation": false, "enforcement_cases_active": 0}),
        );
        table
            .put(Item::new(indicators_key(firm), attrs), None)
            .await
            .unwrap();
        authorizations
            .grant(&Authorization {
                id: AuthorizationId(ulid::Ulid::new()),
                uscc: firm.clone(),
                bank_id: bank.clone(),
                scope: vec![CREDIT_EVALUATION.into()],
                purposes: vec![Purpose::PreLoan],
                valid_from: now - Span::hours(1),
                valid_until: now + Span::days(30),
                evidence: ConsentEvidence {
                    consented_by: "bench".into(),
                    method: "loan_code_scan".into(),
                    text_version: "v3".into(),
                    at: now,
                },
                revoked_at: None,
            })
            .await
            .unwrap();
    }
    let officer = who(Role::LoanOfficer);
    let mut times = Vec::with_capacity(scores);
    let started = Instant::now();
    for i in 0..scores {
        let t = Instant::now();
        let r = scoring
            .score(
                &officer,
                ScoreRequest {
                    uscc: firms[i % firms.len()].clone(),
                    model: None,
                    owner: None,
                    purpose: None,
                },
            )
            .await
            .unwrap();
        std::hint::black_box(r);
        times.push(t.elapsed());
    }
    let total = started.elapsed();
    times.sort();
    println!(
        "model-score in process (embedded backend): {scores} scores in {:.2} s = {:.0}/s; p50 {} p99 {} max {}",
        total.as_secs_f64(),
        scores as f64 / total.as_secs_f64(),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().unwrap())
    );
    std::fs::remove_dir_all(&dir).ok();
}
