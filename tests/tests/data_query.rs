//! Data-interface queries (issue 7), proven on both storage adapters (embedded: SQLite; AWS:
//! DynamoDB on a local AWS-API server, moto):
//!
//! 1. the matrix: two banks × three firms × every catalogue interface × every authorization
//!    state (none, live, out of scope, expired, revoked) gives exactly the expected allow or
//!    deny, and each request leaves exactly one audit record saying why; a purpose the
//!    authorization does not cover, a missing role and an unknown interface are refused and
//!    audited too;
//! 2. a bank's daily quota: used up → refused and audited, concurrent queries never overshoot,
//!    the next business day starts afresh; other banks are unaffected;
//! 3. audit records: a bank lists only its own (another bank's are refused), platform staff all;
//!    an audit write that fails fails the query (nothing served unrecorded);
//! 4. the firm's side: a claim's authorization is listed to the applicant who consented (to no
//!    one else), the applicant revokes it, and the bank's next query is refused as revoked.
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
use puhui_domain::interfaces::Catalogue;
use puhui_domain::{ApplicantId, BankId, Error, Principal, Role, Uscc};
use puhui_services::audit::{AuditOutcome, AuditRecord};
use puhui_services::authorizations::Authorizations;
use puhui_services::data_query::{
    AuditFilter, AuthorizationStatus, DataQueryConfig, DataQueryService, DataView,
};
use puhui_services::financing::{DeskService, DispatchService, FinancingConfig};
use puhui_tests::firm_profiles::{Person, firms, grant, person, write_profile};
use puhui_tests::harness::{
    Env, Kind, NoAudit, audit_of, bank, officer, platform_admin, risk_admin, setup,
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

/// Every response body of a test, for the final scan.
#[derive(Default)]
struct Responses(Vec<String>);

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

    /// No raw value of `people` in any body.
    fn assert_clean(&self, people: &[Person]) {
        assert!(!self.0.is_empty());
        for body in &self.0 {
            for p in people {
                for raw in p.raw() {
                    assert!(!body.contains(&raw), "raw {raw} leaked in {body}");
                }
            }
        }
    }
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
    assert!(matches!(r, Err(Error::Forbidden(m)) if m.contains("quota of 3")));
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
    let reasons: Vec<String> = audit_of(env, &small)
        .await
        .iter()
        .map(|r| reason(r).to_string())
        .collect();
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
    assert_eq!(outcomes.iter().filter(|r| r.is_ok()).count(), 3);
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
