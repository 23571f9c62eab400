//! Data-interface queries (issue 7), proven on both storage adapters (embedded: SQLite; AWS:
//! DynamoDB on a local AWS-API server, moto):
//!
//! 1. the matrix: two banks × three firms × every catalogue interface × every authorization
//!    state (none, live, out of scope, expired, revoked) gives exactly the expected allow or
//!    deny, and each request leaves exactly one audit record saying why; a purpose the
//!    authorization does not cover, a missing role and an unknown interface are refused and
//!    audited too;
//! 2. a bank's daily quota: used up → refused (429 with the seconds to the next business day)
//!    and audited, concurrent queries never overshoot,
//!    the next business day starts afresh; other banks are unaffected;
//! 3. audit records: a bank lists only its own (another bank's are refused), platform staff all;
//!    an audit write that fails fails the query (nothing served unrecorded);
//! 4. the firm's side: a claim's authorization is listed to the applicant who consented (to no
//!    one else), the applicant revokes it, and the bank's next query is refused as revoked;
//! 5. direct authorization: the firm's legal representative (verified phone = registration's)
//!    authorizes a bank without a demand; invalid requests name each field, anyone else is
//!    refused; the bank's query is allowed within scope, then refused once revoked;
//! 6. screening over a published snapshot: exactly the firms the filters select (computed from
//!    the Parquet columns independently) — regions, grades, bands, flags, industries (a section,
//!    division or class covering the classes beneath it) and years in business (whole years to
//!    the snapshot's month end) — in USCC order, over pages without duplicates; more than 1,000
//!    → the first 1,000 and `capped`; public identity only, the industry the snapshot's; every
//!    request audited once; no snapshot, a foreign cursor, bad filters and a missing role
//!    refused.
//!
//! Every response body (views and refusals) is scanned: no raw ID number, phone, email, account
//! number or full name of a person written into the profiles ever appears.
//!
//! The AWS side needs `PUHUI_TEST_AWS_ENDPOINT` (run through `tests/scripts/with-moto.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::Duration;
use puhui_domain::authorization::Purpose;
use puhui_domain::interfaces::{Catalogue, ProfileCategory, ProfileField};
use puhui_domain::{ApplicantId, BankId, Error, Principal, Role, Uscc};
use puhui_services::audit::{AuditOutcome, AuditRecord, sha256_json};
use puhui_services::authorizations::Authorizations;
use puhui_services::data_query::{
    AuditFilter, AuthorizationStatus, DataQueryConfig, DataQueryService, DataView,
    DirectAuthorization,
};
use puhui_services::financing::{DeskService, DispatchService, FinancingConfig};
use puhui_services::profiles::category_item;
use puhui_services::risk::SnapshotStore;
use puhui_services::screening::{
    ScreeningFilters, ScreeningPage, ScreeningRequest, ScreeningService,
};
use puhui_tests::firm_profiles::{Person, field, firms, grant, person, write_profile};
use puhui_tests::harness::{
    Env, Kind, NoAudit, TempDir, audit_of, bank, officer, platform_admin, risk_admin, setup,
};
use serde_json::json;

/// Authorization states of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    None,
    Live,
    OutOfScope,
    Expired,
    Revoked,
}

const STATES: [State; 5] = [
    State::None,
    State::Live,
    State::OutOfScope,
    State::Expired,
    State::Revoked,
];

fn interfaces() -> Vec<String> {
    Catalogue::builtin()
        .interfaces
        .iter()
        .map(|i| i.id.clone())
        .collect()
}

fn service(env: &Env, config: DataQueryConfig) -> DataQueryService {
    DataQueryService::new(
        env.table.clone(),
        env.clock.clone(),
        env.ids.clone(),
        config,
    )
}

/// Every response body of a test, for the final scan (with the process's log lines, captured
/// from the moment the first one is made), and how many log lines there were then.
struct Responses(Vec<String>, usize);

impl Default for Responses {
    fn default() -> Self {
        Responses(Vec::new(), puhui_tests::logs::capture().lines().len())
    }
}

impl Responses {
    /// Asks, records the body the caller would get (the view, or the refusal's text) and
    /// returns the outcome.
    async fn ask(
        &mut self,
        s: &DataQueryService,
        who: &Principal,
        firm: &Uscc,
        interface: &str,
        purpose: Purpose,
    ) -> Result<DataView, Error> {
        let r = s.query(who, firm, interface, purpose).await;
        self.0.push(match &r {
            Ok(view) => serde_json::to_string(view).unwrap(),
            Err(e) => e.to_string(),
        });
        r
    }

    /// No raw value of `people` in any body or any log line.
    fn assert_clean(&self, people: &[Person]) {
        assert!(!self.0.is_empty());
        let raw: Vec<String> = people.iter().flat_map(Person::raw).collect();
        for body in &self.0 {
            for r in &raw {
                assert!(!body.contains(r.as_str()), "raw {r} leaked in {body}");
            }
        }
        let logs = puhui_tests::logs::capture();
        assert!(logs.lines().len() > self.1, "the scenario logged");
        logs.assert_none_contain(&raw);
    }
}

/// The reason of each of the bank's audit records, in record order.
async fn reasons_of(env: &Env, bank: &BankId) -> Vec<String> {
    audit_of(env, bank)
        .await
        .iter()
        .map(|r| reason(r).to_string())
        .collect()
}

fn reason(r: &AuditRecord) -> &str {
    match &r.outcome {
        AuditOutcome::Allowed => "allowed",
        AuditOutcome::Refused { reason } => reason,
    }
}

/// What the matrix expects: `None` allowed, else the refusal's audit code.
fn expected(state: State, bank_index: usize, interface_index: usize) -> Option<&'static str> {
    match state {
        State::None => Some("no_authorization"),
        State::Live => None,
        State::OutOfScope if interface_index % 2 == bank_index => None,
        State::OutOfScope => Some("out_of_scope"),
        State::Expired => Some("expired"),
        State::Revoked => Some("revoked"),
    }
}

