//! The notifiers: HTTP ones against a local fake SMS gateway / webhook receiver, and the local
//! stand-ins.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use hmac::{Hmac, Mac};
use puhui_domain::{BankId, Phone};
use puhui_outbound::notify::{
    HttpSmsNotifier, MemoryNotifier, OutboxFileNotifier, RoutingNotifier, SmsGatewayConfig,
    WebhookConfig, WebhookNotifier, read_outbox,
};
use puhui_ports::chrono::{TimeZone, Utc};
use puhui_ports::{ManualClock, Notification, Notifier, NotifyError, Recipient};
use serde_json::{Map, Value, json};
use sha2::Sha256;

const RAW_PHONE: &str = "13812345678";
const SMS_SECRET: &str = "sms-gateway-secret";
const HOOK_SECRET: &str = "webhook-secret";

/// One request the fake received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap().to_str().unwrap()
    }
}

/// A fake receiver: records every request and answers with `status` (after `delay`).
#[derive(Default)]
struct Receiver {
    received: Mutex<Vec<Received>>,
    status: AtomicU16,
    delay_ms: AtomicU16,
}

impl Receiver {
    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn receive(
    State(rx): State<Arc<Receiver>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    rx.received.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let delay = rx.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay.into())).await;
    }
    StatusCode::from_u16(rx.status.load(Ordering::SeqCst)).unwrap()
}

async fn start() -> (Arc<Receiver>, String) {
    let rx = Arc::new(Receiver::default());
    rx.status.store(200, Ordering::SeqCst);
    let app = Router::new().fallback(receive).with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (rx, base)
}

fn closed_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/send", l.local_addr().unwrap())
}

fn params() -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("product".into(), json!("普惠贷"));
    p.insert("amount_fen".into(), json!(50_000_000));
    p
}

fn sms(key: &str) -> Notification {
    Notification {
        key: key.into(),
        recipient: Recipient::Sms {
            phone: Phone::parse(RAW_PHONE).unwrap(),
        },
        template: "claimed".into(),
        params: params(),
        text: "您的贷款需求已被宁波银行受理。".into(),
    }
}

fn hook(key: &str, bank: &str) -> Notification {
    Notification {
        key: key.into(),
        recipient: Recipient::BankWebhook {
            bank_id: BankId::parse(bank).unwrap(),
        },
        template: "demand_received".into(),
        params: params(),
        text: "收到新的贷款需求。".into(),
    }
}

/// Recomputes the signature independently of the crate's `sign`.
fn expected_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn sms_notifier(url: String) -> HttpSmsNotifier {
    HttpSmsNotifier::with_timeout(
        SmsGatewayConfig {
            url,
            secret: SMS_SECRET.into(),
        },
        Duration::from_millis(500),
    )
    .unwrap()
}

fn webhook_notifier(base: &str) -> WebhookNotifier {
    let mut urls = BTreeMap::new();
    urls.insert(BankId::parse("nbcb").unwrap(), format!("{base}/hooks/nbcb"));
    urls.insert(
        BankId::parse("czbank").unwrap(),
        format!("{base}/hooks/cz?token=abc"),
    );
    WebhookNotifier::with_timeout(
        WebhookConfig {
            urls,
            secret: HOOK_SECRET.into(),
            ops_url: None,
        },
        Duration::from_millis(500),
    )
    .unwrap()
}

fn kind(r: Result<(), NotifyError>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(NotifyError::Rejected(_)) => "rejected",
        Err(NotifyError::Unavailable(_)) => "unavailable",
    }
}

#[tokio::test]
async fn sms_posts_the_signed_message_with_the_raw_number() {
    let (rx, base) = start().await;
    let notifier = sms_notifier(format!("{base}/sms/send"));
    notifier.send(&sms("claimed:D1:nbcb")).await.unwrap();

    let got = rx.received();
    assert_eq!(got.len(), 1);
    let req = &got[0];
    assert_eq!(req.path, "/sms/send");
    assert_eq!(
        req.json(),
        json!({
            "phone": RAW_PHONE,
            "template": "claimed",
            "params": {"product": "普惠贷", "amount_fen": 50_000_000},
            "text": "您的贷款需求已被宁波银行受理。",
            "key": "claimed:D1:nbcb",
        })
    );
    assert_eq!(req.header("content-type"), "application/json");
    assert_eq!(req.header("idempotency-key"), "claimed:D1:nbcb");
    let signature = req.header("x-puhui-signature");
    assert_eq!(signature, expected_signature(SMS_SECRET, &req.body));
    assert!(puhui_outbound::verify(
        SMS_SECRET.as_bytes(),
        &req.body,
        signature
    ));
    assert!(!puhui_outbound::verify(
        HOOK_SECRET.as_bytes(),
        &req.body,
        signature
    ));
}

