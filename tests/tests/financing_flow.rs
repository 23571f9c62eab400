//! The financing flow's invariants, proven on both storage adapters: the embedded one (SQLite
//! table and queues in a temporary directory) and the AWS one (DynamoDB and SQS on a local
//! AWS-API server, moto).
//!
//! Each scenario is one `async fn(&Env)` written against the ports only; every scenario runs
//! twice, `_on_embedded` and `_on_aws`:
//!
//! 1. at most three banks hold a claim on a demand, whatever the concurrency;
//! 2. every message delivered three times, shuffled, leaves the state and the notifications
//!    of a single delivery;
//! 3. a claim without progress is reminded once, then released, and its slot can be retaken;
//! 4. the outbox relay sends what a writer committed but never flushed, exactly once;
//! 5. a message no handler can read ends in the dead-letter queue;
//! 6. a claim cancelled for a transient reason is retried and succeeds once.
//!
//! Time is a [`puhui_ports::ManualClock`] and ids come from the clock and a counter, so two runs of the same
//! inputs produce identical ids and items. The AWS side needs `PUHUI_TEST_AWS_ENDPOINT`: run
//! through `tests/scripts/with-moto.sh cargo test -p puhui-tests --test financing_flow`. Moto
//! does not isolate concurrent requests as DynamoDB does, so on that side the table is wrapped
//! in [`harness::Isolated`], which restores DynamoDB's per-request isolation (see there).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use futures::StreamExt;
use puhui_domain::financing::ReleaseReason;
use puhui_domain::{
    BankId, Claim, ClaimStage, DemandId, DemandStatus, Error, FinancingDemand, ProgressUpdate,
};
use puhui_outbound::notify::MemoryNotifier;
use puhui_ports::{Condition, Item, Key, Notification, Query, QueueMessage, Recipient, Table};
use puhui_runner::consumers::{Consumer, poll_once};
use puhui_services::codec;
use puhui_services::financing::{
    ClaimOutcome, DeskService, DispatchService, FinancingConfig, NotificationService, OfferRecord,
    ReminderReport, ReminderService,
};
use puhui_services::outbox::{Destination, Envelope};
use puhui_tests::harness::{
    self, Env, Fault, Faulty, Kind, MAX_RECEIVES, bank, drain, keys, minutes, notification,
    officer, setup, sorted,
};
use serde_json::{Value, json};

// The environment (a backend, a manual clock, deterministic ids), the setup helpers and the
// queue helpers are in `puhui_tests::harness`, shared with the risk-scan scenarios.

// ---------------------------------------------------------------------------------------------
// Reading the table.
// ---------------------------------------------------------------------------------------------

fn demand_pk(id: DemandId) -> String {
    format!("DEMAND#{id}")
}

async fn demand_item(table: &dyn Table, id: DemandId) -> Item {
    table
        .get(&Key::new(demand_pk(id), "DEMAND"))
        .await
        .unwrap()
        .expect("demand item")
}

/// The demand's `claims` counter.
async fn claims_counter(table: &dyn Table, id: DemandId) -> Option<i64> {
    demand_item(table, id)
        .await
        .attrs
        .get("claims")
        .and_then(Value::as_i64)
}

async fn demand(table: &dyn Table, id: DemandId) -> FinancingDemand {
    codec::from_item(demand_item(table, id).await).unwrap()
}

/// Every item of the demand's partition (demand, offers, claims), in key order.
async fn partition(table: &dyn Table, id: DemandId) -> Vec<Item> {
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let page = table
            .query(Query::partition(demand_pk(id)).after(cursor))
            .await
            .unwrap();
        items.extend(page.items);
        cursor = page.next;
        if cursor.is_none() {
            return items;
        }
    }
}