// ---------------------------------------------------------------------------------------------

async fn matrix(env: &Env) {
    let s = service(env, DataQueryConfig::default());
    let banks = [bank("nbcb"), bank("czbank")];
    let ifaces = interfaces();
    assert!(ifaces.len() >= 6);
    let all_firms = firms(3 * STATES.len(), 11);
    let people: Vec<Person> = (0..all_firms.len() as u64 * 4).map(person).collect();
    for (n, firm) in all_firms.iter().enumerate() {
        write_profile(env, firm, &people[n * 4], &people[n * 4 + 1..n * 4 + 4]).await;
    }
    let authorizations = Authorizations::new(env.table.clone(), env.clock.clone());
    for (g, state) in STATES.iter().enumerate() {
        for firm in &all_firms[g * 3..g * 3 + 3] {
            for (b, bank) in banks.iter().enumerate() {
                let all = ifaces.clone();
                let year = Duration::days(365);
                match state {
                    State::None => {}
                    State::Live => {
                        grant(env, firm, bank, all, -Duration::hours(1), year).await;
                    }
                    State::OutOfScope => {
                        let some = all
                            .into_iter()
                            .enumerate()
                            .filter(|(i, _)| i % 2 == b)
                            .map(|(_, id)| id)
                            .collect();
                        grant(env, firm, bank, some, -Duration::hours(1), year).await;
                    }
                    State::Expired => {
                        grant(env, firm, bank, all, -year, -Duration::hours(1)).await;
                    }
                    State::Revoked => {
                        let id = grant(env, firm, bank, all, -Duration::hours(1), year).await;
                        authorizations.revoke(firm, bank, id).await.unwrap();
                    }
                }
            }
        }
    }

    let mut responses = Responses::default();
    let mut want: HashMap<BankId, Vec<(Uscc, String, String)>> = HashMap::new();
    let mut allowed = 0;
    for (g, state) in STATES.iter().enumerate() {
        for firm in &all_firms[g * 3..g * 3 + 3] {
            for (b, bank) in banks.iter().enumerate() {
                for (i, iface) in ifaces.iter().enumerate() {
                    let who = if i % 2 == 0 {
                        officer(bank)
                    } else {
                        risk_admin(bank)
                    };
                    let r = responses.ask(&s, &who, firm, iface, Purpose::PreLoan).await;
                    let expect = expected(*state, b, i);
                    match (&r, expect) {
                        (Ok(view), None) => {
                            allowed += 1;
                            assert_eq!(&view.view.interface, iface);
                            assert_eq!(&view.uscc, firm);
                            let def = Catalogue::builtin().get(iface).unwrap();
                            assert_eq!(view.view.fields.len(), def.fields.len());
                            assert!(view.view.oldest_as_of.is_some());
                        }
                        (Err(Error::Forbidden(detail)), Some(_)) => {
                            assert!(!detail.is_empty());
                        }
                        other => panic!("{state:?} {bank} {iface}: got {other:?}"),
                    }
                    want.entry(bank.clone()).or_default().push((
                        firm.clone(),
                        format!("{iface}@1"),
                        expect.unwrap_or("allowed").into(),
                    ));
                }
            }
        }
    }
    // 3 live firms × 7 + 3 half-scope firms × 3 or 4, per bank.
    assert_eq!(allowed, 2 * 3 * ifaces.len() + 3 * ifaces.len());

    // Refusals besides the authorization state, each audited.
    let live_firm = &all_firms[3];
    let nbcb = &banks[0];
    let r = responses
        .ask(
            &s,
            &officer(nbcb),
            live_firm,
            "tax_summary",
            Purpose::Marketing,
        )
        .await;
    assert!(matches!(r, Err(Error::Forbidden(m)) if m.contains("purpose")));
    let product_admin = Principal {
        subject: "nbcb-admin".into(),
        bank_id: Some(nbcb.clone()),
        roles: vec![Role::ProductAdmin],
    };
    let r = responses
        .ask(
            &s,
            &product_admin,
            live_firm,
            "tax_summary",
            Purpose::PreLoan,
        )
        .await;
    assert!(matches!(r, Err(Error::Forbidden(m)) if m.contains("role")));
    let r = responses
        .ask(
            &s,
            &officer(nbcb),
            live_firm,
            "no_such_view",
            Purpose::PreLoan,
        )
        .await;
    assert!(matches!(r, Err(Error::NotFound(_))));
    let w = want.get_mut(nbcb).unwrap();
    w.push((
        live_firm.clone(),
        "tax_summary@1".into(),
        "purpose_not_covered".into(),
    ));
    w.push((
        live_firm.clone(),
        "tax_summary".into(),
        "forbidden_role".into(),
    ));
    w.push((
        live_firm.clone(),
        "no_such_view".into(),
        "unknown_interface".into(),
    ));
    // Platform staff have no tenant to query for (nor to audit under).
    assert!(matches!(
        s.query(
            &platform_admin(),
            live_firm,
            "tax_summary",
            Purpose::PreLoan
        )
        .await,
        Err(Error::Forbidden(_))
    ));

    // Exactly one audit record per request, in request order, saying why.
    for b in &banks {
        let mut records = audit_of(env, b).await;
        records.sort_by(|x, y| x.id.cmp(&y.id));
        let got: Vec<(Uscc, String, String)> = records
            .iter()
            .map(|r| {
                (
                    r.uscc.clone().unwrap(),
                    r.subject.clone().unwrap(),
                    reason(r).to_string(),
                )
            })
            .collect();
        assert_eq!(&got, &want[b], "audit of {b}");
        for r in &records {
            assert_eq!(r.action, "data_query");
            assert_eq!(&r.bank_id, b);
            let served = r.outcome == AuditOutcome::Allowed;
            assert_eq!(r.response_sha256.is_some(), served);
            assert_eq!(r.authorization_id.is_some(), served);
        }
    }

    // A view of a live firm, field by field.
    let view = s
        .query(
            &officer(nbcb),
            live_firm,
            "basic_registration",
            Purpose::InLoan,
        )
        .await
        .unwrap();
    let by: BTreeMap<&str, &puhui_engines::masking::MaskedField> = view
        .view
        .fields
        .iter()
        .map(|f| (f.field.as_str(), f))
        .collect();
    let rep = &people[3 * 4];
    assert_eq!(
        by["legal_rep_id_number"].value,
        Some(json!(format!(
            "{}****************{}",
            &rep.id_number[..1],
            &rep.id_number[17..]
        )))
    );
    assert_eq!(
        by["legal_rep_phone"].value,
        Some(json!(format!("{}****{}", &rep.phone[..3], &rep.phone[7..])))
    );
    assert_eq!(
        by["legal_rep_address"].value,
        Some(json!("浙江省宁波市海曙区****"))
    );
    assert_eq!(by["firm_name"].value, Some(json!("宁波甬江机械有限公司")));
    assert_eq!(
        by["legal_rep_name"].source.as_deref(),
        Some("market_regulation")
    );
    let social = s
        .query(
            &officer(nbcb),
            live_firm,
            "social_insurance_summary",
            Purpose::PreLoan,
        )
        .await
        .unwrap();
    let roster = social
        .view
        .fields
        .iter()
        .find(|f| f.field == "insured_roster")
        .unwrap();
    assert_eq!(roster.value, None);
    assert_eq!(
        serde_json::to_value(roster.status).unwrap(),
        json!("withheld")
    );
    responses.0.push(serde_json::to_string(&view).unwrap());
    responses.0.push(serde_json::to_string(&social).unwrap());

    // Audit listings: a bank sees its own, never another's; platform staff see all.
    let cz = &banks[1];
    let own = s.audit(&officer(cz), AuditFilter::default()).await.unwrap();
    assert!(!own.items.is_empty());
    assert!(own.items.iter().all(|r| &r.bank_id == cz));
    assert!(
        own.items.windows(2).all(|w| w[0].id > w[1].id),
        "newest first"
    );
    let other = AuditFilter {
        bank: Some(nbcb.clone()),
        ..AuditFilter::default()
    };
    assert!(matches!(
        s.audit(&officer(cz), other.clone()).await,
        Err(Error::Forbidden(_))
    ));
    let everyone = AuditFilter {
        limit: Some(100),
        ..AuditFilter::default()
    };
    let all = s.audit(&platform_admin(), everyone).await.unwrap();
    let mut seen_banks: Vec<&BankId> = all.items.iter().map(|r| &r.bank_id).collect();
    seen_banks.sort();
    seen_banks.dedup();
    assert_eq!(seen_banks.len(), 2);
    let one = s.audit(&platform_admin(), other).await.unwrap();
    assert!(one.items.iter().all(|r| &r.bank_id == nbcb));
    for listing in [&own, &all, &one] {
        responses.0.push(serde_json::to_string(listing).unwrap());
    }

    responses.assert_clean(&people);
}