#[tokio::test]
async fn sms_statuses_map_to_delivered_rejected_or_unavailable() {
    let (rx, base) = start().await;
    let notifier = sms_notifier(format!("{base}/sms"));
    for (status, want) in [
        (200, "ok"),
        (202, "ok"),
        (204, "ok"),
        (400, "rejected"),
        (403, "rejected"),
        (404, "rejected"),
        (429, "unavailable"),
        (500, "unavailable"),
        (502, "unavailable"),
        (503, "unavailable"),
    ] {
        rx.status.store(status, Ordering::SeqCst);
        assert_eq!(kind(notifier.send(&sms("k")).await), want, "{status}");
    }
}

#[tokio::test]
async fn transport_failures_and_timeouts_are_unavailable() {
    let refused = sms_notifier(closed_url());
    assert_eq!(kind(refused.send(&sms("k")).await), "unavailable");

    let (rx, base) = start().await;
    rx.delay_ms.store(2000, Ordering::SeqCst);
    let slow = sms_notifier(format!("{base}/sms"));
    let started = std::time::Instant::now();
    assert_eq!(kind(slow.send(&sms("k")).await), "unavailable");
    assert!(started.elapsed() < Duration::from_millis(1500));

    let hooks = webhook_notifier(&base);
    assert_eq!(kind(hooks.send(&hook("k", "nbcb")).await), "unavailable");
}

#[tokio::test]
async fn sms_refuses_other_channels_without_sending() {
    let (rx, base) = start().await;
    let notifier = sms_notifier(format!("{base}/sms"));
    assert_eq!(kind(notifier.send(&hook("k", "nbcb")).await), "rejected");
    assert!(rx.received().is_empty());
}

#[tokio::test]
async fn webhooks_go_to_the_bank_url_signed() {
    let (rx, base) = start().await;
    let notifier = webhook_notifier(&base);
    notifier
        .send(&hook("demand:D1:nbcb", "nbcb"))
        .await
        .unwrap();
    notifier
        .send(&hook("demand:D1:czbank", "czbank"))
        .await
        .unwrap();

    let got = rx.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].path, "/hooks/nbcb");
    assert_eq!(got[1].path, "/hooks/cz");
    assert_eq!(
        got[0].json(),
        json!({
            "key": "demand:D1:nbcb",
            "template": "demand_received",
            "params": {"product": "普惠贷", "amount_fen": 50_000_000},
            "text": "收到新的贷款需求。",
            "bank_id": "nbcb",
        })
    );
    assert_eq!(got[1].json()["bank_id"], "czbank");
    for req in &got {
        assert_eq!(
            req.header("x-puhui-signature"),
            expected_signature(HOOK_SECRET, &req.body)
        );
        assert_eq!(req.header("idempotency-key"), req.json()["key"]);
    }
}

#[tokio::test]
async fn webhook_failures_map_and_unknown_banks_are_rejected() {
    let (rx, base) = start().await;
    let notifier = webhook_notifier(&base);
    assert_eq!(
        kind(notifier.send(&hook("k", "unknown-bank")).await),
        "rejected"
    );
    assert_eq!(kind(notifier.send(&sms("k")).await), "rejected");
    assert!(
        rx.received().is_empty(),
        "nothing sent for refused recipients"
    );

    for (status, want) in [
        (201, "ok"),
        (410, "rejected"),
        (429, "unavailable"),
        (500, "unavailable"),
    ] {
        rx.status.store(status, Ordering::SeqCst);
        assert_eq!(
            kind(notifier.send(&hook("k", "nbcb")).await),
            want,
            "{status}"
        );
    }
}

fn ops(key: &str) -> Notification {
    Notification {
        recipient: Recipient::PlatformOps,
        template: "data_quality_alert".into(),
        ..hook(key, "nbcb")
    }
}

#[tokio::test]
async fn platform_ops_go_to_the_ops_url_signed_or_are_refused_without_one() {
    let (rx, base) = start().await;
    let without = webhook_notifier(&base);
    assert_eq!(kind(without.send(&ops("dq:1")).await), "rejected");
    assert!(rx.received().is_empty());

    let mut urls = BTreeMap::new();
    urls.insert(BankId::parse("nbcb").unwrap(), format!("{base}/hooks/nbcb"));
    let with = WebhookNotifier::with_timeout(
        WebhookConfig {
            urls,
            secret: HOOK_SECRET.into(),
            ops_url: Some(format!("{base}/hooks/ops")),
        },
        Duration::from_millis(500),
    )
    .unwrap();
    with.send(&ops("dq:1")).await.unwrap();
    let got = rx.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/hooks/ops");
    assert_eq!(got[0].json()["recipient"], "platform_ops");
    assert!(got[0].json().get("bank_id").is_none());
    assert_eq!(
        got[0].header("x-puhui-signature"),
        expected_signature(HOOK_SECRET, &got[0].body)
    );
    // The router sends them the webhook way.
    let sms_side = Arc::new(MemoryNotifier::new());
    let hook_side = Arc::new(MemoryNotifier::new());
    let router = RoutingNotifier::new(sms_side.clone(), hook_side.clone());
    router.send(&ops("dq:2")).await.unwrap();
    assert!(sms_side.sent().is_empty());
    assert_eq!(hook_side.sent().len(), 1);
}

