//! Government data ingest (issue 6), proven on both storage adapters (embedded: SQLite and a
//! local blob directory; AWS: DynamoDB and S3 on a local AWS-API server, moto):
//!
//! 1. a generated file set (every source of the catalogue, one file in GB18030) with known
//!    defects: every defect lands in quarantine under exactly its rule, every warned defect is
//!    counted, every other row is in the firm's profile with its source and as-of date, and
//!    read = loaded + quarantined; the reports are queryable by source and date;
//! 2. the same file in UTF-8 with BOM, in GB18030 and as Parquet loads the same rows;
//! 3. empty, binary, truncated and wrong-schema files are quarantined whole with their reason;
//! 4. the same file twice changes nothing; an older file does not overwrite a newer one;
//! 5. what a row loads into catalogue indicators (and a registration's industry) reaches the
//!    firm's newest indicators, value by value only when newer, typed as the indicators declare;
//! 6. a scorecard scores a firm from ingested data alone (through the scoring service).
//!
//! The AWS side needs `PUHUI_TEST_AWS_ENDPOINT` (run through `tests/scripts/with-moto.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use chrono::{Duration, NaiveDate};
use puhui_domain::authorization::{
    Authorization, AuthorizationId, CREDIT_EVALUATION, ConsentEvidence, Purpose,
};
use puhui_domain::interfaces::Sensitivity;
use puhui_domain::sources::{FieldType, SourceCatalogue};
use puhui_domain::{Error, ModelName, ProfileCategory, Uscc};
use puhui_engines::decision::Outcome;
use puhui_engines::features::row_from_profile;
use puhui_engines::model::Model;
use puhui_ports::IdGenerator;
use puhui_samplekit::govdata::{self, GovFile};
use puhui_services::authorizations::Authorizations;
use puhui_services::ingest::{IngestOutcome, IngestReport, IngestService};
use puhui_services::profiles;
use puhui_services::scoring::{ModelRegistry, ModelUpload, ScoreRequest, ScoringService};
use puhui_tests::harness::{Env, bank, officer, risk_admin};
use serde_json::{Value, json};

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
    let logs = puhui_tests::logs::capture();
    let svc = service(env);
    let firms = govdata::firms(40, 11);
    let as_of = day("2026-10-31");
    let mut personal = Vec::new();
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
        let c2_or_c3: Vec<&str> = source
            .fields
            .iter()
            .filter(|f| matches!(f.sensitivity, Sensitivity::C2 | Sensitivity::C3))
            .map(|f| f.name.as_str())
            .collect();
        for columns in file.loads.values() {
            personal.extend(
                c2_or_c3
                    .iter()
                    .filter_map(|c| columns.get(*c))
                    .filter(|v| !v.is_empty())
                    .cloned(),
            );
        }
    }
    // Personal data loads into profiles and stays out of the logs.
    assert!(!personal.is_empty(), "the files carry personal data");
    assert!(
        logs.lines().iter().any(|l| l.contains("file ingested")),
        "the ingests were logged"
    );
    logs.assert_none_contain(&personal);
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

    // Parquet: the same rows, rules and masking; a row's line is its row number (CSV line - 1).
    let pq = deliver(
        env,
        &source.id,
        "2026-11-23",
        "lake.parquet",
        file.parquet().unwrap(),
    )
    .await;
    let c = ingested(&svc, &pq).await;
    assert_eq!(
        (
            c.rows_read,
            c.loaded,
            &c.quarantined_by_rule,
            &c.warnings_by_rule
        ),
        (
            a.rows_read,
            a.loaded,
            &a.quarantined_by_rule,
            &a.warnings_by_rule
        )
    );
    let shifted: BTreeMap<u64, Vec<String>> = quarantine(env, &a)
        .await
        .into_iter()
        .map(|(line, rules)| (line - 1, rules))
        .collect();
    assert_eq!(quarantine(env, &c).await, shifted);
    assert_eq!(c.profiles_written, 0, "the same as-of date is not newer");
}