// ---------------------------------------------------------------------------------------------

async fn quota_is_per_bank_and_business_day(env: &Env) {
    let small = bank("hzbank");
    let busy = bank("wzbank");
    let config = DataQueryConfig {
        daily_quota: 10_000,
        bank_quotas: HashMap::from([(small.clone(), 3), (busy.clone(), 3)]),
    };
    let s = Arc::new(service(env, config));
    let firm = firms(1, 5).remove(0);
    let rep = person(1);
    write_profile(env, &firm, &rep, &[]).await;
    let year = Duration::days(365);
    for b in [&small, &busy, &bank("nbcb")] {
        grant(env, &firm, b, interfaces(), -Duration::hours(1), year).await;
    }
    let mut responses = Responses::default();
    for _ in 0..3 {
        responses
            .ask(&s, &officer(&small), &firm, "tax_summary", Purpose::PreLoan)
            .await
            .unwrap();
    }
    let r = responses
        .ask(&s, &officer(&small), &firm, "tax_summary", Purpose::PreLoan)
        .await;
    // 429 at the edge: the quota is named, and it refills at the next Shanghai midnight.
    let until_midnight = puhui_domain::time::secs_to_next_business_day(env.now());
    assert!(matches!(
        r,
        Err(Error::QuotaExhausted { quota: "data-query-daily", detail, retry_after_secs })
            if detail.contains("quota of 3") && retry_after_secs == until_midnight
    ));
    // Other banks keep their own quota.
    responses
        .ask(
            &s,
            &officer(&bank("nbcb")),
            &firm,
            "tax_summary",
            Purpose::PreLoan,
        )
        .await
        .unwrap();
    let reasons = reasons_of(env, &small).await;
    assert_eq!(
        reasons,
        ["allowed", "allowed", "allowed", "quota_exhausted"]
    );

    // Concurrent queries never overshoot the quota.
    let outcomes = futures::future::join_all((0..8).map(|_| {
        let s = s.clone();
        let firm = firm.clone();
        let who = officer(&busy);
        async move {
            s.query(&who, &firm, "utilities_trend", Purpose::PreLoan)
                .await
        }
    }))
    .await;
    let refusals: Vec<String> = outcomes
        .iter()
        .filter_map(|r| r.as_ref().err().map(ToString::to_string))
        .collect();
    assert_eq!(outcomes.len() - refusals.len(), 3, "{refusals:?}");
    assert_eq!(audit_of(env, &busy).await.len(), 8);

    // The next business day (midnight in Shanghai) starts afresh.
    env.clock.advance(Duration::days(1));
    responses
        .ask(&s, &officer(&small), &firm, "tax_summary", Purpose::PreLoan)
        .await
        .unwrap();
    responses.assert_clean(&[rep]);
}

