//! Bulk data exports (issue 7), proven on both storage adapters (embedded: SQLite, local blobs;
//! AWS: DynamoDB, SQS and S3 on a local AWS-API server, moto):
//!
//! 1. a portfolio of live, out-of-scope, expired, revoked, not-yet-valid and profile-less firms
//!    (plus one that authorized only another bank, so is no part of it): exactly the live
//!    firm × interface pairs are exported, every other pair is listed skipped with its reason,
//!    each chunk delivered twice is counted once, and each pair leaves one audit record;
//! 2. the CSV cells are the single-firm API's masked values, field by field; a Parquet export
//!    of a firm list reads back with the same columns; neither file nor any view holds a raw ID
//!    number, phone, email, account or person's full name written into the profiles;
//! 3. another bank, platform staff and roles without data access cannot read the job or its
//!    links; bad requests are refused with the field named, and audited;
//! 4. an audit store that cannot be written fails the submission and the chunk: no job, no
//!    message, no part counted without its records;
//! 5. an export's firm × interface pairs count against the bank's daily quota, the one single
//!    queries use: one that does not fit is refused (429, audited, nothing queued), and the
//!    queries after it see what the export used.
//!
//! The AWS side needs `PUHUI_TEST_AWS_ENDPOINT` (run through `tests/scripts/with-moto.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow_array::{Array, StringArray};
use chrono::Duration;
use puhui_api::events::export_job_batch;
use puhui_domain::authorization::Purpose;
use puhui_domain::interfaces::Catalogue;
use puhui_domain::{Error, Uscc};
use puhui_services::audit::{AuditOutcome, AuditRecord};
use puhui_services::authorizations::Authorizations;
use puhui_services::data_export::{
    ACTION_FIRM, ACTION_SUBMIT, ACTION_VIEW, DataExportService, ExportChunk, ExportFormat,
    ExportJobView, ExportRequest, columns, part_blob, skipped_blob,
};
use puhui_services::data_query::{DataQueryConfig, DataQueryService};
use puhui_services::scoring::JobStatus;
use puhui_tests::firm_profiles::{Person, firms, grant, person, write_profile};
use puhui_tests::harness::{
    Env, Kind, NoAudit, audit_of, bank, drain, officer, platform_admin, product_admin, risk_admin,
    sqs_event,
};
use serde_json::Value;

const BASIC: &str = "basic_registration";
const TAX: &str = "tax_summary";

fn service(env: &Env) -> DataExportService {
    DataExportService::new(
        env.export_ports_on(env.table.clone()),
        DataQueryConfig::default(),
    )
}

fn every_interface() -> Vec<String> {
    Catalogue::builtin()
        .interfaces
        .iter()
        .map(|i| i.id.clone())
        .collect()
}

fn request(interfaces: &[&str], purpose: Purpose, format: ExportFormat) -> ExportRequest {
    ExportRequest {
        interfaces: interfaces.iter().map(|i| (*i).to_owned()).collect(),
        purpose,
        format,
        firms: None,
    }
}

/// Takes every queued chunk and hands each to the consumer `copies` times at once in one batch
/// (as SQS may deliver a message twice, to instances racing each other), then once more later
/// (a redelivery after the work is done); none may fail. Returns how many chunks were queued.
async fn run_chunks(env: &Env, s: &DataExportService, copies: usize) -> usize {
    let bodies = drain(env.export_queue.as_ref()).await;
    let at_once: Vec<(String, String)> = bodies
        .iter()
        .enumerate()
        .flat_map(|(i, b)| (0..copies).map(move |c| (format!("m{i}-{c}"), b.clone())))
        .collect();
    let later: Vec<(String, String)> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| (format!("m{i}-later"), b.clone()))
        .collect();
    for deliveries in [at_once, later] {
        let response = export_job_batch(s, sqs_event(&deliveries)).await.unwrap();
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    bodies.len()
}

/// A stored object of the export, which must exist.
async fn blob(env: &Env, key: &str) -> Vec<u8> {
    env.blobs.get(key).await.unwrap().expect(key)
}

fn reason(r: &AuditRecord) -> &str {
    match &r.outcome {
        AuditOutcome::Allowed => "allowed",
        AuditOutcome::Refused { reason } => reason,
    }
}