async fn unreadable_files_are_quarantined_whole(env: &Env) {
    let svc = service(env);
    let source = SourceCatalogue::builtin()
        .get("market_regulation_registration")
        .unwrap();
    // Registration files carry Chinese text, so the truncated one is cut inside a character.
    let file = govdata::batch(source, &govdata::firms(10, 3), day("2026-11-20"), 5, 1);
    let cases = govdata::unreadable(&file);
    assert_eq!(cases.len(), 5);
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
    let item = env
        .table
        .get(&profiles::indicators_key(&firm))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item.attrs["as_of"]["tax_credit_grade"], json!("2026-09-30"));
}

/// The firm's newest indicators as stored: values, industry and each value's as-of date.
async fn latest(env: &Env, firm: &Uscc) -> (Value, Option<String>, Value) {
    let read = profiles::indicators(env.table.as_ref(), firm)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{firm} has no indicators"));
    let item = env
        .table
        .get(&profiles::indicators_key(firm))
        .await
        .unwrap()
        .unwrap();
    (
        Value::Object(read.values),
        read.industry.map(|i| i.as_str().to_owned()),
        item.attrs["as_of"].clone(),
    )
}

const TAX: &str = "uscc,as_of,tax_paid_12m,tax_paid_yoy,invoice_sales_yoy,tax_arrears";
const COURTS: &str = "uscc,as_of,court_cases_defendant_12m,enforcement_cases_active,enforcement_amount,dishonest_debtor,dishonest_listed_on,dishonest_delisted_on,party_name";

fn csv(header: &str, rows: &[String]) -> Vec<u8> {
    format!("{header}\n{}\n", rows.join("\n")).into_bytes()
}