// ---------------------------------------------------------------------------------------------

async fn an_unwritable_audit_fails_the_query(env: &Env) {
    let firm = firms(1, 9).remove(0);
    write_profile(env, &firm, &person(2), &[]).await;
    let nbcb = bank("nbcb");
    grant(
        env,
        &firm,
        &nbcb,
        interfaces(),
        -Duration::hours(1),
        Duration::days(30),
    )
    .await;
    let broken = DataQueryService::new(
        Arc::new(NoAudit(env.table.clone())),
        env.clock.clone(),
        env.ids.clone(),
        DataQueryConfig::default(),
    );
    // Allowed or refused, nothing is answered without its record.
    for who in [officer(&nbcb), officer(&bank("czbank"))] {
        assert!(matches!(
            broken
                .query(&who, &firm, "basic_registration", Purpose::PreLoan)
                .await,
            Err(Error::Unavailable(_))
        ));
    }
    assert!(audit_of(env, &nbcb).await.is_empty());
    // Nothing served, nothing counted: the count and the record commit together.
    let day = puhui_domain::time::business_date(puhui_ports::Clock::now(env.clock.as_ref()));
    let counter = puhui_ports::Key::new("QUOTA#nbcb", format!("DAY#{day}"));
    assert_eq!(env.table.get(&counter).await.unwrap(), None);
    // The same query through a working table is served (and recorded).
    service(env, DataQueryConfig::default())
        .query(
            &officer(&nbcb),
            &firm,
            "basic_registration",
            Purpose::PreLoan,
        )
        .await
        .unwrap();
    assert_eq!(audit_of(env, &nbcb).await.len(), 1);
    let used = env.table.get(&counter).await.unwrap().unwrap().attrs["used"].clone();
    assert_eq!(used, json!(1));
}

// ---------------------------------------------------------------------------------------------

async fn the_firm_lists_and_revokes_its_authorizations(env: &Env) {
    let s = service(env, DataQueryConfig::default());
    let ports = env.ports(FinancingConfig::default());
    let banks = [bank("nbcb"), bank("czbank")];
    let applicant = setup(env, &ports, &banks, 2).await;
    let demand = applicant.submit().await;
    DispatchService::new(ports.clone())
        .dispatch(demand.id)
        .await
        .unwrap();
    DeskService::new(ports.clone())
        .claim(&officer(&banks[0]), demand.id)
        .await
        .unwrap();
    let rep = person(3);
    write_profile(env, &demand.uscc, &rep, &[person(4)]).await;
    let mut responses = Responses::default();

    let mine = s.applicant_authorizations(&applicant.id).await.unwrap();
    assert_eq!(mine.len(), 1);
    let a = &mine[0];
    assert_eq!(a.status, AuthorizationStatus::Live);
    assert_eq!(a.authorization.bank_id, banks[0]);
    assert_eq!(a.authorization.evidence.consented_by, applicant.id.0);
    responses.0.push(serde_json::to_string(&mine).unwrap());
    let stranger = ApplicantId("someone-else".into());
    assert!(
        s.applicant_authorizations(&stranger)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        s.revoke_for_applicant(&stranger, a.authorization.id).await,
        Err(Error::NotFound(_))
    ));

    // The claim's authorization covers every interface for the claiming bank only.
    for iface in interfaces() {
        responses
            .ask(
                &s,
                &officer(&banks[0]),
                &demand.uscc,
                &iface,
                Purpose::PreLoan,
            )
            .await
            .unwrap();
    }
    assert!(matches!(
        responses
            .ask(
                &s,
                &officer(&banks[1]),
                &demand.uscc,
                "basic_registration",
                Purpose::PreLoan
            )
            .await,
        Err(Error::Forbidden(_))
    ));

    // Revoked by the firm: refused from that instant, and a repeat keeps the first instant.
    let revoked = s
        .revoke_for_applicant(&applicant.id, a.authorization.id)
        .await
        .unwrap();
    assert_eq!(revoked.status, AuthorizationStatus::Revoked);
    env.clock.advance(Duration::minutes(5));
    let again = s
        .revoke_for_applicant(&applicant.id, a.authorization.id)
        .await
        .unwrap();
    assert_eq!(
        again.authorization.revoked_at,
        revoked.authorization.revoked_at
    );
    let r = responses
        .ask(
            &s,
            &officer(&banks[0]),
            &demand.uscc,
            "tax_summary",
            Purpose::PreLoan,
        )
        .await;
    assert!(matches!(r, Err(Error::Forbidden(m)) if m.contains("revoked")));
    let last = audit_of(env, &banks[0])
        .await
        .into_iter()
        .max_by(|x, y| x.id.cmp(&y.id))
        .unwrap();
    assert_eq!(reason(&last), "revoked");
    responses.assert_clean(&[rep, person(4)]);
}

// ---------------------------------------------------------------------------------------------

/// What a screening can filter on, of one firm of the snapshot, read from the Arrow columns
/// directly (not through the evaluator under test).
#[derive(Debug, Clone)]
struct Screened {
    uscc: String,
    grade: Option<String>,
    headcount: Option<i64>,
    dishonest: Option<bool>,
    industry: Option<String>,
    established: Option<chrono::NaiveDate>,
}

impl Screened {
    /// Whole years in business on `at`, counted by hand.
    fn years_at(&self, at: chrono::NaiveDate) -> Option<i64> {
        use chrono::Datelike;
        self.established.map(|e| {
            let mut y = i64::from(at.year() - e.year());
            if (at.month(), at.day()) < (e.month(), e.day()) {
                y -= 1;
            }
            y
        })
    }
}