fn with_action<'a>(records: &'a [AuditRecord], action: &str) -> Vec<&'a AuditRecord> {
    records.iter().filter(|r| r.action == action).collect()
}

/// A CSV part: its header and its rows as column → cell.
fn read_csv(bytes: &[u8]) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let mut reader = csv::Reader::from_reader(bytes);
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_owned))
                .collect()
        })
        .collect();
    (header, rows)
}

/// A Parquet part: its columns and its rows as column → cell (every column a string).
fn read_parquet(bytes: Vec<u8>) -> (Vec<String>, Vec<HashMap<String, Option<String>>>) {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(bytes),
    )
    .unwrap()
    .build()
    .unwrap();
    let mut header = Vec::new();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let schema = batch.schema();
        header = schema.fields().iter().map(|f| f.name().clone()).collect();
        for i in 0..batch.num_rows() {
            let row = header
                .iter()
                .enumerate()
                .map(|(c, name)| {
                    let col = batch
                        .column(c)
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .expect("every export column is a string");
                    let cell = (!col.is_null(i)).then(|| col.value(i).to_owned());
                    (name.clone(), cell)
                })
                .collect();
            rows.push(row);
        }
    }
    (header, rows)
}

/// No raw value of `people` anywhere in `text`, nor in any log line of the process.
fn assert_clean(text: &str, people: &[Person]) {
    assert!(!text.is_empty());
    let raw: Vec<String> = people.iter().flat_map(Person::raw).collect();
    for r in &raw {
        assert!(!text.contains(r.as_str()), "raw {r} leaked in an export");
    }
    puhui_tests::logs::capture().assert_none_contain(&raw);
}

fn skipped_of(view: &ExportJobView) -> BTreeSet<(String, String, String)> {
    view.skipped
        .iter()
        .map(|s| (s.uscc.to_string(), s.interface.clone(), s.reason.clone()))
        .collect()
}

fn triple(firm: &Uscc, interface: &str, reason: &str) -> (String, String, String) {
    (firm.to_string(), interface.to_owned(), reason.to_owned())
}

// ---------------------------------------------------------------------------------------------

