//! Model scoring (issue 4), proven on both storage adapters (embedded: SQLite and a local blob
//! directory; AWS: DynamoDB, S3 and SQS on a local AWS-API server, moto):
//!
//! 1. the registry refuses bad uploads naming the field and storing nothing, versions good
//!    ones, and activation, the shadow challenger and rollback decide which version answers —
//!    a warm service notices each change at its next score;
//! 2. a bank scores a firm only under that firm's live authorization of that bank covering
//!    credit evaluation and the stated purpose; every request, allowed or refused, leaves one
//!    audit record saying why; knock-outs decline; another bank's private model is unreachable;
//! 3. a batch pre-approval job scores its authorized firms and skips the rest, each chunk
//!    delivered twice and the job counted once, with one audit record per firm and result
//!    parts behind presigned links; an unreadable chunk message is reported failed;
//! 4. a bank that claims a financing demand receives the firm's authorization with the claim
//!    (and can score it); a bank that did not claim cannot.
//!
//! The AWS side needs `PUHUI_TEST_AWS_ENDPOINT` (run through `tests/scripts/with-moto.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine;
use chrono::Duration;
use puhui_api::events::scoring_job_batch;
use puhui_domain::authorization::{
    Authorization, AuthorizationId, CREDIT_EVALUATION, ConsentEvidence, Purpose,
};
use puhui_domain::{BankId, Error, ModelName, ModelOwner, Uscc};
use puhui_engines::decision::Outcome;
use puhui_ports::{IdGenerator, Item};
use puhui_services::audit::AuditOutcome;
use puhui_services::authorizations::Authorizations;
use puhui_services::financing::{DeskService, DispatchService, FinancingConfig};
use puhui_services::profiles::indicators_key;
use puhui_services::scoring::{
    BatchScoring, JobChunk, JobRequest, JobStatus, ModelRegistry, ModelUpload, ScoreRequest,
    ScoringService,
};
use puhui_tests::firm_profiles::firms;
use puhui_tests::harness::{
    Env, Kind, audit_of, bank, drain, officer, platform_admin, risk_admin, setup, sqs_event,
};
use serde_json::{Value, json};

const CARD: &str = include_str!("../../samplekit/fixtures/models/sme_tax_card.csv");
const POLICY: &str = include_str!("../../samplekit/fixtures/policies/default.json");

fn policy() -> Value {
    serde_json::from_str(POLICY).unwrap()
}

fn upload(card: &str) -> ModelUpload {
    ModelUpload {
        content_base64: base64::engine::general_purpose::STANDARD.encode(card),
        format: None,
        policy: policy(),
        features: Default::default(),
        note: None,
    }
}

/// The card and its policy with variable `from` renamed `to`.
fn renamed(card: &str, from: &str, to: &str) -> ModelUpload {
    let mut u = upload(&card.replace(from, to));
    let codes = u.policy["reason_codes"].as_object_mut().unwrap();
    let code = codes.remove(from).unwrap();
    codes.insert(to.into(), code);
    u
}

/// The card with its base points moved, so two versions score a firm differently.
fn card_with_base(base: f64) -> String {
    CARD.replace("basepoints,,560.0", &format!("basepoints,,{base:?}"))
}

fn name(s: &str) -> ModelName {
    ModelName::parse(s).unwrap()
}

struct Scoring {
    registry: Arc<ModelRegistry>,
    scoring: Arc<ScoringService>,
    batch: BatchScoring,
    authorizations: Authorizations,
}

fn scoring(env: &Env) -> Scoring {
    let ports = env.scoring_ports();
    let registry = Arc::new(ModelRegistry::new(ports.clone()));
    let scoring = Arc::new(ScoringService::new(ports.clone(), registry.clone()));
    Scoring {
        batch: BatchScoring::new(ports, registry.clone(), scoring.clone()),
        registry,
        scoring,
        authorizations: Authorizations::new(env.table.clone(), env.clock.clone()),
    }
}