async fn claims(table: &dyn Table, id: DemandId) -> BTreeMap<BankId, Claim> {
    table
        .query(Query::partition(demand_pk(id)).prefix("CLAIM#"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|i| {
            let c: Claim = codec::from_item(i).unwrap();
            (c.bank_id.clone(), c)
        })
        .collect()
}

async fn claim(table: &dyn Table, id: DemandId, bank: &BankId) -> Claim {
    let item = table
        .get(&Key::new(demand_pk(id), format!("CLAIM#{bank}")))
        .await
        .unwrap()
        .expect("claim item");
    codec::from_item(item).unwrap()
}

async fn offer(table: &dyn Table, id: DemandId, bank: &BankId) -> OfferRecord {
    let item = table
        .get(&Key::new(demand_pk(id), format!("OFFER#{bank}")))
        .await
        .unwrap()
        .expect("offer item");
    codec::from_item(item).unwrap()
}

/// Outbox entries not yet flushed.
async fn outbox_entries(table: &dyn Table) -> usize {
    table
        .query(Query::partition("OUTBOX").on_gsi1())
        .await
        .unwrap()
        .items
        .len()
}

// ---------------------------------------------------------------------------------------------
// Queues and consumers.
// ---------------------------------------------------------------------------------------------

/// The two queue consumers of the flow, called as their Lambdas would be.
enum Handler<'a> {
    Dispatch(&'a DispatchService),
    Notify(&'a NotificationService),
}

impl Handler<'_> {
    async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        match self {
            Handler::Dispatch(s) => puhui_api::events::dispatch_batch(s, event).await,
            Handler::Notify(s) => puhui_api::events::notify_batch(s, event).await,
        }
        .expect("every record has a message id")
    }
}

/// Feeds every body `copies` times to `handler` (see [`harness::feed`]); returns how many
/// deliveries failed on the way.
async fn feed(handler: Handler<'_>, bodies: &[String], copies: usize, seed: u64) -> usize {
    harness::feed(|e| handler.handle(e), bodies, copies, seed).await
}

// ---------------------------------------------------------------------------------------------
// Scenario 1: at most three claims, under concurrency.
// ---------------------------------------------------------------------------------------------

type ClaimResult = (BankId, Result<ClaimOutcome, Error>);