fn screened_rows(dir: &std::path::Path) -> Vec<Screened> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Date32Type, Int64Type};
    let mut out = Vec::new();
    for b in puhui_snapshot::Snapshot::open(dir)
        .unwrap()
        .read_all()
        .unwrap()
    {
        let uscc = b.column_by_name("uscc").unwrap().as_string::<i32>();
        let grade = b
            .column_by_name("tax_credit_grade")
            .unwrap()
            .as_string::<i32>();
        let head = b
            .column_by_name("social_insured_headcount")
            .unwrap()
            .as_primitive::<Int64Type>();
        let dishonest = b.column_by_name("dishonest_debtor").unwrap().as_boolean();
        let industry = b.column_by_name("industry").unwrap().as_string::<i32>();
        let established = b
            .column_by_name("established_on")
            .unwrap()
            .as_primitive::<Date32Type>();
        for i in 0..b.num_rows() {
            out.push(Screened {
                uscc: uscc.value(i).to_owned(),
                grade: grade.is_valid(i).then(|| grade.value(i).to_owned()),
                headcount: head.is_valid(i).then(|| head.value(i)),
                dishonest: dishonest.is_valid(i).then(|| dishonest.value(i)),
                industry: industry.is_valid(i).then(|| industry.value(i).to_owned()),
                established: established
                    .is_valid(i)
                    .then(|| established.value_as_date(i).unwrap()),
            });
        }
    }
    out
}

/// Which firms a screening should select, decided by hand from the snapshot's columns.
type Selects = Box<dyn Fn(&Screened) -> bool>;

/// Every page of a screening, following the cursors; checks each page's size and returns the
/// pages.
async fn all_screening_pages(
    s: &ScreeningService,
    who: &Principal,
    filters: &ScreeningFilters,
    limit: u32,
) -> Vec<ScreeningPage> {
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .screen(
                who,
                ScreeningRequest {
                    filters: filters.clone(),
                    limit: Some(limit),
                    cursor: cursor.clone(),
                },
            )
            .await
            .unwrap();
        assert!(page.items.len() <= limit as usize);
        cursor = page.next_cursor.clone();
        let last = cursor.is_none();
        if !last {
            assert_eq!(
                page.items.len(),
                limit as usize,
                "only the last page is short"
            );
        }
        pages.push(page);
        if last {
            return pages;
        }
    }
}