/// A firm with a clean record and the given tax grade (every knock-out indicator present).
async fn profile(env: &Env, firm: &Uscc, tax_paid_12m: i64, grade: &str, dishonest: bool) {
    let values = json!({
        "tax_paid_12m": tax_paid_12m, "tax_paid_yoy": 0.15, "social_insured_headcount": 25,
        "tax_credit_grade": grade, "court_cases_defendant_12m": 0,
        "dishonest_debtor": dishonest, "abnormal_operation": false, "tax_arrears": false,
        "serious_violation": false, "enforcement_cases_active": 0,
    });
    let mut attrs = serde_json::Map::new();
    attrs.insert("industry".into(), json!("C13"));
    attrs.insert("values".into(), values);
    env.table
        .put(Item::new(indicators_key(firm), attrs), None)
        .await
        .unwrap();
}

async fn grant(
    s: &Scoring,
    env: &Env,
    firm: &Uscc,
    bank: &BankId,
    scope: &str,
    purposes: &[Purpose],
    until: Duration,
) -> AuthorizationId {
    let id = AuthorizationId(env.ids.ulid());
    let now = env.now();
    s.authorizations
        .grant(&Authorization {
            id,
            uscc: firm.clone(),
            bank_id: bank.clone(),
            scope: vec![scope.into()],
            purposes: purposes.to_vec(),
            valid_from: now - Duration::hours(1),
            valid_until: now + until,
            evidence: ConsentEvidence {
                consented_by: "applicant-1".into(),
                method: "loan_code_scan".into(),
                text_version: "consent-v3".into(),
                at: now - Duration::hours(1),
            },
            revoked_at: None,
        })
        .await
        .unwrap();
    id
}

fn request(firm: &Uscc) -> ScoreRequest {
    ScoreRequest {
        uscc: firm.clone(),
        model: None,
        owner: None,
        purpose: None,
    }
}

