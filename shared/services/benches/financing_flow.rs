//! In-process latency of the financing flow on the embedded backend (SQLite + SQLite queues):
//! submit a demand → receive it from the demand queue → dispatch (match the catalogue, record
//! the offers, queue the notifications). Reports p50/p99/max over `PUHUI_BENCH_DEMANDS`
//! demands (default 10,000) against a catalogue of 40 listed products from 8 banks.
//!
//!     cargo bench -p puhui-services --bench financing_flow
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use puhui_domain::financing::LoanCodeDraft;
use puhui_domain::{ApplicantId, BankId, Principal, Role, Submission};
use puhui_embedded::{QueueConfig, SqliteQueue, SqliteTable};
use puhui_ports::{Queue, SystemClock, Table, UlidGenerator, Update};
use puhui_services::financing::{
    DemandService, DemandSubmitted, DispatchService, FinancingConfig, FinancingPorts,
    LoanCodeService,
};
use puhui_services::outbox::Destination;
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let demands: usize = std::env::var("PUHUI_BENCH_DEMANDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = std::env::temp_dir().join(format!("puhui-bench-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let clock = Arc::new(SystemClock);
    let table = Arc::new(SqliteTable::open(dir.join("puhui.db")).unwrap());
    let config = QueueConfig {
        max_receives: 5,
        fifo: false,
    };
    let demand_q = Arc::new(
        SqliteQueue::open(dir.join("q.db"), "demand-submitted", config, clock.clone()).unwrap(),
    );
    let notify_q = Arc::new(
        SqliteQueue::open(dir.join("q.db"), "notifications", config, clock.clone()).unwrap(),
    );
    let mut queues: HashMap<Destination, Arc<dyn Queue>> = HashMap::new();
    queues.insert(Destination::DemandSubmitted, demand_q.clone());
    queues.insert(Destination::Notifications, notify_q.clone());
    let ports = FinancingPorts::new(
        table.clone(),
        clock,
        Arc::new(UlidGenerator::default()),
        queues,
        FinancingConfig::default(),
    );

    // Catalogue: 8 banks × 5 listed products for Ningbo.
    for b in 0..8 {
        let admin = Principal {
            subject: "bench".into(),
            bank_id: Some(BankId::parse(&format!("bank{b}")).unwrap()),
            roles: vec![Role::ProductAdmin],
        };
        for p in 0..5 {
            let kind = ["credit", "mortgage", "guaranteed"][p % 3];
            let draft = serde_json::from_value(json!({
                "name": format!("P{b}-{p}"), "product_type": kind,
                "amount": {"min": 1_000_000, "max": 100_000_000 * (p as i64 + 1)},
                "term_months": {"min": 1, "max": 12 * (p as i64 + 1)},
                "annual_rate_bp": {"min": 300 + 10 * (b * 5 + p) as i64, "max": 1200},
                "regions": if p % 2 == 0 { json!(["330200"]) } else { json!([]) },
                "conditions": [{"fact": "tax_credit_grade", "operator": "in", "value": ["A", "B", "M"]}],
                "valid_from": "2026-01-01"
            }))
            .unwrap();
            let product = ports.products.create(&admin, draft).await.unwrap();
            ports
                .products
                .set_status(
                    &admin,
                    product.id,
                    puhui_domain::ProductStatus::Listed,
                    None,
                )
                .await
                .unwrap();
        }
    }
    let issuer = Principal {
        subject: "bench".into(),
        bank_id: Some(BankId::parse("bank0").unwrap()),
        roles: vec![Role::ProductAdmin],
    };
    let code: LoanCodeDraft = serde_json::from_value(json!({"id": "bench-code"})).unwrap();
    LoanCodeService::new(ports.clone())
        .create(&issuer, code)
        .await
        .unwrap();
    let applicant = ApplicantId("bench-applicant".into());
    let mut set = serde_json::Map::new();
    set.insert("phone".into(), json!("13812345678"));
    table
        .update(
            &puhui_ports::Key::new(format!("APPLICANT#{applicant}"), "PROFILE"),
            Update {
                set,
                ..Update::default()
            },
            None,
        )
        .await
        .unwrap();

    let submit = DemandService::new(ports.clone());
    let dispatch = DispatchService::new(ports.clone());
    let mut total = Vec::with_capacity(demands);
    let mut submit_t = Vec::with_capacity(demands);
    let mut dispatch_t = Vec::with_capacity(demands);
    let mut offers = 0usize;
    for i in 0..demands {
        let s: Submission = serde_json::from_value(json!({
            "loan_code": "bench-code", "uscc": "91330203MA2H4X8K2W", "firm_name": "宁波基准测试有限公司",
            "applicant_role": "legal_representative", "amount": 10_000_000 + (i as i64 % 50) * 1_000_000,
            "term_months": 1 + (i as u16 % 24), "purpose": "流动资金 working capital",
            "collateral": i % 2 == 0,
            "consent": {"accepted": true, "text_version": "auth-v3", "accepted_at": "2026-11-01T00:00:00Z"}
        }))
        .unwrap_or_else(|e| panic!("submission {i}: {e}"));
        let t0 = Instant::now();
        submit.submit(&applicant, s).await.unwrap();
        let t1 = Instant::now();
        let msg = demand_q
            .receive(1, Duration::from_secs(30))
            .await
            .unwrap()
            .pop()
            .unwrap();
        let id: DemandSubmitted = serde_json::from_str(&msg.body).unwrap();
        offers += dispatch.dispatch(id.demand_id).await.unwrap().len();
        demand_q.delete(&msg.receipt).await.unwrap();
        let t2 = Instant::now();
        submit_t.push(t1 - t0);
        dispatch_t.push(t2 - t1);
        total.push(t2 - t0);
        // Keep the notification queue from growing without bound (notify is not measured).
        for m in notify_q.receive(10, Duration::from_secs(30)).await.unwrap() {
            notify_q.delete(&m.receipt).await.unwrap();
        }
    }
    for v in [&mut total, &mut submit_t, &mut dispatch_t] {
        v.sort();
    }
    println!(
        "financing flow, embedded backend, {demands} demands, 40 listed products, {:.1} offers/demand",
        offers as f64 / demands as f64
    );
    for (name, v) in [
        ("submit", &submit_t),
        ("dispatch", &dispatch_t),
        ("submit → offers", &total),
    ] {
        println!(
            "{name:<16} p50 {:>10}  p99 {:>10}  max {:>10}",
            ms(percentile(v, 0.50)),
            ms(percentile(v, 0.99)),
            ms(*v.last().unwrap())
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