#[tokio::test]
async fn routing_sends_each_channel_to_its_notifier() {
    let sms_side = Arc::new(MemoryNotifier::new());
    let hook_side = Arc::new(MemoryNotifier::new());
    let router = RoutingNotifier::new(sms_side.clone(), hook_side.clone());
    router.send(&sms("s1")).await.unwrap();
    router.send(&hook("h1", "nbcb")).await.unwrap();
    router.send(&sms("s2")).await.unwrap();
    let keys = |m: &MemoryNotifier| m.sent().into_iter().map(|n| n.key).collect::<Vec<_>>();
    assert_eq!(keys(&sms_side), ["s1", "s2"]);
    assert_eq!(keys(&hook_side), ["h1"]);

    // Errors come back from the chosen side unchanged.
    hook_side.fail_next(1);
    assert_eq!(kind(router.send(&hook("h2", "nbcb")).await), "unavailable");
    assert_eq!(kind(router.send(&sms("s3")).await), "ok");
}

#[tokio::test]
async fn routing_over_the_http_notifiers() {
    let (rx, base) = start().await;
    let router = RoutingNotifier::new(
        Arc::new(sms_notifier(format!("{base}/sms"))),
        Arc::new(webhook_notifier(&base)),
    );
    router.send(&sms("s1")).await.unwrap();
    router.send(&hook("h1", "nbcb")).await.unwrap();
    let paths: Vec<_> = rx.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/sms", "/hooks/nbcb"]);
}

#[tokio::test]
async fn memory_notifier_records_and_fails_on_demand() {
    let m = MemoryNotifier::new();
    m.fail_next(2);
    assert_eq!(kind(m.send(&sms("a")).await), "unavailable");
    assert_eq!(kind(m.send(&sms("a")).await), "unavailable");
    assert_eq!(kind(m.send(&sms("a")).await), "ok");
    assert_eq!(kind(m.send(&sms("b")).await), "ok");
    assert_eq!(m.attempts(), 4);
    assert_eq!(m.sent(), vec![sms("a"), sms("b")]);
    m.clear();
    assert!(m.sent().is_empty());
    assert_eq!(m.attempts(), 0);
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "puhui-outbound-{}-{name}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_file_holds_masked_lines_only() {
    let dir = temp_dir("outbox");
    let path = dir.join("nested/deeper/outbox.jsonl");
    let at = Utc.with_ymd_and_hms(2025, 3, 1, 8, 30, 0).unwrap();
    let outbox = Arc::new(OutboxFileNotifier::with_clock(
        &path,
        Arc::new(ManualClock::new(at)),
    ));
    assert_eq!(outbox.path(), path);
    assert!(
        read_outbox(&path).is_empty(),
        "a missing file reads as empty"
    );

    outbox.send(&sms("claimed:D1:nbcb")).await.unwrap();
    outbox.send(&hook("demand:D1:nbcb", "nbcb")).await.unwrap();
    // Concurrent sends must each land as one whole line.
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.send(&sms(&format!("bulk:{i}"))).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains(RAW_PHONE),
        "raw phone in the outbox:\n{text}"
    );
    assert_eq!(text.lines().count(), 42);

    let entries = read_outbox(&path);
    assert_eq!(entries.len(), 42, "every line is whole JSON");
    assert_eq!(
        entries[0],
        json!({
            "key": "claimed:D1:nbcb",
            "channel": "sms",
            "recipient": "sms:138****5678",
            "template": "claimed",
            "text": "您的贷款需求已被宁波银行受理。",
            "sent_at": "2025-03-01T08:30:00.000Z",
        })
    );
    assert_eq!(entries[1]["channel"], "bank_webhook");
    assert_eq!(entries[1]["recipient"], "webhook:nbcb");
    let mut bulk: Vec<_> = entries[2..]
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_owned())
        .collect();
    bulk.sort();
    let mut want: Vec<_> = (0..40).map(|i| format!("bulk:{i}")).collect();
    want.sort();
    assert_eq!(bulk, want);

    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn outbox_reports_an_unwritable_path_as_unavailable() {
    let dir = temp_dir("blocked");
    std::fs::create_dir_all(&dir).unwrap();
    // A file where the parent directory should be.
    let blocker = dir.join("file");
    std::fs::write(&blocker, "x").unwrap();
    let outbox = OutboxFileNotifier::new(blocker.join("outbox.jsonl"));
    assert_eq!(kind(outbox.send(&sms("k")).await), "unavailable");
    std::fs::remove_dir_all(&dir).unwrap();
}