async fn screening(env: &Env) {
    let mut responses = Responses::default();
    let s = ScreeningService::new(
        env.table.clone(),
        env.blobs.clone(),
        env.clock.clone(),
        env.ids.clone(),
    );
    let nbcb = bank("nbcb");
    let who = officer(&nbcb);
    let filters: ScreeningFilters = serde_json::from_value(json!({
        "regions": ["330203", "330212"],
        "tax_credit_grades": ["A", "B"],
        "headcount": {"min": 5, "max": 200},
        "clear_of": ["dishonest_debtor"]
    }))
    .unwrap();
    let ask = |filters: &ScreeningFilters| ScreeningRequest {
        filters: filters.clone(),
        ..ScreeningRequest::default()
    };

    // Before the first snapshot: a clear refusal, audited.
    assert!(matches!(
        s.screen(&who, ask(&filters)).await,
        Err(Error::Conflict(m)) if m.contains("snapshot")
    ));

    let dir = TempDir::new("screening");
    puhui_samplekit::snapshot::write(&dir.0, 1_500, 17, 3, "2026-10").unwrap();
    SnapshotStore::new(env.blobs.clone())
        .publish(&dir.0)
        .await
        .unwrap();
    let rows = screened_rows(&dir.0);
    assert_eq!(rows.len(), 1_500);
    let mut expected: Vec<String> = rows
        .iter()
        .filter(|r| {
            (r.uscc[2..8] == *"330203" || r.uscc[2..8] == *"330212")
                && r.grade.as_deref().is_some_and(|g| g == "A" || g == "B")
                && r.headcount.is_some_and(|h| (5..=200).contains(&h))
                && r.dishonest == Some(false)
        })
        .map(|r| r.uscc.clone())
        .collect();
    expected.sort();
    assert!(
        (20..1_000).contains(&expected.len()),
        "the seed gives a useful set: {}",
        expected.len()
    );

    // Registrations (with the legal representative's personal data) for the matched firms.
    let rep = person(40);
    for u in &expected {
        let firm = Uscc::parse_lenient(u).unwrap();
        let fields: BTreeMap<String, ProfileField> = [
            ("firm_name", json!(format!("宁波{}有限公司", &u[10..16]))),
            // Not what the snapshot says: the answer shows the snapshot's industry.
            ("industry", json!("T9700")),
            ("registered_capital", json!(500_000_000)),
            ("legal_rep_name", json!(rep.name)),
            ("legal_rep_id_number", json!(rep.id_number)),
            ("legal_rep_phone", json!(rep.phone)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), field(v, "market_regulation", "2026-11-01")))
        .collect();
        env.table
            .put(
                category_item(&firm, ProfileCategory::Basic, &fields).unwrap(),
                None,
            )
            .await
            .unwrap();
    }

    // Exactly the expected firms, in USCC order, over pages without duplicates.
    let pages = all_screening_pages(&s, &who, &filters, 7).await;
    let got: Vec<String> = pages
        .iter()
        .flat_map(|p| p.items.iter().map(|f| f.uscc.to_string()))
        .collect();
    assert_eq!(got, expected);
    for p in &pages {
        assert_eq!(p.total, expected.len() as u64);
        assert!(!p.capped);
        assert_eq!(p.period, "2026-10");
    }
    // Public identity only: these four keys (industry when the snapshot knows it), and no
    // personal data of the registration.
    let by_code: HashMap<&str, &Screened> = rows.iter().map(|r| (r.uscc.as_str(), r)).collect();
    for p in &pages {
        let body = serde_json::to_value(p).unwrap();
        for item in body["items"].as_array().unwrap() {
            let keys: Vec<&str> = item
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let row = by_code[item["uscc"].as_str().unwrap()];
            match &row.industry {
                Some(code) => {
                    assert_eq!(keys, ["industry", "name", "region", "uscc"], "{item}");
                    assert_eq!(item["industry"], json!(code));
                }
                None => assert_eq!(keys, ["name", "region", "uscc"], "{item}"),
            }
            assert_eq!(item["region"], json!(&item["uscc"].as_str().unwrap()[2..8]));
        }
        responses.0.push(body.to_string());
    }

    // More than the cap: the first 1,000 by USCC, said to be capped.
    let broad: ScreeningFilters = serde_json::from_value(json!({"regions": ["330000"]})).unwrap();
    let mut everyone: Vec<String> = rows.iter().map(|r| r.uscc.clone()).collect();
    everyone.sort();
    let pages = all_screening_pages(&s, &who, &broad, 50).await;
    assert_eq!(pages.len(), 20);
    let got: Vec<String> = pages
        .iter()
        .flat_map(|p| p.items.iter().map(|f| f.uscc.to_string()))
        .collect();
    assert_eq!(got, everyone[..1_000]);
    assert!(pages.iter().all(|p| p.capped && p.total == 1_000));

    // Refusals: a cursor of other filters, an unknown filter value, a page too big, the role.
    let first = s.screen(&who, ask(&filters)).await.unwrap();
    let foreign = ScreeningRequest {
        filters: broad.clone(),
        limit: None,
        cursor: first.next_cursor.clone(),
    };
    assert!(matches!(
        s.screen(&who, foreign).await,
        Err(Error::Validation(e)) if e[0].field == "cursor"
    ));
    let bad = ScreeningRequest {
        filters: serde_json::from_value(json!({
            "tax_credit_grades": ["AAA"],
            "industries": ["C", "C1", "manufacturing"],
            "years_in_business": {"min": 5, "max": 1}
        }))
        .unwrap(),
        limit: Some(51),
        cursor: None,
    };
    let Err(Error::Validation(e)) = s.screen(&who, bad).await else {
        panic!("expected field errors");
    };
    let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "limit",
            "filters.tax_credit_grades[0]",
            "filters.industries[1]",
            "filters.industries[2]",
            "filters.years_in_business.min"
        ]
    );
    assert!(matches!(
        s.screen(&risk_admin(&nbcb), ask(&filters)).await,
        Err(Error::Forbidden(m)) if m.contains("loan_officer")
    ));
    assert!(matches!(
        s.screen(&platform_admin(), ask(&filters)).await,
        Err(Error::Forbidden(_))
    ));

    // One audit record per request (platform staff have no tenant to record under), with
    // the filters' hash; served ones with the counts and the response's hash.
    let records: Vec<AuditRecord> = audit_of(env, &nbcb)
        .await
        .into_iter()
        .filter(|r| r.action == "screening")
        .collect();
    let served = (expected.len()).div_ceil(7) + 20 + 1;
    assert_eq!(records.len(), 1 + served + 3);
    let reasons: Vec<&str> = records.iter().map(reason).collect();
    assert_eq!(reasons[0], "no_snapshot");
    assert!(reasons[1..=served].iter().all(|r| *r == "allowed"));
    assert_eq!(
        &reasons[served + 1..],
        ["invalid_request", "invalid_request", "forbidden_role"]
    );
    let first_record = records.iter().find(|r| r.id == first.audit_id).unwrap();
    assert_eq!(
        first_record.response_sha256.as_deref(),
        Some(sha256_json(&first).as_str())
    );
    assert_eq!(
        first_record.inputs_sha256.as_deref(),
        Some(sha256_json(&filters).as_str())
    );
    assert_eq!(first_record.purpose, Some(Purpose::Marketing));
    assert_eq!(first_record.subject.as_deref(), Some("snapshot@2026-10"));
    assert_eq!(
        first_record.result.as_ref().unwrap()["total"],
        json!(expected.len())
    );
    assert!(records.iter().all(|r| r.uscc.is_none()));

    // Industries and years in business, alone and with the other filters: exactly the firms
    // the columns say, counted by hand (years to 2026-10-31, the snapshot's last day).
    let month_end = chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
    let screen_all = async |f: serde_json::Value, limit: u32| {
        let f: ScreeningFilters = serde_json::from_value(f).unwrap();
        let pages = all_screening_pages(&s, &who, &f, limit).await;
        let items: Vec<(String, Option<String>)> = pages
            .iter()
            .flat_map(|p| {
                p.items
                    .iter()
                    .map(|f| (f.uscc.to_string(), f.industry.clone()))
            })
            .collect();
        assert!(
            pages
                .iter()
                .all(|p| p.total == items.len() as u64 && !p.capped)
        );
        items
    };
    let select = |keep: &dyn Fn(&Screened) -> bool| {
        let mut v: Vec<(String, Option<String>)> = rows
            .iter()
            .filter(|r| keep(r))
            .map(|r| (r.uscc.clone(), r.industry.clone()))
            .collect();
        v.sort();
        v
    };
    let in_industry = |r: &Screened, codes: &[&str]| {
        r.industry
            .as_deref()
            .is_some_and(|i| codes.iter().any(|c| i.starts_with(c)))
    };
    let cases: Vec<(serde_json::Value, Selects)> = vec![
        (
            json!({"industries": ["C3311"]}),
            Box::new(|r: &Screened| r.industry.as_deref() == Some("C3311")),
        ),
        (
            json!({"industries": ["C33", "F"], "regions": ["330203"]}),
            Box::new(move |r: &Screened| {
                in_industry(r, &["C33", "F"]) && r.uscc[2..8] == *"330203"
            }),
        ),
        (
            json!({"years_in_business": {"min": 20}}),
            Box::new(move |r: &Screened| r.years_at(month_end).is_some_and(|y| y >= 20)),
        ),
        (
            json!({"years_in_business": {"max": 2}, "industries": ["I", "M"]}),
            Box::new(move |r: &Screened| {
                r.years_at(month_end).is_some_and(|y| y <= 2) && in_industry(r, &["I", "M"])
            }),
        ),
        (
            json!({"industries": ["C"], "years_in_business": {"min": 3, "max": 10},
                   "tax_credit_grades": ["A"], "clear_of": ["dishonest_debtor"]}),
            Box::new(move |r: &Screened| {
                in_industry(r, &["C"])
                    && r.years_at(month_end).is_some_and(|y| (3..=10).contains(&y))
                    && r.grade.as_deref() == Some("A")
                    && r.dishonest == Some(false)
            }),
        ),
    ];
    for (f, keep) in &cases {
        let want = select(keep.as_ref());
        assert!(
            (3..1_000).contains(&want.len()),
            "the seed gives a useful set for {f}: {}",
            want.len()
        );
        assert_eq!(screen_all(f.clone(), 50).await, want, "{f}");
    }
    // A section covers its classes: C is the union of its divisions present.
    let c_all = screen_all(json!({"industries": ["C"], "regions": ["330203"]}), 50).await;
    let mut c_parts = screen_all(
        json!({"industries": ["C13", "C17", "C18", "C24", "C29", "C33", "C34", "C38", "C39", "C40"], "regions": ["330203"]}),
        50,
    )
    .await;
    c_parts.sort();
    assert_eq!(c_all, c_parts);
    responses.assert_clean(std::slice::from_ref(&rep));

    // A newer snapshot is screened from then on (nothing remembered from the older one), and
    // a cursor of the older one is refused.
    let newer = TempDir::new("screening");
    puhui_samplekit::snapshot::write(&newer.0, 200, 31, 1, "2026-11").unwrap();
    SnapshotStore::new(env.blobs.clone())
        .publish(&newer.0)
        .await
        .unwrap();
    let page = s.screen(&who, ask(&broad)).await.unwrap();
    assert_eq!(
        (page.period.as_str(), page.total, page.capped),
        ("2026-11", 200, false)
    );
    let stale = ScreeningRequest {
        filters: filters.clone(),
        limit: None,
        cursor: first.next_cursor.clone(),
    };
    assert!(matches!(
        s.screen(&who, stale).await,
        Err(Error::Validation(e)) if e[0].field == "cursor"
    ));

    // A snapshot sorted by USCC across its shards, as the builder writes it: a screening that
    // has more than 1,000 firms after the second shard reads no further (the third is gone
    // from the store, and the answer is still the first 1,000 by USCC).
    let sorted = TempDir::new("screening");
    let unsorted = TempDir::new("screening");
    puhui_samplekit::snapshot::write(&unsorted.0, 3_000, 41, 2, "2026-12").unwrap();
    let read = puhui_snapshot::Snapshot::open(&unsorted.0)
        .unwrap()
        .read_all()
        .unwrap();
    let built = puhui_snapshot::build::build(&read, &[], &[]).unwrap();
    // 3,000 rows make one shard of one batch.
    assert_eq!((built.shards.len(), built.shards[0].len()), (1, 1));
    let whole = built.shards[0][0].clone();
    let mut w = puhui_snapshot::Writer::create(&sorted.0, "2026-12").unwrap();
    for start in [0, 1_000, 2_000] {
        w.write_shard(&[whole.slice(start, 1_000)]).unwrap();
    }
    let m = w.finish().unwrap();
    assert!(m.sorted_by_uscc);
    let store = SnapshotStore::new(env.blobs.clone());
    store.publish(&sorted.0).await.unwrap();
    let period = puhui_domain::risk::Period::parse("2026-12").unwrap();
    env.blobs
        .delete(&SnapshotStore::key(period, &m.shards[2].path))
        .await
        .unwrap();
    let pages = all_screening_pages(&s, &who, &broad, 50).await;
    let got: Vec<String> = pages
        .iter()
        .flat_map(|p| p.items.iter().map(|f| f.uscc.to_string()))
        .collect();
    let codes = whole
        .column(0)
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .unwrap();
    let first_thousand: Vec<String> = (0..1_000).map(|i| codes.value(i).to_owned()).collect();
    assert_eq!(got, first_thousand);
    assert!(
        pages
            .iter()
            .all(|p| p.capped && p.total == 1_000 && p.period == "2026-12")
    );
    // A narrow screening needs every shard: the missing one is an error, not a short answer.
    let narrow: ScreeningFilters =
        serde_json::from_value(json!({"regions": ["330203"], "tax_credit_grades": ["A"]})).unwrap();
    assert!(matches!(
        s.screen(&who, ask(&narrow)).await,
        Err(Error::Internal(m)) if m.contains("absent")
    ));
}