fn fields(e: &Error) -> Vec<String> {
    match e {
        Error::Validation(errors) => errors.iter().map(|f| f.field.clone()).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------

async fn registry_versions_activates_and_rolls_back(env: &Env) {
    let s = scoring(env);
    let nbcb = bank("nbcb");
    let admin = risk_admin(&nbcb);
    let default = name("default");

    // Refused uploads name the field and store nothing.
    let mut bad = upload(CARD);
    bad.content_base64 = "not base64!".into();
    assert_eq!(
        fields(&s.registry.upload(&admin, &default, bad).await.unwrap_err()),
        ["content_base64"]
    );
    let e = s
        .registry
        .upload(
            &admin,
            &default,
            renamed(CARD, "court_cases_defendant_12m", "lawsuits"),
        )
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["features.lawsuits"]);
    let mut gapped = upload(&CARD.replace("\"[1.0,3.0)\",-20.0", "\"[2.0,3.0)\",-20.0"));
    gapped.policy["bands"] = json!([]);
    let e = s
        .registry
        .upload(&admin, &default, gapped)
        .await
        .unwrap_err();
    let f = fields(&e);
    assert!(f.contains(&"content_base64".to_string()), "{f:?}");
    assert!(f.iter().any(|f| f.starts_with("policy.bands")), "{f:?}");
    let mut stray_reason = upload(CARD);
    stray_reason.policy["reason_codes"]["lawsuits"] = json!({"code": "R99", "text": "lawsuits"});
    let e = s
        .registry
        .upload(&admin, &default, stray_reason)
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["policy.reason_codes.lawsuits"]);
    let mut mapped = renamed(
        &card_with_base(500.0),
        "court_cases_defendant_12m",
        "lawsuits",
    );
    mapped.features = [("lawsuits".into(), "court_cases_defendant_12m".into())].into();
    assert!(s.registry.list(&admin).await.unwrap().is_empty());
    // A loan officer may not upload.
    assert!(matches!(
        s.registry
            .upload(&officer(&nbcb), &default, upload(CARD))
            .await,
        Err(Error::Forbidden(_))
    ));

    // v1 (the card as is) and v2 (a variable renamed and mapped back, base points 60 lower).
    let v1 = s
        .registry
        .upload(&admin, &default, upload(CARD))
        .await
        .unwrap();
    assert_eq!((v1.version, v1.variables.len()), (1, 5));
    assert_eq!(
        v1.smoke.missing_score,
        Some(560.0 - 40.0 - 10.0 - 20.0 - 45.0)
    );
    let v2 = s.registry.upload(&admin, &default, mapped).await.unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(v2.features["lawsuits"], "court_cases_defendant_12m");

    let firm = firms(1, 1).remove(0);
    profile(env, &firm, 60_000_000, "A", false).await;
    grant(
        &s,
        env,
        &firm,
        &nbcb,
        CREDIT_EVALUATION,
        &[Purpose::PreLoan],
        Duration::days(30),
    )
    .await;
    let loan_officer = officer(&nbcb);
    assert!(matches!(
        s.scoring.score(&loan_officer, request(&firm)).await,
        Err(Error::Conflict(_))
    ));

    s.registry.activate(&admin, &default, 1).await.unwrap();
    let r = s
        .scoring
        .score(&loan_officer, request(&firm))
        .await
        .unwrap();
    assert_eq!((r.model.version, r.decision.score), (1, Some(715.0)));
    assert_eq!(r.decision.grade.as_deref(), Some("A"));
    assert_eq!(r.decision.outcome, Outcome::Approve);

    // The challenger is scored in shadow: recorded in the audit, never returned.
    s.registry
        .set_challenger(&admin, &default, Some(2))
        .await
        .unwrap();
    let r = s
        .scoring
        .score(&loan_officer, request(&firm))
        .await
        .unwrap();
    assert_eq!((r.model.version, r.decision.score), (1, Some(715.0)));
    let record = audit_of(env, &nbcb)
        .await
        .into_iter()
        .find(|a| a.id == r.audit_id)
        .unwrap();
    let result = record.result.unwrap();
    assert_eq!(result["challenger"]["version"], json!(2));
    assert_eq!(result["challenger"]["score"].as_f64(), Some(655.0));
    assert!(serde_json::to_string(&r).unwrap().find("655").is_none());

    // Activation and rollback take effect at the next score of the same (warm) service.
    s.registry.activate(&admin, &default, 2).await.unwrap();
    let r = s
        .scoring
        .score(&loan_officer, request(&firm))
        .await
        .unwrap();
    assert_eq!((r.model.version, r.decision.score), (2, Some(655.0)));
    let record = s.registry.rollback(&admin, &default).await.unwrap();
    assert_eq!((record.active, record.history.clone()), (Some(1), vec![]));
    let r = s
        .scoring
        .score(&loan_officer, request(&firm))
        .await
        .unwrap();
    assert_eq!(r.model.version, 1);
    assert!(matches!(
        s.registry.rollback(&admin, &default).await,
        Err(Error::Conflict(_))
    ));
    let versions = s
        .registry
        .versions(&admin, &ModelOwner::Bank(nbcb.clone()), &default)
        .await
        .unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2]
    );

    // ONNX models as exported: an unsupported operator is refused naming it; a LightGBM
    // ensemble, its variables mapped to catalogue features, scores with a PD.
    let onnx = |file: &str| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/engines/tests/fixtures/onnx")
            .join(file);
        let mut u = upload(CARD);
        u.content_base64 =
            base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap());
        u.policy["reason_codes"] = json!({});
        u
    };
    let trees = name("trees");
    let e = s
        .registry
        .upload(&admin, &trees, onnx("mlp_unsupported.onnx"))
        .await
        .unwrap_err();
    let Error::Validation(errors) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(errors[0].field, "content_base64");
    assert!(errors[0].message.contains("MatMul"), "{errors:?}");
    let mut lgb = onnx("lgb50.onnx");
    lgb.features = [
        ("age", "tax_paid_12m"),
        ("income", "tax_paid_yoy"),
        ("debt_ratio", "invoice_sales_yoy"),
        ("tenure", "social_insured_headcount"),
        ("overdue_count", "court_cases_defendant_12m"),
        ("utilisation", "electricity_yoy"),
        ("inquiries", "penalties_12m"),
        ("revenue_growth", "water_yoy"),
    ]
    .map(|(v, f)| (v.to_string(), f.to_string()))
    .into();
    let v = s.registry.upload(&admin, &trees, lgb).await.unwrap();
    assert_eq!(v.variables.len(), 8);
    s.registry.activate(&admin, &trees, 1).await.unwrap();
    let mut req = request(&firm);
    req.model = Some(trees);
    let r = s.scoring.score(&loan_officer, req).await.unwrap();
    assert_eq!(r.model.format, puhui_engines::model::ModelFormat::Onnx);
    let pd = r.decision.pd.unwrap();
    assert!((0.0..=1.0).contains(&pd), "{pd}");
}