async fn indicators_follow_ingested_files(env: &Env) {
    let svc = service(env);
    let firms = govdata::firms(3, 31);
    let (a, b) = (&firms[0], &firms[1]);
    let ua = Uscc::parse_lenient(a).unwrap();
    let ub = Uscc::parse_lenient(b).unwrap();

    // Registration: the industry attribute (no defects: the first bad row would be the 1000th).
    let registration = SourceCatalogue::builtin()
        .get("market_regulation_registration")
        .unwrap();
    let file = govdata::batch(registration, &firms[..2], day("2026-10-31"), 1000, 3);
    assert!(file.defects.is_empty());
    let key = deliver(env, &registration.id, "2026-11-01", &file.name, file.utf8()).await;
    assert_eq!(ingested(&svc, &key).await.indicators_written, 2);

    let tax = csv(
        TAX,
        &[
            format!("{a},2026-10-31,60000000,0.15,0.08,false"),
            format!("{b},2026-10-31,3000000,-0.3,,是"),
        ],
    );
    let courts = csv(
        COURTS,
        &[
            format!("{a},2026-11-15,0,0,,false,,,"),
            format!("{b},2026-11-15,4,2,1250000,true,2026-08-01,,"),
        ],
    );
    // Two departments' files of the same firms at once: both land in the one item (a lost
    // conditional write is read again and merged).
    let tax_key = deliver(env, "tax_operating", "2026-11-02", "tax.csv", tax).await;
    let courts_key = deliver(env, "courts_negative", "2026-11-16", "courts.csv", courts).await;
    let (tax_report, courts_report) =
        tokio::join!(ingested(&svc, &tax_key), ingested(&svc, &courts_key));
    for report in [tax_report, courts_report] {
        assert_eq!((report.loaded, report.indicators_written), (2, 2));
    }

    let (values, industry, as_of) = latest(env, &ua).await;
    assert_eq!(
        values,
        json!({
            "tax_paid_12m": 60_000_000, "tax_paid_yoy": 0.15, "invoice_sales_yoy": 0.08,
            "tax_arrears": false, "court_cases_defendant_12m": 0,
            "enforcement_cases_active": 0, "dishonest_debtor": false,
        })
    );
    assert!(values["tax_paid_12m"].is_i64(), "fen stay integers");
    assert_eq!(
        industry.as_deref(),
        Some(file.loads[a]["industry"].as_str())
    );
    assert_eq!(as_of["tax_paid_12m"], json!("2026-10-31"));
    assert_eq!(as_of["dishonest_debtor"], json!("2026-11-15"));
    assert_eq!(as_of["industry"], json!("2026-10-31"));
    let (values_b, _, _) = latest(env, &ub).await;
    assert_eq!(
        values_b,
        json!({
            "tax_paid_12m": 3_000_000, "tax_paid_yoy": -0.3, "tax_arrears": true,
            "court_cases_defendant_12m": 4, "enforcement_cases_active": 2,
            "enforcement_amount": 1_250_000, "dishonest_debtor": true,
        })
    );
    // A firm no file named has none.
    let untouched = Uscc::parse_lenient(&firms[2]).unwrap();
    assert!(
        profiles::indicators(env.table.as_ref(), &untouched)
            .await
            .unwrap()
            .is_none()
    );

    // An older file overwrites nothing, value by value: it only fills the value b's newer row
    // did not carry.
    let older = csv(
        TAX,
        &[
            format!("{a},2026-07-31,1000,-0.5,-0.5,true"),
            format!("{b},2026-07-31,1000,-0.5,-0.4,false"),
        ],
    );
    let key = deliver(env, "tax_operating", "2026-11-03", "older.csv", older).await;
    let report = ingested(&svc, &key).await;
    assert_eq!((report.loaded, report.indicators_written), (2, 1));
    assert_eq!(latest(env, &ua).await.0, values);
    let (after_b, _, as_of_b) = latest(env, &ub).await;
    assert_eq!(after_b["tax_paid_12m"], json!(3_000_000));
    assert_eq!(after_b["invoice_sales_yoy"], json!(-0.4));
    assert_eq!(as_of_b["invoice_sales_yoy"], json!("2026-07-31"));
    assert_eq!(as_of_b["tax_paid_12m"], json!("2026-10-31"));

    // A newer file replaces its own values and leaves the other sources' alone.
    let newer = csv(TAX, &[format!("{a},2026-11-30,70000000,0.2,0.1,false")]);
    let key = deliver(env, "tax_operating", "2026-12-01", "tax.csv", newer).await;
    assert_eq!(ingested(&svc, &key).await.indicators_written, 1);
    let (now_a, _, as_of) = latest(env, &ua).await;
    assert_eq!(now_a["tax_paid_12m"], json!(70_000_000));
    assert_eq!(now_a["tax_paid_yoy"], json!(0.2));
    assert_eq!(now_a["dishonest_debtor"], json!(false));
    assert_eq!(as_of["tax_paid_12m"], json!("2026-11-30"));
    assert_eq!(as_of["court_cases_defendant_12m"], json!("2026-11-15"));
}