/// Fires one claim per entry of `banks` at once (a barrier lines them up on the runtime's
/// worker threads), each as that bank's loan officer.
async fn claim_concurrently(
    desk: &Arc<DeskService>,
    id: DemandId,
    banks: Vec<BankId>,
) -> Vec<ClaimResult> {
    let start = Arc::new(tokio::sync::Barrier::new(banks.len()));
    let tasks: Vec<_> = banks
        .into_iter()
        .map(|b| {
            let (desk, start) = (desk.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let r = desk.claim(&officer(&b), id).await;
                (b, r)
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    results
}

/// Writes the offer demand-dispatch would have written for `bank` (see `DispatchService::plan`).
async fn write_offer(table: &dyn Table, d: &FinancingDemand, bank: &BankId, rank: u32) {
    let record = OfferRecord {
        demand_id: d.id,
        bank_id: bank.clone(),
        rank,
        issuing_bank: false,
        products: vec![],
        firm_name: d.firm_name.clone(),
        uscc: d.uscc.clone(),
        amount: d.amount,
        term_months: d.term_months,
        purpose: d.purpose.clone(),
        collateral: d.collateral,
        applicant_role: d.consent.applicant_role,
        submitted_at: d.submitted_at,
        claim_stage: None,
    };
    let mut item =
        codec::to_item(Key::new(demand_pk(d.id), format!("OFFER#{bank}")), &record).unwrap();
    item.gsi1 = Some(Key::new(format!("OFFERS#{bank}"), d.id.to_string()));
    table.put(item, Some(Condition::NotExists)).await.unwrap();
}

/// The claims in the table agree with the winners: three CLAIM# items, the counter at three,
/// the winners' offers marked claimed and nobody else's.
async fn assert_three_holders(
    table: &dyn Table,
    id: DemandId,
    holders: &BTreeSet<BankId>,
    offered: &[BankId],
) {
    let counter = claims_counter(table, id).await;
    let stored = claims(table, id).await;
    let in_table: BTreeSet<BankId> = stored.keys().cloned().collect();
    let state = format!(
        "answered Ok to {holders:?}; table: claims counter {counter:?}, CLAIM# items of {in_table:?}"
    );
    assert_eq!(holders.len(), 3, "{state}");
    assert_eq!(counter, Some(3), "{state}");
    assert_eq!(in_table, *holders, "{state}");
    assert!(stored.values().all(|c| c.stage == ClaimStage::Claimed));
    for b in offered {
        let want = holders.contains(b).then_some(ClaimStage::Claimed);
        assert_eq!(offer(table, id, b).await.claim_stage, want, "offer of {b}");
    }
}

async fn exactly_three_claims_under_concurrency(env: &Env) {
    let ports = env.ports(FinancingConfig::default());
    let banks: Vec<BankId> = (0..100).map(|i| bank(&format!("b{i:03}"))).collect();
    let applicant = setup(env, &ports, &banks, 16).await;
    let dispatch = DispatchService::new(ports.clone());
    let desk = Arc::new(DeskService::new(ports.clone()));
    let table = env.table.as_ref();

    // (a) The ten banks matching offers (MAX_OFFERED_BANKS), ten requests each, all at once.
    let d1 = applicant.submit().await;
    let offers = dispatch.dispatch(d1.id).await.unwrap();
    assert_eq!(offers.len(), 10);
    let offered: Vec<BankId> = offers.iter().map(|o| o.bank_id.clone()).collect();
    let stored = demand(table, d1.id).await;
    assert_eq!(
        (stored.status, &stored.offered_banks),
        (DemandStatus::Offered, &offered)
    );
    let requests: Vec<BankId> = offered
        .iter()
        .flat_map(|b| std::iter::repeat_n(b.clone(), 10))
        .collect();
    let results = claim_concurrently(&desk, d1.id, requests).await;
    assert_eq!(results.len(), 100);
    let mut by_bank: BTreeMap<BankId, Vec<Result<ClaimOutcome, Error>>> = BTreeMap::new();
    for (b, r) in results {
        by_bank.entry(b).or_default().push(r);
    }
    let holders: BTreeSet<BankId> = by_bank
        .iter()
        .filter(|(_, rs)| rs.iter().any(Result::is_ok))
        .map(|(b, _)| b.clone())
        .collect();
    assert_three_holders(table, d1.id, &holders, &offered).await;
    let stored = claims(table, d1.id).await;
    for (b, rs) in &by_bank {
        assert_eq!(rs.len(), 10);
        if holders.contains(b) {
            // Every request of a holding bank answers with its one claim; one of them made it.
            let created = rs
                .iter()
                .filter(|r| matches!(r, Ok(o) if o.created))
                .count();
            assert_eq!(created, 1, "claims created by {b}: {rs:?}");
            for r in rs {
                match r {
                    Ok(o) => assert_eq!(&o.claim, &stored[b], "{b}"),
                    Err(e) => panic!("{b} holds a claim but one of its requests got {e:?}"),
                }
            }
        } else {
            for r in rs {
                assert!(
                    matches!(r, Err(Error::Conflict(_))),
                    "{b} holds no claim but got {r:?}"
                );
            }
        }
    }
    // Asking again changes nothing.
    for b in &holders {
        let again = desk.claim(&officer(b), d1.id).await.unwrap();
        assert_eq!((again.created, &again.claim), (false, &stored[b]));
    }
    assert_eq!(claims_counter(table, d1.id).await, Some(3));
    // Only the committed claims told the firm: one message each, nothing for the losers.
    let mut want: Vec<String> = vec![format!("received:{}", d1.id)];
    want.extend(offered.iter().map(|b| format!("offered:{}:{b}", d1.id)));
    want.extend(holders.iter().map(|b| format!("claimed:{}:{b}", d1.id)));
    assert_eq!(keys(&drain(env.notify_queue.as_ref()).await), sorted(want));
    assert_eq!(outbox_entries(table).await, 0);

    // (b) One hundred distinct banks offered the demand, one claim each, all at once.
    let d2 = applicant.submit().await;
    let offers = dispatch.dispatch(d2.id).await.unwrap();
    assert_eq!(offers.len(), 10);
    let offered: Vec<BankId> = offers.iter().map(|o| o.bank_id.clone()).collect();
    let others: Vec<&BankId> = banks.iter().filter(|b| !offered.contains(b)).collect();
    assert_eq!(others.len(), 90);
    futures::stream::iter(others.iter().enumerate())
        .for_each_concurrent(16, |(i, b)| write_offer(table, &d2, b, 11 + i as u32))
        .await;
    let results = claim_concurrently(&desk, d2.id, banks.clone()).await;
    assert_eq!(results.len(), 100);
    let won: Vec<&ClaimResult> = results.iter().filter(|(_, r)| r.is_ok()).collect();
    assert_eq!(won.len(), 3, "successful claims");
    assert!(
        won.iter()
            .all(|(_, r)| matches!(r, Ok(o) if o.created && o.claim.stage == ClaimStage::Claimed))
    );
    let lost = results
        .iter()
        .filter(|(_, r)| matches!(r, Err(Error::Conflict(_))))
        .count();
    let unexpected: Vec<&ClaimResult> = results
        .iter()
        .filter(|(_, r)| !matches!(r, Ok(_) | Err(Error::Conflict(_))))
        .collect();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");
    assert_eq!(lost, 97);
    let holders: BTreeSet<BankId> = won.iter().map(|(b, _)| b.clone()).collect();
    assert_three_holders(table, d2.id, &holders, &banks).await;
}

// ---------------------------------------------------------------------------------------------
// Scenario 2: every message three times, shuffled: same state, same notifications.
// ---------------------------------------------------------------------------------------------

/// What one run of the flow left behind.
#[derive(Debug)]
struct FlowRun {
    demand: DemandId,
    /// Bodies that went through demand-submitted.
    demand_bodies: Vec<String>,
    /// Bodies that went through notifications, sorted.
    notify_bodies: Vec<String>,
    /// The demand's partition: demand, offers, claims.
    items: Vec<Item>,
    /// Keys of the notifications the notifier delivered, in delivery order.
    delivered: Vec<String>,
    /// Deliveries the handlers reported failed (and were redelivered).
    failures: usize,
}

/// Submit → demand-dispatch → three claims → one progress → notify, with every message handed
/// to its consumer `copies` times.
async fn run_flow(env: &Env, copies: usize) -> FlowRun {
    let ports = env.ports(FinancingConfig::default());
    let banks: Vec<BankId> = ["ba", "bb", "bc", "bd"].iter().map(|b| bank(b)).collect();
    let applicant = setup(env, &ports, &banks, 1).await;
    let dispatch = DispatchService::new(ports.clone());
    let desk = DeskService::new(ports.clone());
    let notifier = Arc::new(MemoryNotifier::new());
    let notify = NotificationService::new(env.table.clone(), env.clock.clone(), notifier.clone());

    let d = applicant.submit().await;
    let demand_bodies = drain(env.demand_queue.as_ref()).await;
    assert_eq!(
        demand_bodies,
        vec![json!({"demand_id": d.id}).to_string()],
        "one message per submitted demand"
    );
    let mut failures = feed(Handler::Dispatch(&dispatch), &demand_bodies, copies, 11).await;
    let stored = demand(env.table.as_ref(), d.id).await;
    assert_eq!(stored.status, DemandStatus::Offered);
    assert_eq!(stored.offered_banks.len(), banks.len());

    env.clock.advance(minutes(5));
    for b in &stored.offered_banks[..3] {
        let outcome = desk.claim(&officer(b), d.id).await.unwrap();
        assert!(outcome.created);
    }
    env.clock.advance(minutes(5));
    let contacted = &stored.offered_banks[0];
    desk.progress(
        &officer(contacted),
        d.id,
        ProgressUpdate {
            stage: ClaimStage::Contacted,
            approved_amount: None,
            annual_rate_bp: None,
            note: Some("called the firm".into()),
        },
    )
    .await
    .unwrap();

    let notify_bodies = sorted(drain(env.notify_queue.as_ref()).await);
    failures += feed(Handler::Notify(&notify), &notify_bodies, copies, 12).await;
    assert_eq!(outbox_entries(env.table.as_ref()).await, 0);
    assert!(drain(env.demand_queue.as_ref()).await.is_empty());
    assert!(drain(env.notify_queue.as_ref()).await.is_empty());
    FlowRun {
        demand: d.id,
        demand_bodies,
        notify_bodies,
        items: partition(env.table.as_ref(), d.id).await,
        delivered: notifier.sent().into_iter().map(|n| n.key).collect(),
        failures,
    }
}

async fn redelivery_leaves_the_same_state(env: &Env) {
    let once = run_flow(env, 1).await;
    assert_eq!(
        once.failures, 0,
        "a single delivery of each message must succeed"
    );
    let d = once.demand;
    let offered = demand(env.table.as_ref(), d).await.offered_banks;
    let mut want = vec![format!("received:{d}")];
    want.extend(offered.iter().map(|b| format!("offered:{d}:{b}")));
    want.extend(offered[..3].iter().map(|b| format!("claimed:{d}:{b}")));
    want.push(format!("progress:{d}:{}:contacted", offered[0]));
    let want = sorted(want);
    assert_eq!(keys(&once.notify_bodies), want);
    assert_eq!(
        sorted(once.delivered.clone()),
        want,
        "each notification exactly once"
    );
    // 1 demand + 4 offers + 3 claims.
    assert_eq!(once.items.len(), 8);

    let fresh = env.fresh().await;
    let thrice = run_flow(&fresh, 3).await;
    assert_eq!(thrice.demand, d, "the same inputs give the same ids");
    assert_eq!(thrice.demand_bodies, once.demand_bodies);
    assert_eq!(thrice.notify_bodies, once.notify_bodies);
    assert_eq!(thrice.items, once.items, "table state after redelivery");
    assert_eq!(
        sorted(thrice.delivered.clone()),
        want,
        "notifications delivered with every message three times"
    );
}

// ---------------------------------------------------------------------------------------------
// Scenario 3: reminder after an hour, release after three, the slot retaken.
// ---------------------------------------------------------------------------------------------

fn report(reminded: usize, released: usize) -> ReminderReport {
    ReminderReport {
        reminded,
        released,
        skipped: 0,
    }
}

async fn reminders_then_release(env: &Env) {
    let config = FinancingConfig {
        remind_after: Duration::from_secs(3600),
        release_after: Duration::from_secs(3 * 3600),
        ..FinancingConfig::default()
    };
    let ports = env.ports(config);
    let banks: Vec<BankId> = ["ba", "bb", "bc", "bd"].iter().map(|b| bank(b)).collect();
    let applicant = setup(env, &ports, &banks, 1).await;
    let d = applicant.submit().await;
    assert_eq!(
        DispatchService::new(ports.clone())
            .dispatch(d.id)
            .await
            .unwrap()
            .len(),
        4
    );
    let offered = demand(env.table.as_ref(), d.id).await.offered_banks;
    let (idle, busy, fourth) = (&offered[0], &offered[1..3], &offered[3]);
    let desk = DeskService::new(ports.clone());
    let reminders = ReminderService::new(ports.clone());
    let t0 = env.now();
    for b in std::iter::once(idle).chain(busy) {
        assert!(desk.claim(&officer(b), d.id).await.unwrap().created);
    }
    for b in busy {
        desk.progress(
            &officer(b),
            d.id,
            ProgressUpdate {
                stage: ClaimStage::Contacted,
                approved_amount: None,
                annual_rate_bp: None,
                note: None,
            },
        )
        .await
        .unwrap();
    }
    assert_eq!(claims_counter(env.table.as_ref(), d.id).await, Some(3));
    drain(env.notify_queue.as_ref()).await;

    // Half an hour: nothing is due.
    env.clock.set(t0 + minutes(30));
    assert_eq!(reminders.run().await.unwrap(), report(0, 0));
    assert!(drain(env.notify_queue.as_ref()).await.is_empty());

    // Past the hour: one reminder, to the bank without progress; never a second one.
    env.clock.set(t0 + minutes(61));
    assert_eq!(reminders.run().await.unwrap(), report(1, 0));
    let sent = drain(env.notify_queue.as_ref()).await;
    assert_eq!(keys(&sent), vec![format!("reminder:{}:{idle}", d.id)]);
    let n = notification(&sent[0]);
    assert_eq!(
        (n.template.as_str(), &n.recipient),
        (
            "reminder",
            &Recipient::BankWebhook {
                bank_id: idle.clone()
            }
        )
    );
    let c = claim(env.table.as_ref(), d.id, idle).await;
    assert_eq!(
        (c.stage, c.reminded_at),
        (ClaimStage::Claimed, Some(t0 + minutes(61)))
    );
    assert_eq!(reminders.run().await.unwrap(), report(0, 0));
    env.clock.set(t0 + minutes(150));
    assert_eq!(reminders.run().await.unwrap(), report(0, 0));
    assert!(drain(env.notify_queue.as_ref()).await.is_empty());

    // Past three hours: released, the firm and the bank told, the slot free again.
    env.clock.set(t0 + minutes(181));
    assert_eq!(reminders.run().await.unwrap(), report(0, 1));
    assert_eq!(
        keys(&drain(env.notify_queue.as_ref()).await),
        sorted(vec![
            format!("auto-released:{}:{idle}", d.id),
            format!("released:{}:{idle}", d.id),
        ])
    );
    let c = claim(env.table.as_ref(), d.id, idle).await;
    assert_eq!(
        (c.stage, c.released),
        (ClaimStage::Released, Some(ReleaseReason::NoProgress))
    );
    assert_eq!(claims_counter(env.table.as_ref(), d.id).await, Some(2));
    assert_eq!(
        offer(env.table.as_ref(), d.id, idle).await.claim_stage,
        Some(ClaimStage::Released)
    );
    assert_eq!(reminders.run().await.unwrap(), report(0, 0));
    let taken = desk.claim(&officer(fourth), d.id).await.unwrap();
    assert!(taken.created);
    assert_eq!(claims_counter(env.table.as_ref(), d.id).await, Some(3));
    assert!(matches!(
        desk.claim(&officer(idle), d.id).await,
        Err(Error::Conflict(_))
    ));
    drain(env.notify_queue.as_ref()).await;

    // Much later: only the new claim is reminded; the contacted ones never are.
    env.clock.set(t0 + minutes(181 + 61));
    assert_eq!(reminders.run().await.unwrap(), report(1, 0));
    assert_eq!(
        keys(&drain(env.notify_queue.as_ref()).await),
        vec![format!("reminder:{}:{fourth}", d.id)]
    );
    for b in busy {
        let c = claim(env.table.as_ref(), d.id, b).await;
        assert_eq!(
            (c.stage, c.reminded_at),
            (ClaimStage::Contacted, None),
            "{b}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Scenario 4: the relay sends what was committed but never flushed, once.
// ---------------------------------------------------------------------------------------------

async fn outbox_relay_sends_once(env: &Env) {
    let ports = env.ports(FinancingConfig::default());
    let n = Notification {
        key: "relay-test:1".into(),
        recipient: Recipient::BankWebhook {
            bank_id: bank("ba"),
        },
        template: "relay_test".into(),
        params: serde_json::Map::new(),
        text: "outbox relay test".into(),
    };
    let to_notify = Envelope::json(Destination::Notifications, &n).unwrap();
    let to_dispatch = Envelope::json(
        Destination::DemandSubmitted,
        &json!({"demand_id": ulid::Ulid::nil()}),
    )
    .unwrap();
    // A writer that committed and crashed before flushing.
    let (op, _never_flushed) = ports
        .outbox
        .stage(vec![to_notify.clone(), to_dispatch.clone()])
        .unwrap();
    env.table.transact(vec![op]).await.unwrap();
    assert_eq!(outbox_entries(env.table.as_ref()).await, 1);
    assert!(drain(env.notify_queue.as_ref()).await.is_empty());
    assert!(drain(env.demand_queue.as_ref()).await.is_empty());

    // Younger than 30 s: still its writer's to flush.
    assert_eq!(puhui_api::events::relay(&ports.outbox).await.unwrap(), 0);
    env.clock.advance(chrono::Duration::seconds(29));
    assert_eq!(puhui_api::events::relay(&ports.outbox).await.unwrap(), 0);
    assert!(drain(env.notify_queue.as_ref()).await.is_empty());

    env.clock.advance(chrono::Duration::seconds(2));
    assert_eq!(puhui_api::events::relay(&ports.outbox).await.unwrap(), 1);
    assert_eq!(outbox_entries(env.table.as_ref()).await, 0);
    let notified = drain(env.notify_queue.as_ref()).await;
    assert_eq!(notified, vec![to_notify.body]);
    assert_eq!(
        drain(env.demand_queue.as_ref()).await,
        vec![to_dispatch.body]
    );

    // Nothing left: another run sends nothing.
    env.clock.advance(minutes(5));
    assert_eq!(puhui_api::events::relay(&ports.outbox).await.unwrap(), 0);
    assert!(drain(env.notify_queue.as_ref()).await.is_empty());
    assert!(drain(env.demand_queue.as_ref()).await.is_empty());

    // And the relayed message is deliverable.
    let notifier = Arc::new(MemoryNotifier::new());
    let notify = NotificationService::new(env.table.clone(), env.clock.clone(), notifier.clone());
    assert_eq!(feed(Handler::Notify(&notify), &notified, 1, 0).await, 0);
    assert_eq!(notifier.sent(), vec![n]);
}

// ---------------------------------------------------------------------------------------------
// Scenario 5: a poison message ends in the dead-letter queue.
// ---------------------------------------------------------------------------------------------

/// One handler call: the receive count, the message ids in the event, the ids reported failed.
type HandlerCall = (String, Vec<String>, Vec<String>);

async fn poison_message_is_dead_lettered(env: &Env) {
    let ports = env.ports(FinancingConfig::default());
    let dispatch = Arc::new(DispatchService::new(ports));
    let poison = "this is not JSON {";
    let id = env
        .demand_queue
        .send(QueueMessage::new(poison))
        .await
        .unwrap();
    let calls: Arc<Mutex<Vec<HandlerCall>>> = Arc::default();
    let seen = calls.clone();
    let mut consumer = Consumer::new("demand-dispatch", env.demand_queue.clone(), move |e| {
        let (s, seen) = (dispatch.clone(), seen.clone());
        Box::pin(async move {
            let count = e
                .records
                .iter()
                .filter_map(|r| r.attributes.get("ApproximateReceiveCount").cloned())
                .collect::<Vec<_>>()
                .join(",");
            let ids = e
                .records
                .iter()
                .filter_map(|r| r.message_id.clone())
                .collect();
            let response = puhui_api::events::dispatch_batch(&s, e).await.unwrap();
            let failed = response
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.clone())
                .collect();
            seen.lock().unwrap().push((count, ids, failed));
            response
        })
    });
    consumer.visibility = Duration::ZERO;

    // Poll as the event source mapping would until the queue has nothing more to give.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n = poll_once(&consumer).await.unwrap();
        let handled = calls.lock().unwrap().len();
        if n == 0 && handled >= MAX_RECEIVES as usize {
            break;
        }
        assert!(
            handled <= MAX_RECEIVES as usize,
            "handed to the consumer past the receive limit"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the poison message was not dead-lettered in time"
        );
        if n == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let calls = calls.lock().unwrap().clone();
    let want: Vec<HandlerCall> = (1..=MAX_RECEIVES)
        .map(|k| (k.to_string(), vec![id.clone()], vec![id.clone()]))
        .collect();
    assert_eq!(
        calls, want,
        "each delivery reported as a batch item failure"
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut dead = Vec::new();
    while dead.is_empty() && tokio::time::Instant::now() < deadline {
        dead = env
            .demand_dead_letter
            .receive(10, Duration::from_secs(30))
            .await
            .unwrap();
        if dead.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(
        dead.iter()
            .map(|m| (m.id.as_str(), m.body.as_str()))
            .collect::<Vec<_>>(),
        vec![(id.as_str(), poison)],
        "in the dead-letter queue, intact"
    );
    assert!(drain(env.demand_queue.as_ref()).await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// The tests: every scenario on both adapters.
// ---------------------------------------------------------------------------------------------

/// 6. A claim whose transaction is cancelled for a transient reason (DynamoDB's
///    TransactionConflict when requests race on the demand, reported as `Unavailable`) is
///    retried by the service and succeeds once.
async fn claim_retries_a_transient_cancellation(env: &Env) {
    let faulty = Arc::new(Faulty::new(env.table.clone()));
    let ports = env.ports_on(faulty.clone(), FinancingConfig::default());
    let banks = vec![bank("rtry1"), bank("rtry2")];
    let applicant = setup(env, &ports, &banks, 1).await;
    let d = applicant.submit().await;
    DispatchService::new(ports.clone())
        .dispatch(d.id)
        .await
        .unwrap();
    let desk = DeskService::new(ports.clone());
    faulty.arm(1, Fault::Unavailable);
    let outcome = desk.claim(&officer(&banks[0]), d.id).await.unwrap();
    assert!(
        faulty.spent(),
        "the claim's first transaction met the fault"
    );
    assert!(outcome.created);
    let table = env.table.as_ref();
    assert_eq!(
        claims(table, d.id).await.into_keys().collect::<Vec<_>>(),
        vec![banks[0].clone()]
    );
    assert_eq!(claims_counter(table, d.id).await, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claim_retries_a_transient_cancellation_on_embedded() {
    claim_retries_a_transient_cancellation(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claim_retries_a_transient_cancellation_on_aws() {
    claim_retries_a_transient_cancellation(&Env::new(Kind::Aws).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_three_claims_under_concurrency_on_embedded() {
    exactly_three_claims_under_concurrency(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_three_claims_under_concurrency_on_aws() {
    exactly_three_claims_under_concurrency(&Env::new(Kind::Aws).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redelivery_leaves_the_same_state_on_embedded() {
    redelivery_leaves_the_same_state(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redelivery_leaves_the_same_state_on_aws() {
    redelivery_leaves_the_same_state(&Env::new(Kind::Aws).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reminders_then_release_on_embedded() {
    reminders_then_release(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reminders_then_release_on_aws() {
    reminders_then_release(&Env::new(Kind::Aws).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_relay_sends_once_on_embedded() {
    outbox_relay_sends_once(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_relay_sends_once_on_aws() {
    outbox_relay_sends_once(&Env::new(Kind::Aws).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_message_is_dead_lettered_on_embedded() {
    poison_message_is_dead_lettered(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_message_is_dead_lettered_on_aws() {
    poison_message_is_dead_lettered(&Env::new(Kind::Aws).await).await;
}