async fn scores_only_under_live_authorization(env: &Env) {
    let s = scoring(env);
    let nbcb = bank("nbcb");
    let czb = bank("czbank");
    let admin = risk_admin(&nbcb);
    let default = name("default");
    s.registry
        .upload(&admin, &default, upload(CARD))
        .await
        .unwrap();
    s.registry.activate(&admin, &default, 1).await.unwrap();

    let f = firms(8, 2);
    for (i, firm) in f.iter().enumerate() {
        profile(env, firm, 60_000_000, "A", i == 6).await;
    }
    let pre = &[Purpose::PreLoan];
    grant(
        &s,
        env,
        &f[0],
        &nbcb,
        CREDIT_EVALUATION,
        pre,
        Duration::days(30),
    )
    .await; // live
    // f[1]: none
    grant(
        &s,
        env,
        &f[2],
        &nbcb,
        CREDIT_EVALUATION,
        pre,
        Duration::hours(2),
    )
    .await; // expires
    let revoked = grant(
        &s,
        env,
        &f[3],
        &nbcb,
        CREDIT_EVALUATION,
        pre,
        Duration::days(30),
    )
    .await;
    grant(
        &s,
        env,
        &f[4],
        &nbcb,
        "tax_summary",
        pre,
        Duration::days(30),
    )
    .await; // out of scope
    grant(
        &s,
        env,
        &f[5],
        &nbcb,
        CREDIT_EVALUATION,
        &[Purpose::Marketing],
        Duration::days(30),
    )
    .await;
    grant(
        &s,
        env,
        &f[6],
        &nbcb,
        CREDIT_EVALUATION,
        pre,
        Duration::days(30),
    )
    .await; // dishonest
    grant(
        &s,
        env,
        &f[7],
        &czb,
        CREDIT_EVALUATION,
        pre,
        Duration::days(30),
    )
    .await; // other bank
    env.clock.advance(Duration::hours(3));
    s.authorizations
        .revoke(&f[3], &nbcb, revoked)
        .await
        .unwrap();

    let who = officer(&nbcb);
    let ok = s.scoring.score(&who, request(&f[0])).await.unwrap();
    assert_eq!(ok.decision.outcome, Outcome::Approve);
    let mut refused = Vec::new();
    for firm in &f[1..] {
        match s.scoring.score(&who, request(firm)).await {
            Err(Error::Forbidden(why)) => refused.push(why),
            Ok(r) => refused.push(format!("{:?}", r.decision.outcome)),
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(refused[0].contains("not authorized"), "{refused:?}");
    assert!(refused[1].contains("expired"), "{refused:?}");
    assert!(refused[2].contains("revoked"), "{refused:?}");
    assert!(refused[3].contains("data interface"), "{refused:?}");
    assert!(refused[4].contains("purpose"), "{refused:?}");
    assert_eq!(
        refused[5], "Decline",
        "a knock-out declines an A-grade firm"
    );
    assert!(refused[6].contains("not authorized"), "{refused:?}");

    // One audit record per request, each with its outcome; none for the other bank.
    let mut records = audit_of(env, &nbcb).await;
    records.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(records.len(), 8);
    let reasons: Vec<String> = records
        .iter()
        .map(|r| match &r.outcome {
            AuditOutcome::Allowed => "allowed".to_string(),
            AuditOutcome::Refused { reason } => reason.clone(),
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "allowed",
            "none",
            "expired",
            "revoked",
            "out_of_scope",
            "purpose_not_covered",
            "allowed",
            "none"
        ]
    );
    let first = &records[0];
    assert_eq!(first.subject.as_deref(), Some("bank:nbcb/default@1"));
    assert_eq!(first.inputs_sha256.as_ref().map(String::len), Some(64));
    assert_eq!(first.result.as_ref().unwrap()["grade"], json!("A"));
    assert!(
        records[1].inputs_sha256.is_none(),
        "nothing read when refused"
    );
    assert_eq!(
        records[6].result.as_ref().unwrap()["outcome"],
        json!("decline")
    );
    assert!(audit_of(env, &czb).await.is_empty());
    // A bank user without a scoring role is refused, and that is on the bank's record too.
    let product_admin = puhui_tests::harness::product_admin(&nbcb);
    assert!(matches!(
        s.scoring.score(&product_admin, request(&f[0])).await,
        Err(Error::Forbidden(_))
    ));
    let records = audit_of(env, &nbcb).await;
    assert_eq!(records.len(), 9);
    assert!(records.iter().any(|r| r.user == product_admin.subject
        && r.outcome
            == AuditOutcome::Refused {
                reason: "forbidden".into()
            }));

    // Another bank cannot see or use nbcb's model, even naming it; the platform's it can.
    let other = officer(&czb);
    assert!(s.registry.list(&other).await.unwrap().is_empty());
    let mut named = request(&f[7]);
    named.owner = Some(ModelOwner::Bank(nbcb.clone()));
    assert!(matches!(
        s.scoring.score(&other, named).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        s.scoring.score(&other, request(&f[7])).await,
        Err(Error::NotFound(_))
    ));
    let platform = platform_admin();
    s.registry
        .upload(&platform, &default, upload(&card_with_base(540.0)))
        .await
        .unwrap();
    s.registry.activate(&platform, &default, 1).await.unwrap();
    let r = s.scoring.score(&other, request(&f[7])).await.unwrap();
    assert_eq!(
        (r.model.owner.clone(), r.decision.score),
        (ModelOwner::Platform, Some(695.0))
    );
    assert_eq!(s.registry.list(&other).await.unwrap().len(), 1);
    // nbcb still gets its own model of that name first.
    let r = s.scoring.score(&who, request(&f[0])).await.unwrap();
    assert_eq!(r.model.owner, ModelOwner::Bank(nbcb.clone()));
}

async fn batch_job_counts_each_firm_once(env: &Env) {
    let s = scoring(env);
    let nbcb = bank("nbcb");
    let admin = risk_admin(&nbcb);
    s.registry
        .upload(&admin, &name("default"), upload(CARD))
        .await
        .unwrap();
    s.registry
        .activate(&admin, &name("default"), 1)
        .await
        .unwrap();
    // 230 firms: 200 authorized (10 of them without a profile), 30 not.
    let f = firms(230, 3);
    for (i, firm) in f.iter().enumerate() {
        if i % 23 != 0 {
            profile(
                env,
                firm,
                1_000_000 * i as i64,
                if i % 2 == 0 { "A" } else { "B" },
                false,
            )
            .await;
        }
        if i < 200 {
            grant(
                &s,
                env,
                firm,
                &nbcb,
                CREDIT_EVALUATION,
                &[Purpose::PreLoan],
                Duration::days(30),
            )
            .await;
        }
    }
    let without_profile = (0..200).filter(|i| i % 23 == 0).count() as u64;
    let mut firms_requested = f.clone();
    firms_requested.push(f[0].clone()); // a repeat is scored once
    let job = s
        .batch
        .submit(
            &officer(&nbcb),
            JobRequest {
                firms: firms_requested,
                model: None,
                owner: None,
                purpose: None,
            },
        )
        .await
        .unwrap();
    assert_eq!((job.firms, job.chunks, job.model_version), (230, 3, 1));

    let bodies = drain(env.scoring_queue.as_ref()).await;
    assert_eq!(bodies.len(), 3);
    // Every chunk delivered twice; the second delivery counts nothing.
    for round in 0..2 {
        let deliveries: Vec<(String, String)> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| (format!("m{round}-{i}"), b.clone()))
            .collect();
        let response = scoring_job_batch(&s.batch, sqs_event(&deliveries))
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
    }
    let view = s.batch.view(&officer(&nbcb), &job.id).await.unwrap();
    assert_eq!(view.status, JobStatus::Completed);
    assert_eq!(view.job.chunks_done, 3);
    assert_eq!(view.job.scored, 200 - without_profile);
    assert_eq!(view.job.skipped, 30 + without_profile);
    assert_eq!(
        view.job.approved + view.job.referred + view.job.declined,
        view.job.scored
    );
    assert_eq!(view.results.len(), 3);
    // One audit record per firm, whatever the deliveries.
    let records = audit_of(env, &nbcb).await;
    assert_eq!(records.len(), 230);
    let mut parts = 0;
    for chunk in 0..3 {
        let key = format!("scoring-jobs/nbcb/{}/part-{chunk:05}.csv", job.id);
        let csv = String::from_utf8(env.blobs.get(&key).await.unwrap().unwrap()).unwrap();
        parts += csv.lines().count() - 1;
        assert!(csv.starts_with("uscc,status,reason,score"));
    }
    assert_eq!(parts, 230);
    // Another bank sees no such job.
    assert!(matches!(
        s.batch.view(&officer(&bank("czbank")), &job.id).await,
        Err(Error::NotFound(_))
    ));
    // A chunk of a job that does not exist fails its record (retried, then dead-lettered).
    let stray = serde_json::to_string(&JobChunk {
        bank_id: nbcb.clone(),
        job_id: ulid::Ulid::new().to_string(),
        chunk: 0,
    })
    .unwrap();
    let response = scoring_job_batch(
        &s.batch,
        sqs_event(&[("stray".into(), stray), ("junk".into(), "{".into())]),
    )
    .await
    .unwrap();
    assert_eq!(response.batch_item_failures.len(), 2);
}

async fn a_claim_authorizes_the_claiming_bank_only(env: &Env) {
    let s = scoring(env);
    let ports = env.ports(FinancingConfig::default());
    let banks = [bank("nbcb"), bank("czbank")];
    let applicant = setup(env, &ports, &banks, 2).await;
    let demand = applicant.submit().await;
    let offers = DispatchService::new(ports.clone())
        .dispatch(demand.id)
        .await
        .unwrap();
    assert_eq!(offers.len(), 2);
    DeskService::new(ports.clone())
        .claim(&officer(&banks[0]), demand.id)
        .await
        .unwrap();
    let held = s
        .authorizations
        .held(&demand.uscc, &banks[0])
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].evidence.text_version, demand.consent.text_version);
    assert!(
        s.authorizations
            .held(&demand.uscc, &banks[1])
            .await
            .unwrap()
            .is_empty()
    );

    let platform = platform_admin();
    s.registry
        .upload(&platform, &name("default"), upload(CARD))
        .await
        .unwrap();
    s.registry
        .activate(&platform, &name("default"), 1)
        .await
        .unwrap();
    profile(env, &demand.uscc, 60_000_000, "A", false).await;
    let r = s
        .scoring
        .score(&officer(&banks[0]), request(&demand.uscc))
        .await
        .unwrap();
    assert_eq!(r.authorization_id, held[0].id);
    assert!(matches!(
        s.scoring
            .score(&officer(&banks[1]), request(&demand.uscc))
            .await,
        Err(Error::Forbidden(_))
    ));
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_claim_authorizes_the_claiming_bank_only_on_embedded() {
    a_claim_authorizes_the_claiming_bank_only(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test]
async fn a_claim_authorizes_the_claiming_bank_only_on_aws() {
    a_claim_authorizes_the_claiming_bank_only(&Env::new(Kind::Aws).await).await;
}

#[tokio::test]
async fn registry_versions_activates_and_rolls_back_on_embedded() {
    registry_versions_activates_and_rolls_back(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test]
async fn registry_versions_activates_and_rolls_back_on_aws() {
    registry_versions_activates_and_rolls_back(&Env::new(Kind::Aws).await).await;
}

#[tokio::test]
async fn scores_only_under_live_authorization_on_embedded() {
    scores_only_under_live_authorization(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test]
async fn scores_only_under_live_authorization_on_aws() {
    scores_only_under_live_authorization(&Env::new(Kind::Aws).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_job_counts_each_firm_once_on_embedded() {
    batch_job_counts_each_firm_once(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_job_counts_each_firm_once_on_aws() {
    batch_job_counts_each_firm_once(&Env::new(Kind::Aws).await).await;
}