// ---------------------------------------------------------------------------------------------

async fn the_legal_representative_authorizes_a_bank_directly(env: &Env) {
    let s = service(env, DataQueryConfig::default());
    let ports = env.ports(FinancingConfig::default());
    // The applicant logs in with the verified phone 13812345678 and has no demand.
    let applicant = puhui_tests::harness::applicant(&ports).await;
    let firm = firms(1, 23).remove(0);
    let other_firm = firms(2, 29).remove(1);
    let mut rep = person(5);
    rep.phone = "13812345678".into();
    write_profile(env, &firm, &rep, &[]).await;
    write_profile(env, &other_firm, &person(6), &[]).await;
    let nbcb = bank("nbcb");
    let request = |uscc: &Uscc, until: Duration| DirectAuthorization {
        uscc: uscc.to_string(),
        bank: nbcb.to_string(),
        interfaces: vec!["tax_summary".into(), "credit_evaluation".into()],
        purposes: vec![Purpose::PreLoan, Purpose::InLoan],
        valid_until: env.now() + until,
        consent_text_version: "direct-v1".into(),
    };
    let mut responses = Responses::default();

    // Before: refused.
    assert!(matches!(
        responses
            .ask(&s, &officer(&nbcb), &firm, "tax_summary", Purpose::PreLoan)
            .await,
        Err(Error::Forbidden(m)) if m.contains("not authorized")
    ));
    // Invalid requests: every field named.
    let bad = DirectAuthorization {
        uscc: "91350100M000100Y44".into(),
        bank: "No Bank".into(),
        interfaces: vec!["tax_summary".into(), "gossip".into(), "tax_summary".into()],
        purposes: vec![],
        valid_until: env.now() + Duration::days(400),
        consent_text_version: " ".into(),
    };
    let Err(Error::Validation(e)) = s.grant_for_applicant(&applicant, bad).await else {
        panic!("expected field errors");
    };
    let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "uscc",
            "bank",
            "interfaces[1]",
            "interfaces[2]",
            "purposes",
            "valid_until",
            "consent_text_version"
        ]
    );
    assert!(matches!(
        s.grant_for_applicant(&applicant, request(&firm, -Duration::minutes(1)))
            .await,
        Err(Error::Validation(e)) if e[0].field == "valid_until"
    ));
    // Not the legal representative of this firm (another phone), nor someone unverified.
    assert!(matches!(
        s.grant_for_applicant(&applicant, request(&other_firm, Duration::days(30)))
            .await,
        Err(Error::Forbidden(m)) if m.contains("legal representative")
    ));
    assert!(matches!(
        s.grant_for_applicant(&ApplicantId("stranger".into()), request(&firm, Duration::days(30)))
            .await,
        Err(Error::Forbidden(m)) if m.contains("verify your phone")
    ));
    assert!(
        s.applicant_authorizations(&applicant)
            .await
            .unwrap()
            .is_empty()
    );

    // Granted: evidence from the applicant and the clock; the bank's query is allowed under it,
    // within its scope and purposes only.
    let granted = s
        .grant_for_applicant(&applicant, request(&firm, Duration::days(30)))
        .await
        .unwrap();
    assert_eq!(granted.status, AuthorizationStatus::Live);
    let a = &granted.authorization;
    assert_eq!((&a.uscc, &a.bank_id), (&firm, &nbcb));
    assert_eq!(a.evidence.consented_by, applicant.0);
    assert_eq!(a.evidence.method, "legal_rep_direct");
    assert_eq!(a.evidence.text_version, "direct-v1");
    assert_eq!((a.evidence.at, a.valid_from), (env.now(), env.now()));
    let view = responses
        .ask(&s, &officer(&nbcb), &firm, "tax_summary", Purpose::PreLoan)
        .await
        .unwrap();
    assert_eq!(view.authorization_id, a.id);
    assert!(matches!(
        responses
            .ask(&s, &officer(&nbcb), &firm, "basic_registration", Purpose::PreLoan)
            .await,
        Err(Error::Forbidden(m)) if m.contains("does not cover this data interface")
    ));
    assert!(matches!(
        responses
            .ask(
                &s,
                &officer(&bank("czbank")),
                &firm,
                "tax_summary",
                Purpose::PreLoan
            )
            .await,
        Err(Error::Forbidden(_))
    ));

    // Listed to the applicant (and no one else), revoked, refused from then on.
    let mine = s.applicant_authorizations(&applicant).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].authorization, *a);
    assert!(
        s.applicant_authorizations(&ApplicantId("stranger".into()))
            .await
            .unwrap()
            .is_empty()
    );
    env.clock.advance(Duration::minutes(1));
    let revoked = s.revoke_for_applicant(&applicant, a.id).await.unwrap();
    assert_eq!(revoked.status, AuthorizationStatus::Revoked);
    assert!(matches!(
        responses
            .ask(&s, &officer(&nbcb), &firm, "tax_summary", Purpose::PreLoan)
            .await,
        Err(Error::Forbidden(m)) if m.contains("revoked")
    ));
    let reasons = reasons_of(env, &nbcb).await;
    assert_eq!(
        reasons,
        ["no_authorization", "allowed", "out_of_scope", "revoked"]
    );
    responses.assert_clean(&[rep, person(6)]);
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn screening_on_embedded() {
    screening(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test]
async fn screening_on_aws() {
    screening(&Env::new(Kind::Aws).await).await;
}

#[tokio::test]
async fn the_legal_representative_authorizes_a_bank_directly_on_embedded() {
    the_legal_representative_authorizes_a_bank_directly(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test]
async fn the_legal_representative_authorizes_a_bank_directly_on_aws() {
    the_legal_representative_authorizes_a_bank_directly(&Env::new(Kind::Aws).await).await;
}

#[tokio::test]
async fn matrix_on_embedded() {
    matrix(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test]
async fn matrix_on_aws() {
    matrix(&Env::new(Kind::Aws).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quota_is_per_bank_and_business_day_on_embedded() {
    quota_is_per_bank_and_business_day(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quota_is_per_bank_and_business_day_on_aws() {
    quota_is_per_bank_and_business_day(&Env::new(Kind::Aws).await).await;
}

#[tokio::test]
async fn an_unwritable_audit_fails_the_query_on_embedded() {
    an_unwritable_audit_fails_the_query(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test]
async fn an_unwritable_audit_fails_the_query_on_aws() {
    an_unwritable_audit_fails_the_query(&Env::new(Kind::Aws).await).await;
}

#[tokio::test]
async fn the_firm_lists_and_revokes_its_authorizations_on_embedded() {
    the_firm_lists_and_revokes_its_authorizations(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test]
async fn the_firm_lists_and_revokes_its_authorizations_on_aws() {
    the_firm_lists_and_revokes_its_authorizations(&Env::new(Kind::Aws).await).await;
}