async fn a_scorecard_scores_ingested_data(env: &Env) {
    const CARD: &str = include_str!("../../samplekit/fixtures/models/sme_tax_card.csv");
    const POLICY: &str = include_str!("../../samplekit/fixtures/policies/default.json");
    let svc = service(env);
    let firms = govdata::firms(3, 47);
    // clean, dishonest, and one no file names.
    let (a, b) = (&firms[0], &firms[1]);
    let files = [
        (
            "tax_operating",
            TAX.to_owned(),
            [
                format!("{a},2026-10-31,60000000,0.15,0.08,false"),
                format!("{b},2026-10-31,60000000,0.15,0.08,false"),
            ],
        ),
        (
            "tax_credit",
            "uscc,as_of,tax_credit_grade,evaluation_year,taxpayer_name".to_owned(),
            [
                format!("{a},2026-06-30,A,2025,"),
                format!("{b},2026-06-30,A,2025,"),
            ],
        ),
        (
            "social_insurance",
            "uscc,as_of,social_insured_headcount,social_insurance_arrears_months,contact_phone"
                .to_owned(),
            [
                format!("{a},2026-10-31,25,0,"),
                format!("{b},2026-10-31,25,0,"),
            ],
        ),
        (
            "courts_negative",
            COURTS.to_owned(),
            [
                format!("{a},2026-11-15,0,0,,false,,,"),
                format!("{b},2026-11-15,0,0,,true,2026-09-01,,"),
            ],
        ),
    ];
    for (source, header, rows) in files {
        let key = deliver(env, source, "2026-11-20", "f.csv", csv(&header, &rows)).await;
        let report = ingested(&svc, &key).await;
        assert_eq!(
            (report.loaded, report.indicators_written),
            (2, 2),
            "{source}"
        );
    }

    let ports = env.scoring_ports();
    let registry = Arc::new(ModelRegistry::new(ports.clone()));
    let scoring = ScoringService::new(ports, registry.clone());
    let nbcb = bank("nbcb");
    let model = ModelName::parse("default").unwrap();
    let upload = ModelUpload {
        content_base64: base64::engine::general_purpose::STANDARD.encode(CARD),
        format: None,
        policy: serde_json::from_str(POLICY).unwrap(),
        features: Default::default(),
        note: None,
    };
    let admin = risk_admin(&nbcb);
    registry.upload(&admin, &model, upload).await.unwrap();
    registry.activate(&admin, &model, 1).await.unwrap();
    let authorizations = Authorizations::new(env.table.clone(), env.clock.clone());
    let now = env.now();
    let mut decisions = Vec::new();
    let mut missing_firm = Ok(());
    for firm in &firms {
        let uscc = Uscc::parse_lenient(firm).unwrap();
        authorizations
            .grant(&Authorization {
                id: AuthorizationId(env.ids.ulid()),
                uscc: uscc.clone(),
                bank_id: nbcb.clone(),
                scope: vec![CREDIT_EVALUATION.into()],
                purposes: vec![Purpose::PreLoan],
                valid_from: now - Duration::hours(1),
                valid_until: now + Duration::days(30),
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
        let request = ScoreRequest {
            uscc,
            model: None,
            owner: None,
            purpose: None,
        };
        match scoring.score(&officer(&nbcb), request).await {
            Ok(r) => decisions.push(r.decision),
            Err(e) => missing_firm = Err(e),
        }
    }
    // Base 560 + tax paid ≥ 50 M (45) + growth ≥ 10 % (25) + 25 insured (30) + grade A (40)
    // + no court cases (15).
    let score = decisions[0].score.unwrap();
    assert!((score - 715.0).abs() < 1e-6, "{:?}", decisions[0]);
    // The engine over the indicators read back agrees; with nothing ingested every variable
    // scores its missing bin: 560 − 40 − 10 − 20 − 45 + 0.
    let card = Model::detect(CARD.as_bytes()).unwrap();
    let variables: Vec<String> = card.variables().iter().map(|v| v.to_string()).collect();
    let read = profiles::indicators(env.table.as_ref(), &Uscc::parse_lenient(a).unwrap())
        .await
        .unwrap()
        .unwrap();
    let engine_score = |values: &serde_json::Map<String, Value>| {
        let row = row_from_profile(&variables, &BTreeMap::new(), None, values);
        card.score(&row).score.unwrap()
    };
    assert!((engine_score(&read.values) - score).abs() < 1e-6);
    let missing = engine_score(&serde_json::Map::new());
    assert!((missing - 445.0).abs() < 1e-6, "{missing}");
    // No source feeds the abnormal-operation and serious-violation lists yet: the policy
    // refers for them; a knock-out in ingested data declines.
    assert_eq!(
        decisions[0].missing_indicators,
        ["abnormal_operation", "serious_violation"]
    );
    assert_eq!(decisions[0].outcome, Outcome::Refer);
    assert_eq!(decisions[1].outcome, Outcome::Decline);
    // A firm no file named has nothing to score.
    assert!(
        matches!(missing_firm, Err(Error::NotFound(_))),
        "{missing_firm:?}"
    );
}

/// A table that, on the first transaction it sees, rewrites the stored item the transaction's
/// first put replaces (same content, next version) just before the transaction runs: another
/// writer got in between the ingest's read and its write.
struct Interloper {
    inner: Arc<dyn puhui_ports::Table>,
    transactions: std::sync::atomic::AtomicUsize,
    rivals: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl puhui_ports::Table for Interloper {
    async fn get(
        &self,
        key: &puhui_ports::Key,
    ) -> puhui_ports::PortResult<Option<puhui_ports::Item>> {
        self.inner.get(key).await
    }
    async fn put(
        &self,
        item: puhui_ports::Item,
        condition: Option<puhui_ports::Condition>,
    ) -> puhui_ports::PortResult<()> {
        self.inner.put(item, condition).await
    }
    async fn update(
        &self,
        key: &puhui_ports::Key,
        update: puhui_ports::Update,
        condition: Option<puhui_ports::Condition>,
    ) -> puhui_ports::PortResult<puhui_ports::Item> {
        self.inner.update(key, update, condition).await
    }
    async fn delete(
        &self,
        key: &puhui_ports::Key,
        condition: Option<puhui_ports::Condition>,
    ) -> puhui_ports::PortResult<()> {
        self.inner.delete(key, condition).await
    }
    async fn query(&self, query: puhui_ports::Query) -> puhui_ports::PortResult<puhui_ports::Page> {
        self.inner.query(query).await
    }
    async fn transact(&self, ops: Vec<puhui_ports::TxOp>) -> puhui_ports::PortResult<()> {
        let first = self
            .transactions
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            == 0;
        if first
            && let Some(puhui_ports::TxOp::Put { item, .. }) = ops.first()
            && let Some(mut rival) = self.inner.get(&item.key).await?
        {
            let condition = puhui_ports::Condition::VersionEquals(rival.version);
            rival.version += 1;
            self.inner.put(rival, Some(condition)).await?;
            self.rivals
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.transact(ops).await
    }
}

async fn a_writer_between_read_and_write_loses_nothing(env: &Env) {
    let source = SourceCatalogue::builtin().get("tax_operating").unwrap();
    let firms = govdata::firms(30, 17);
    // Last month's file first, so every firm's items exist to be raced on.
    let older = govdata::batch(source, &firms, day("2026-09-30"), 1000, 2);
    let key = deliver(env, &source.id, "2026-10-25", &older.name, older.utf8()).await;
    ingested(&service(env), &key).await;

    let table = Arc::new(Interloper {
        inner: env.table.clone(),
        transactions: std::sync::atomic::AtomicUsize::new(0),
        rivals: std::sync::atomic::AtomicUsize::new(0),
    });
    let svc = IngestService::new(table.clone(), env.blobs.clone(), env.clock.clone());
    let file = govdata::batch(source, &firms, day("2026-10-31"), 1000, 3);
    let key = deliver(env, &source.id, "2026-11-25", &file.name, file.utf8()).await;
    let report = ingested(&svc, &key).await;
    let count = |n: &std::sync::atomic::AtomicUsize| n.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(count(&table.rivals), 1, "the rival wrote once");
    assert!(count(&table.transactions) > 1, "rows are written in chunks");
    // The first chunk's transaction failed on the rival's version; its rows were written one
    // by one, merged over the rival's item, like every other chunk's.
    check_file(env, &file, &report, day("2026-10-31")).await;
    assert_eq!(report.profiles_written, file.loads.len() as u64);
}

puhui_tests::on_both! {
    file_set_with_known_defects => file_set_with_known_defects_on_embedded, file_set_with_known_defects_on_aws;
    encodings_load_the_same => encodings_load_the_same_on_embedded, encodings_load_the_same_on_aws;
    unreadable_files_are_quarantined_whole => unreadable_files_are_quarantined_whole_on_embedded, unreadable_files_are_quarantined_whole_on_aws;
    a_writer_between_read_and_write_loses_nothing => a_writer_between_read_and_write_loses_nothing_on_embedded, a_writer_between_read_and_write_loses_nothing_on_aws;
    the_same_file_twice_changes_nothing => the_same_file_twice_changes_nothing_on_embedded, the_same_file_twice_changes_nothing_on_aws;
    indicators_follow_ingested_files => indicators_follow_ingested_files_on_embedded, indicators_follow_ingested_files_on_aws;
    a_scorecard_scores_ingested_data => a_scorecard_scores_ingested_data_on_embedded, a_scorecard_scores_ingested_data_on_aws;
}