async fn exports_the_live_pairs_of_the_portfolio(env: &Env) {
    puhui_tests::logs::capture();
    let (nbcb, czbank) = (bank("nbcb"), bank("czbank"));
    let f = firms(8, 21);
    let people: Vec<Person> = (0..32).map(person).collect();
    for (n, firm) in f.iter().enumerate() {
        if n != 5 {
            write_profile(env, firm, &people[n * 4], &people[n * 4 + 1..n * 4 + 4]).await;
        }
    }
    let all = every_interface();
    let (hour, month) = (Duration::hours(1), Duration::days(30));
    grant(env, &f[0], &nbcb, all.clone(), -hour, month).await;
    grant(env, &f[1], &nbcb, vec![BASIC.into()], -hour, month).await;
    grant(env, &f[2], &nbcb, all.clone(), -month, -hour).await;
    let revoked = grant(env, &f[3], &nbcb, all.clone(), -hour, month).await;
    Authorizations::new(env.table.clone(), env.clock.clone())
        .revoke(&f[3], &nbcb, revoked)
        .await
        .unwrap();
    grant(env, &f[4], &nbcb, all.clone(), Duration::days(1), month).await;
    grant(env, &f[5], &nbcb, all.clone(), -hour, month).await;
    grant(env, &f[6], &czbank, all.clone(), -hour, month).await;
    grant(env, &f[7], &nbcb, all.clone(), -hour, month).await;

    let s = service(env);
    let job = s
        .submit(
            &officer(&nbcb),
            request(&[BASIC, TAX, BASIC], Purpose::PreLoan, ExportFormat::Csv),
        )
        .await
        .unwrap();
    assert_eq!(job.interfaces, ["basic_registration@1", "tax_summary@1"]);
    // The portfolio: every firm that authorized nbcb, whatever the state; not czbank's firm.
    assert!(job.portfolio);
    assert_eq!((job.firms, job.chunks), (7, 1));
    let running = s.view(&officer(&nbcb), &job.id).await.unwrap();
    assert_eq!(running.status, JobStatus::Running);
    assert!(running.results.is_empty() && running.skipped_lists.is_empty());

    // Each chunk delivered twice at once and again later: counted once.
    assert_eq!(run_chunks(env, &s, 2).await, 1);
    let view = s.view(&risk_admin(&nbcb), &job.id).await.unwrap();
    assert_eq!(view.status, JobStatus::Completed);
    assert_eq!(view.job.chunks_done, 1);
    assert_eq!((view.job.pairs_included, view.job.pairs_skipped), (5, 9));
    assert_eq!((view.job.firms_included, view.job.firms_skipped), (3, 4));
    assert_eq!((view.results.len(), view.skipped_lists.len()), (1, 1));
    assert!(view.results[0].contains(&job.id));
    // Links live 15 minutes: the local store signs the instant, S3 the duration.
    let expiry = format!(
        "expires={}",
        (env.now() + Duration::minutes(15)).timestamp()
    );
    for link in view.results.iter().chain(&view.skipped_lists) {
        assert!(
            link.contains(&expiry) || link.contains("X-Amz-Expires=900"),
            "{link}"
        );
    }
    assert!(!view.skipped_truncated);
    let expected_skips: BTreeSet<_> = [
        triple(&f[1], TAX, "out_of_scope"),
        triple(&f[2], BASIC, "expired"),
        triple(&f[2], TAX, "expired"),
        triple(&f[3], BASIC, "revoked"),
        triple(&f[3], TAX, "revoked"),
        triple(&f[4], BASIC, "not_yet_valid"),
        triple(&f[4], TAX, "not_yet_valid"),
        triple(&f[5], BASIC, "no_profile"),
        triple(&f[5], TAX, "no_profile"),
    ]
    .into_iter()
    .collect();
    assert_eq!(skipped_of(&view), expected_skips);

    // One audit record per firm × interface and one for the submission, whatever the
    // deliveries; each refused one says why.
    let records = audit_of(env, &nbcb).await;
    let per_pair = with_action(&records, ACTION_FIRM);
    assert_eq!(per_pair.len(), 14);
    let refused: BTreeSet<_> = per_pair
        .iter()
        .filter(|r| r.outcome != AuditOutcome::Allowed)
        .map(|r| {
            let iface = r.subject.as_deref().unwrap().split('@').next().unwrap();
            triple(r.uscc.as_ref().unwrap(), iface, reason(r))
        })
        .collect();
    assert_eq!(refused, expected_skips);
    assert!(
        per_pair
            .iter()
            .filter(|r| r.outcome == AuditOutcome::Allowed)
            .all(|r| r.authorization_id.is_some() && r.response_sha256.is_some())
    );
    let submitted = with_action(&records, ACTION_SUBMIT);
    assert_eq!(submitted.len(), 1);
    assert_eq!(
        (submitted[0].id.as_str(), reason(submitted[0])),
        (job.id.as_str(), "allowed")
    );
    assert_eq!(with_action(&records, ACTION_VIEW).len(), 2);

    // The part: the included firms only, each cell as the single-firm API masks it.
    let part = blob(env, &part_blob(&nbcb, &job.id, 0, ExportFormat::Csv)).await;
    let (header, rows) = read_csv(&part);
    let iface = |id: &str| Catalogue::builtin().get(id).unwrap();
    assert_eq!(header, columns(&[iface(BASIC), iface(TAX)]));
    let exported: BTreeSet<String> = rows.iter().map(|r| r["uscc"].clone()).collect();
    let included: BTreeSet<String> = [&f[0], &f[1], &f[7]]
        .iter()
        .map(|u| u.to_string())
        .collect();
    assert_eq!(exported, included);
    let row_of = |firm: &Uscc| rows.iter().find(|r| r["uscc"] == firm.to_string()).unwrap();
    let partial = row_of(&f[1]);
    assert_eq!(partial["basic_registration:status"], "included");
    assert_eq!(
        (
            partial["tax_summary:status"].as_str(),
            partial["tax_summary:reason"].as_str(),
            partial["tax_summary.revenue_12m"].as_str()
        ),
        ("skipped", "out_of_scope", "")
    );
    let full = row_of(&f[0]);
    assert_eq!(full["basic_registration.firm_name"], "宁波甬江机械有限公司");
    assert!(full["basic_registration.legal_rep_name"].contains('*'));
    let api = DataQueryService::new(
        env.table.clone(),
        env.clock.clone(),
        env.ids.clone(),
        DataQueryConfig::default(),
    );
    let mut bodies = vec![String::from_utf8(part.clone()).unwrap()];
    for id in [BASIC, TAX] {
        let single = api
            .query(&officer(&nbcb), &f[0], id, Purpose::PreLoan)
            .await
            .unwrap();
        assert_eq!(
            full[&format!("{id}:authorization_id")],
            single.authorization_id.to_string()
        );
        for field in &single.view.fields {
            let value = match &field.value {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            };
            let name = format!("{id}.{}", field.field);
            assert_eq!(full[&name], value, "{name}");
            let source = field.source.clone().unwrap_or_default();
            assert_eq!(full[&format!("{name}.source")], source, "{name}.source");
            let as_of = field.as_of.map(|d| d.to_string()).unwrap_or_default();
            assert_eq!(full[&format!("{name}.as_of")], as_of, "{name}.as_of");
        }
    }
    let skipped_list = blob(env, &skipped_blob(&nbcb, &job.id, 0)).await;
    let (_, listed) = read_csv(&skipped_list);
    let listed: BTreeSet<_> = listed
        .iter()
        .map(|r| {
            triple(
                &Uscc::parse(&r["uscc"]).unwrap(),
                &r["interface"],
                &r["reason"],
            )
        })
        .collect();
    assert_eq!(listed, expected_skips);
    bodies.push(serde_json::to_string(&view).unwrap());
    assert_clean(&bodies.join("\n"), &people);

    // Another bank, platform staff and a role without data access reach nothing.
    for who in [officer(&czbank), risk_admin(&czbank)] {
        assert!(matches!(
            s.view(&who, &job.id).await,
            Err(Error::NotFound(_))
        ));
    }
    for who in [product_admin(&nbcb), platform_admin()] {
        assert!(matches!(
            s.view(&who, &job.id).await,
            Err(Error::Forbidden(_))
        ));
    }
    let theirs = audit_of(env, &czbank).await;
    assert_eq!(theirs.len(), 2);
    assert!(
        theirs
            .iter()
            .all(|r| r.action == ACTION_VIEW && reason(r) == "not_found")
    );
    let records = audit_of(env, &nbcb).await;
    let views = with_action(&records, ACTION_VIEW);
    assert_eq!(
        views
            .iter()
            .filter(|r| reason(r) == "forbidden_role")
            .count(),
        1
    );

    // A chunk of a job that does not exist, and junk, fail their records (then dead-letter).
    let stray = serde_json::to_string(&ExportChunk {
        bank_id: nbcb.clone(),
        job_id: ulid::Ulid::new().to_string(),
        chunk: 0,
    })
    .unwrap();
    let beyond = serde_json::to_string(&ExportChunk {
        bank_id: nbcb.clone(),
        job_id: job.id.clone(),
        chunk: 1,
    })
    .unwrap();
    let response = export_job_batch(
        &s,
        sqs_event(&[
            ("stray".into(), stray),
            ("beyond".into(), beyond),
            ("junk".into(), "{".into()),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(response.batch_item_failures.len(), 3);
}

async fn parquet_of_a_firm_list(env: &Env) {
    puhui_tests::logs::capture();
    let (nbcb, czbank) = (bank("nbcb"), bank("czbank"));
    let f = firms(4, 22);
    let people: Vec<Person> = (100..116).map(person).collect();
    for (n, firm) in f.iter().enumerate() {
        write_profile(env, firm, &people[n * 4], &people[n * 4 + 1..n * 4 + 4]).await;
    }
    let (hour, month) = (Duration::hours(1), Duration::days(30));
    grant(env, &f[0], &nbcb, every_interface(), -hour, month).await;
    grant(env, &f[1], &czbank, every_interface(), -hour, month).await;
    grant(env, &f[2], &nbcb, vec![BASIC.into()], -hour, month).await;
    let s = service(env);
    let mut req = request(&[BASIC], Purpose::InLoan, ExportFormat::Parquet);
    req.firms = Some(vec![f[0].clone(), f[1].clone(), f[2].clone(), f[0].clone()]);
    let job = s.submit(&officer(&nbcb), req).await.unwrap();
    assert!(!job.portfolio);
    assert_eq!(
        (job.firms, job.chunks, job.format),
        (3, 1, ExportFormat::Parquet)
    );
    assert_eq!(run_chunks(env, &s, 1).await, 1);
    let view = s.view(&officer(&nbcb), &job.id).await.unwrap();
    assert_eq!(view.status, JobStatus::Completed);
    assert_eq!((view.job.pairs_included, view.job.pairs_skipped), (2, 1));
    assert_eq!(
        skipped_of(&view),
        [triple(&f[1], BASIC, "no_authorization")]
            .into_iter()
            .collect()
    );
    assert!(view.results[0].contains(".parquet"));
    let part = blob(env, &part_blob(&nbcb, &job.id, 0, ExportFormat::Parquet)).await;
    let (header, rows) = read_parquet(part);
    assert_eq!(header, columns(&[Catalogue::builtin().get(BASIC).unwrap()]));
    let exported: BTreeSet<String> = rows.iter().map(|r| r["uscc"].clone().unwrap()).collect();
    assert_eq!(
        exported,
        [f[0].to_string(), f[2].to_string()].into_iter().collect()
    );
    let first = rows
        .iter()
        .find(|r| r["uscc"].as_deref() == Some(f[0].to_string().as_str()))
        .unwrap();
    assert_eq!(
        first["basic_registration.firm_name"].as_deref(),
        Some("宁波甬江机械有限公司")
    );
    let id_number = first["basic_registration.legal_rep_id_number"]
        .clone()
        .unwrap();
    assert!(id_number.contains('*'), "{id_number}");
    assert_eq!(first["basic_registration:reason"], None);
    let cells: Vec<String> = rows
        .iter()
        .flat_map(|r| r.values().flatten().cloned())
        .collect();
    assert_clean(&cells.join("\n"), &people);

    // A purpose no authorization covers: every pair skipped, the part a header alone.
    let mut req = request(&[BASIC], Purpose::Marketing, ExportFormat::Csv);
    req.firms = Some(vec![f[0].clone()]);
    let job = s.submit(&officer(&nbcb), req).await.unwrap();
    run_chunks(env, &s, 1).await;
    let view = s.view(&officer(&nbcb), &job.id).await.unwrap();
    assert_eq!((view.job.firms_included, view.job.firms_skipped), (0, 1));
    assert_eq!(
        skipped_of(&view),
        [triple(&f[0], BASIC, "purpose_not_covered")]
            .into_iter()
            .collect()
    );
    let part = blob(env, &part_blob(&nbcb, &job.id, 0, ExportFormat::Csv)).await;
    assert_eq!(read_csv(&part).1.len(), 0);
}

async fn bad_requests_are_refused_and_audited(env: &Env) {
    let (nbcb, czbank) = (bank("nbcb"), bank("czbank"));
    let f = firms(1, 24);
    grant(
        env,
        &f[0],
        &nbcb,
        every_interface(),
        -Duration::hours(1),
        Duration::days(30),
    )
    .await;
    let s = service(env);
    let field_of = |r: Result<_, Error>| match r {
        Err(Error::Validation(errors)) => errors
            .iter()
            .map(|e| format!("{}:{}", e.field, e.code))
            .collect::<Vec<_>>(),
        other => panic!("expected a validation error, got {other:?}"),
    };
    let officer_nbcb = officer(&nbcb);
    let csv = ExportFormat::Csv;
    assert_eq!(
        field_of(
            s.submit(&officer_nbcb, request(&[], Purpose::PreLoan, csv))
                .await
        ),
        ["interfaces:empty"]
    );
    assert_eq!(
        field_of(
            s.submit(
                &officer_nbcb,
                request(&[BASIC, "no_such", "x"], Purpose::PreLoan, csv)
            )
            .await
        ),
        [
            "interfaces[1]:unknown_interface",
            "interfaces[2]:unknown_interface"
        ]
    );
    let mut none = request(&[BASIC], Purpose::PreLoan, csv);
    none.firms = Some(Vec::new());
    assert_eq!(
        field_of(s.submit(&officer_nbcb, none).await),
        ["firms:out_of_range"]
    );
    let mut many = request(&[BASIC], Purpose::PreLoan, csv);
    many.firms = Some(vec![f[0].clone(); 10_001]);
    assert_eq!(
        field_of(s.submit(&officer_nbcb, many).await),
        ["firms:out_of_range"]
    );
    // czbank holds no authorization: its portfolio is empty.
    assert_eq!(
        field_of(
            s.submit(&officer(&czbank), request(&[BASIC], Purpose::PreLoan, csv))
                .await
        ),
        ["firms:empty"]
    );
    assert!(matches!(
        s.submit(
            &product_admin(&nbcb),
            request(&[BASIC], Purpose::PreLoan, csv)
        )
        .await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        s.submit(&platform_admin(), request(&[BASIC], Purpose::PreLoan, csv))
            .await,
        Err(Error::Forbidden(_))
    ));
    assert!(drain(env.export_queue.as_ref()).await.is_empty());
    let reasons = |records: Vec<AuditRecord>| {
        let mut r: Vec<String> = records
            .iter()
            .filter(|r| r.action == ACTION_SUBMIT)
            .map(|r| reason(r).to_owned())
            .collect();
        r.sort();
        r
    };
    assert_eq!(
        reasons(audit_of(env, &nbcb).await),
        [
            "forbidden_role",
            "invalid_request",
            "invalid_request",
            "invalid_request",
            "invalid_request"
        ]
    );
    assert_eq!(reasons(audit_of(env, &czbank).await), ["invalid_request"]);
}

async fn an_unwritable_audit_fails_the_export(env: &Env) {
    let nbcb = bank("nbcb");
    let f = firms(2, 23);
    let people: Vec<Person> = (200..208).map(person).collect();
    for (n, firm) in f.iter().enumerate() {
        write_profile(env, firm, &people[n * 4], &people[n * 4 + 1..n * 4 + 4]).await;
        grant(
            env,
            firm,
            &nbcb,
            every_interface(),
            -Duration::hours(1),
            Duration::days(30),
        )
        .await;
    }
    let broken = DataExportService::new(
        env.export_ports_on(Arc::new(NoAudit(env.table.clone()))),
        DataQueryConfig::default(),
    );
    let req = request(&[BASIC], Purpose::PreLoan, ExportFormat::Csv);
    // Not even the refusal can be recorded: nothing is accepted, nothing is queued.
    assert!(matches!(
        broken.submit(&officer(&nbcb), req.clone()).await,
        Err(Error::Unavailable(_))
    ));
    assert!(audit_of(env, &nbcb).await.is_empty());
    assert!(drain(env.export_queue.as_ref()).await.is_empty());

    // A chunk whose records cannot be written fails and counts nothing; its redelivery does.
    let working = service(env);
    let job = working.submit(&officer(&nbcb), req).await.unwrap();
    let bodies = drain(env.export_queue.as_ref()).await;
    assert_eq!(bodies.len(), 1);
    let response = export_job_batch(&broken, sqs_event(&[("m0".into(), bodies[0].clone())]))
        .await
        .unwrap();
    assert_eq!(response.batch_item_failures.len(), 1);
    assert!(matches!(
        broken.view(&officer(&nbcb), &job.id).await,
        Err(Error::Unavailable(_))
    ));
    assert_eq!(
        with_action(&audit_of(env, &nbcb).await, ACTION_VIEW).len(),
        0
    );
    let view = working.view(&officer(&nbcb), &job.id).await.unwrap();
    assert_eq!(view.job.chunks_done, 0);
    let response = export_job_batch(&working, sqs_event(&[("m1".into(), bodies[0].clone())]))
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    let view = working.view(&officer(&nbcb), &job.id).await.unwrap();
    assert_eq!((view.job.chunks_done, view.job.pairs_included), (1, 2));
    let records = audit_of(env, &nbcb).await;
    assert_eq!(with_action(&records, ACTION_FIRM).len(), 2);
    assert_eq!(with_action(&records, ACTION_SUBMIT).len(), 1);
}

async fn exports_count_against_the_daily_quota(env: &Env) {
    let (nbcb, czbank) = (bank("nbcb"), bank("czbank"));
    let f = firms(2, 31);
    let people: Vec<Person> = (300..308).map(person).collect();
    for (n, firm) in f.iter().enumerate() {
        write_profile(env, firm, &people[n * 4], &people[n * 4 + 1..n * 4 + 4]).await;
        for b in [&nbcb, &czbank] {
            grant(
                env,
                firm,
                b,
                every_interface(),
                -Duration::hours(1),
                Duration::days(30),
            )
            .await;
        }
    }
    let quotas = DataQueryConfig {
        daily_quota: 100,
        bank_quotas: HashMap::from([(nbcb.clone(), 5)]),
    };
    let exports = DataExportService::new(env.export_ports_on(env.table.clone()), quotas.clone());
    let queries = DataQueryService::new(
        env.table.clone(),
        env.clock.clone(),
        env.ids.clone(),
        quotas,
    );
    let listed = |interfaces: &[&str]| ExportRequest {
        firms: Some(f.clone()),
        ..request(interfaces, Purpose::PreLoan, ExportFormat::Csv)
    };
    // 2 firms × 2 interfaces: 4 of nbcb's 5.
    exports
        .submit(&officer(&nbcb), listed(&[BASIC, TAX]))
        .await
        .unwrap();
    assert_eq!(drain(env.export_queue.as_ref()).await.len(), 1);
    // 2 more do not fit: refused before anything is read or queued, and recorded.
    let refused = exports.submit(&officer(&nbcb), listed(&[BASIC])).await;
    assert!(
        matches!(&refused, Err(Error::QuotaExhausted { detail, retry_after_secs, .. })
            if detail.contains("2 firm × interface reads") && detail.contains("quota of 5")
                && *retry_after_secs > 0),
        "{refused:?}"
    );
    assert!(drain(env.export_queue.as_ref()).await.is_empty());
    let submits = audit_of(env, &nbcb).await;
    let outcomes: Vec<&str> = with_action(&submits, ACTION_SUBMIT)
        .into_iter()
        .map(reason)
        .collect();
    assert_eq!(outcomes, ["allowed", "quota_exhausted"]);
    // The refused export's input is not left behind; the accepted one's is.
    let input = |r: &AuditRecord| format!("exports/nbcb/{}/input.json", r.id);
    let submitted = with_action(&submits, ACTION_SUBMIT);
    assert!(env.blobs.get(&input(submitted[0])).await.unwrap().is_some());
    assert!(env.blobs.get(&input(submitted[1])).await.unwrap().is_none());
    // Single queries share the quota: one left, then none.
    let clerk = officer(&nbcb);
    let ask = || queries.query(&clerk, &f[0], BASIC, Purpose::PreLoan);
    ask().await.unwrap();
    assert!(matches!(ask().await, Err(Error::QuotaExhausted { .. })));
    // Another bank's quota is its own.
    exports
        .submit(&officer(&czbank), listed(&[BASIC, TAX]))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exports_the_live_pairs_of_the_portfolio_on_embedded() {
    exports_the_live_pairs_of_the_portfolio(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exports_the_live_pairs_of_the_portfolio_on_aws() {
    exports_the_live_pairs_of_the_portfolio(&Env::new(Kind::Aws).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parquet_of_a_firm_list_on_embedded() {
    parquet_of_a_firm_list(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parquet_of_a_firm_list_on_aws() {
    parquet_of_a_firm_list(&Env::new(Kind::Aws).await).await;
}

#[tokio::test]
async fn bad_requests_are_refused_and_audited_on_embedded() {
    bad_requests_are_refused_and_audited(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test]
async fn bad_requests_are_refused_and_audited_on_aws() {
    bad_requests_are_refused_and_audited(&Env::new(Kind::Aws).await).await;
}

#[tokio::test]
async fn an_unwritable_audit_fails_the_export_on_embedded() {
    an_unwritable_audit_fails_the_export(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test]
async fn an_unwritable_audit_fails_the_export_on_aws() {
    an_unwritable_audit_fails_the_export(&Env::new(Kind::Aws).await).await;
}

puhui_tests::on_both! {
    exports_count_against_the_daily_quota => exports_count_against_the_daily_quota_on_embedded, exports_count_against_the_daily_quota_on_aws;
}
