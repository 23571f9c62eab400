//! Behaviour specific to the embedded adapter, driven by a manual clock (no sleeping).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use puhui_embedded::{LocalBlobStore, PresignError, QueueConfig, SqliteQueue, SqliteTable};
use puhui_ports::chrono::{self, TimeZone, Utc};
use puhui_ports::{
    BlobStore, Condition, Item, Key, KeyRange, ManualClock, PortError, Query, Queue, QueueMessage,
    Table, TxOp, Update,
};
use serde_json::{Map, Value, json};

fn temp_dir(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("puhui-embedded-{what}-{}", ulid::Ulid::new()))
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
    ))
}

fn attrs(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

// ---- blobs ----

const BASE: &str = "http://localhost:8080";

fn store(clock: &Arc<ManualClock>) -> LocalBlobStore {
    LocalBlobStore::new(
        temp_dir("blobs"),
        format!("{BASE}/"),
        b"secret".to_vec(),
        clock.clone(),
    )
}

fn path_of(url: &str) -> &str {
    url.strip_prefix(BASE).unwrap()
}

#[tokio::test]
async fn presigned_url_works_until_expiry_and_refuses_tampering() {
    let clock = clock();
    let blobs = store(&clock);
    let key = "exports/导出 2030.csv";
    blobs.put(key, b"a,b\n".to_vec(), "text/csv").await.unwrap();
    let p = blobs
        .presign_get(key, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(p.expires_at, clock.now_plus(60));
    assert!(
        p.url.starts_with(&format!("{BASE}/blobs/exports/")),
        "{}",
        p.url
    );
    assert!(!p.url.contains(' '), "{}", p.url);

    clock.advance(chrono::Duration::seconds(59));
    assert_eq!(
        blobs.open_presigned(path_of(&p.url)).await.unwrap(),
        b"a,b\n"
    );

    let flipped = {
        let (head, sig) = p.url.rsplit_once("signature=").unwrap();
        let first = if sig.starts_with('0') { '1' } else { '0' };
        format!("{head}signature={first}{}", &sig[1..])
    };
    assert!(matches!(
        blobs.open_presigned(path_of(&flipped)).await,
        Err(PresignError::BadSignature)
    ));
    let other_key = p.url.replace("2030", "2031");
    assert!(matches!(
        blobs.open_presigned(path_of(&other_key)).await,
        Err(PresignError::BadSignature)
    ));
    let later = p.url.replace(
        &format!("expires={}", p.expires_at.timestamp()),
        &format!("expires={}", p.expires_at.timestamp() + 3600),
    );
    assert!(matches!(
        blobs.open_presigned(path_of(&later)).await,
        Err(PresignError::BadSignature)
    ));

    clock.advance(chrono::Duration::seconds(1));
    assert!(
        matches!(
            blobs.open_presigned(path_of(&p.url)).await,
            Err(PresignError::Expired)
        ),
        "refused at the expiry instant"
    );
}

#[tokio::test]
async fn presigned_urls_report_malformed_and_missing() {
    let clock = clock();
    let blobs = store(&clock);
    for bad in [
        "/blobs/x",
        "/other/x?expires=1&signature=00",
        "/blobs/x?expires=soon&signature=00",
        "/blobs/x?expires=1&signature=zz",
        "/blobs/%ZZ?expires=1&signature=00",
    ] {
        assert!(
            matches!(
                blobs.open_presigned(bad).await,
                Err(PresignError::Malformed(_))
            ),
            "{bad}"
        );
    }
    let p = blobs
        .presign_get("never/written", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(matches!(
        blobs.open_presigned(path_of(&p.url)).await,
        Err(PresignError::NotFound)
    ));
    let too_long = puhui_ports::blob::MAX_PRESIGN + Duration::from_secs(1);
    assert!(matches!(
        blobs.presign_get("k", too_long).await,
        Err(PortError::Invalid(_))
    ));
    assert!(
        blobs
            .presign_get("k", puhui_ports::blob::MAX_PRESIGN)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn keys_and_sub_keys_coexist_and_listing_hides_temp_files() {
    let clock = clock();
    let root = temp_dir("blobs");
    let blobs = LocalBlobStore::new(root.clone(), BASE.into(), b"s".to_vec(), clock);
    for key in ["a", "a/b", "a/b/c", "a//d", "a/", "é/ü ß"] {
        blobs
            .put(key, key.as_bytes().to_vec(), "text/plain")
            .await
            .unwrap();
    }
    for key in ["a", "a/b", "a/b/c", "a//d", "a/", "é/ü ß"] {
        assert_eq!(
            blobs.get(key).await.unwrap().as_deref(),
            Some(key.as_bytes()),
            "{key}"
        );
    }
    std::fs::write(root.join("a.d").join(".tmp-leftover"), b"junk").unwrap();
    let keys: Vec<String> = blobs
        .list("a")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, vec!["a", "a/", "a//d", "a/b", "a/b/c"]);
    assert_eq!(blobs.list("a/b/").await.unwrap().len(), 1);
    assert_eq!(blobs.list("").await.unwrap().len(), 6);
    assert_eq!(blobs.get("a/zz").await.unwrap(), None);
    assert_eq!(blobs.get("a/b/c/d").await.unwrap(), None);
}

// ---- queues ----

fn queue(clock: &Arc<ManualClock>, config: QueueConfig) -> SqliteQueue {
    SqliteQueue::open(
        temp_dir("queue").join("q.db"),
        "jobs",
        config,
        clock.clone(),
    )
    .unwrap()
}

#[tokio::test]
async fn visibility_and_dead_letter_follow_the_clock() {
    let clock = clock();
    let q = queue(
        &clock,
        QueueConfig {
            max_receives: 2,
            fifo: false,
        },
    );
    let dlq = q.dead_letter();
    assert_eq!(dlq.name(), "jobs-dlq");
    let id = q.send(QueueMessage::new("poison")).await.unwrap();
    let vis = Duration::from_secs(30);

    let first = q.receive(10, vis).await.unwrap();
    assert_eq!((first.len(), first[0].receive_count), (1, 1));
    clock.advance(chrono::Duration::seconds(29));
    assert!(
        q.receive(10, vis).await.unwrap().is_empty(),
        "hidden until the timeout"
    );
    clock.advance(chrono::Duration::seconds(1));
    let second = q.receive(10, vis).await.unwrap();
    assert_eq!(
        (second[0].id.as_str(), second[0].receive_count),
        (id.as_str(), 2)
    );
    assert!(
        dlq.receive(10, vis).await.unwrap().is_empty(),
        "in flight: not yet dead-lettered"
    );

    clock.advance(chrono::Duration::seconds(30));
    assert!(
        q.receive(10, vis).await.unwrap().is_empty(),
        "a third receive moves it instead"
    );
    let dead = dlq.receive(10, vis).await.unwrap();
    assert_eq!(
        (dead.len(), dead[0].id.as_str(), dead[0].body.as_str()),
        (1, id.as_str(), "poison")
    );
    q.delete(&second[0].receipt).await.unwrap(); // stale: the message moved on
    dlq.delete(&dead[0].receipt).await.unwrap();
    clock.advance(chrono::Duration::seconds(60));
    assert!(dlq.receive(10, vis).await.unwrap().is_empty());
}

#[tokio::test]
async fn dead_lettering_happens_on_the_source_receive_past_the_limit() {
    let clock = clock();
    let q = queue(
        &clock,
        QueueConfig {
            max_receives: 1,
            fifo: false,
        },
    );
    q.send(QueueMessage::new("m")).await.unwrap();
    assert_eq!(q.receive(1, Duration::from_secs(5)).await.unwrap().len(), 1);
    clock.advance(chrono::Duration::seconds(5));
    // As in SQS: nothing moves until the source is read again.
    assert!(
        q.dead_letter()
            .receive(1, Duration::from_secs(5))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        q.receive(1, Duration::from_secs(5))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        q.dead_letter()
            .receive(1, Duration::from_secs(5))
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn stale_receipts_do_not_delete_a_redelivered_message() {
    let clock = clock();
    let q = queue(
        &clock,
        QueueConfig {
            max_receives: 0,
            fifo: false,
        },
    );
    q.send(QueueMessage::new("m")).await.unwrap();
    let old = q
        .receive(1, Duration::from_secs(1))
        .await
        .unwrap()
        .remove(0);
    clock.advance(chrono::Duration::seconds(1));
    let new = q
        .receive(1, Duration::from_secs(1))
        .await
        .unwrap()
        .remove(0);
    assert_ne!(old.receipt, new.receipt);
    q.delete(&old.receipt).await.unwrap();
    clock.advance(chrono::Duration::seconds(1));
    let again = q.receive(1, Duration::from_secs(1)).await.unwrap();
    assert_eq!(again[0].receive_count, 3, "the stale delete did nothing");
    q.delete(&again[0].receipt).await.unwrap();
    clock.advance(chrono::Duration::seconds(1));
    assert!(
        q.receive(1, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn fifo_deduplicates_within_five_minutes_and_standard_queues_do_not() {
    let clock = clock();
    let fifo = queue(
        &clock,
        QueueConfig {
            max_receives: 0,
            fifo: true,
        },
    );
    let msg = |body: &str| {
        let mut m = QueueMessage::new(body).dedup("d1");
        m.group_id = Some("g".into());
        m
    };
    let first = fifo.send(msg("a")).await.unwrap();
    clock.advance(chrono::Duration::seconds(299));
    assert_eq!(fifo.send(msg("b")).await.unwrap(), first);
    clock.advance(chrono::Duration::seconds(1));
    assert_ne!(
        fifo.send(msg("c")).await.unwrap(),
        first,
        "the window has passed"
    );
    assert!(matches!(
        fifo.send(QueueMessage::new("no group")).await,
        Err(PortError::Invalid(_))
    ));

    let standard = queue(
        &clock,
        QueueConfig {
            max_receives: 0,
            fifo: false,
        },
    );
    let a = standard
        .send(QueueMessage::new("a").dedup("d1"))
        .await
        .unwrap();
    let b = standard
        .send(QueueMessage::new("b").dedup("d1"))
        .await
        .unwrap();
    assert_ne!(a, b);
    assert_eq!(
        standard
            .receive(10, Duration::from_secs(1))
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn fifo_holds_a_group_while_it_is_in_flight() {
    let clock = clock();
    let fifo = queue(
        &clock,
        QueueConfig {
            max_receives: 0,
            fifo: true,
        },
    );
    for (body, group) in [("g1-a", "g1"), ("g1-b", "g1"), ("g2-a", "g2")] {
        let mut m = QueueMessage::new(body);
        m.group_id = Some(group.into());
        fifo.send(m).await.unwrap();
    }
    let vis = Duration::from_secs(10);
    let first = fifo.receive(1, vis).await.unwrap();
    assert_eq!(first[0].body, "g1-a");
    let bodies =
        |ms: Vec<puhui_ports::ReceivedMessage>| ms.into_iter().map(|m| m.body).collect::<Vec<_>>();
    assert_eq!(bodies(fifo.receive(10, vis).await.unwrap()), vec!["g2-a"]);
    fifo.delete(&first[0].receipt).await.unwrap();
    assert_eq!(bodies(fifo.receive(10, vis).await.unwrap()), vec!["g1-b"]);
}

#[tokio::test]
async fn batches_and_receives_respect_sqs_limits() {
    let clock = clock();
    let q = queue(
        &clock,
        QueueConfig {
            max_receives: 3,
            fifo: false,
        },
    );
    let eleven = (0..11)
        .map(|i| QueueMessage::new(format!("m{i}")))
        .collect();
    assert!(matches!(
        q.send_batch(eleven).await,
        Err(PortError::Invalid(_))
    ));
    assert!(matches!(
        q.send_batch(vec![]).await,
        Err(PortError::Invalid(_))
    ));
    let results = q
        .send_batch(vec![QueueMessage::new("ok"), QueueMessage::new("")])
        .await
        .unwrap();
    assert!(
        results[0].is_ok() && matches!(results[1], Err(PortError::Invalid(_))),
        "{results:?}"
    );
    assert!(matches!(
        q.receive(0, Duration::from_secs(1)).await,
        Err(PortError::Invalid(_))
    ));
    assert!(matches!(
        q.receive(11, Duration::from_secs(1)).await,
        Err(PortError::Invalid(_))
    ));
    let got = q.receive(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        vec!["ok"]
    );
}

// ---- table ----

fn item(pk: &str, sk: &str, v: Value) -> Item {
    Item::new(Key::new(pk, sk), attrs(v))
}

#[tokio::test]
async fn transactions_refuse_too_many_or_duplicate_keys() {
    let t = SqliteTable::open(temp_dir("table").join("t.db")).unwrap();
    let check = |sk: String| TxOp::Check {
        key: Key::new("p", sk),
        condition: Condition::NotExists,
    };
    assert!(matches!(
        t.transact((0..26).map(|i| check(i.to_string())).collect())
            .await,
        Err(PortError::Invalid(_))
    ));
    assert!(
        t.transact((0..25).map(|i| check(i.to_string())).collect())
            .await
            .is_ok()
    );
    let dup = vec![
        check("a".into()),
        TxOp::Delete {
            key: Key::new("p", "a"),
            condition: None,
        },
    ];
    assert!(matches!(t.transact(dup).await, Err(PortError::Invalid(_))));
    assert!(matches!(
        t.transact(vec![]).await,
        Err(PortError::Invalid(_))
    ));
    let reserved = vec![TxOp::Update {
        key: Key::new("p", "a"),
        update: Update {
            add: vec![("version".into(), 1)],
            ..Update::default()
        },
        condition: None,
    }];
    assert!(matches!(
        t.transact(reserved).await,
        Err(PortError::Invalid(_))
    ));
}

#[tokio::test]
async fn reopening_the_file_keeps_the_data() {
    let path = temp_dir("table").join("t.db");
    let mut it = item("p", "s", json!({"n": 1, "名": "值"}));
    it.gsi1 = Some(Key::new("g", "1"));
    it.expires_at = Some(42);
    {
        let t = SqliteTable::open(&path).unwrap();
        t.put(it.clone(), None).await.unwrap();
    }
    let t = SqliteTable::open(&path).unwrap();
    assert_eq!(t.get(&it.key).await.unwrap(), Some(it));
}

#[tokio::test]
async fn updates_refuse_bad_input_without_writing() {
    let t = SqliteTable::open(temp_dir("table").join("t.db")).unwrap();
    let key = Key::new("p", "s");
    t.put(item("p", "s", json!({"name": "x"})), None)
        .await
        .unwrap();
    let add = Update {
        add: vec![("name".into(), 1)],
        ..Update::default()
    };
    assert!(matches!(
        t.update(&key, add, None).await,
        Err(PortError::Invalid(_))
    ));
    let set = Update {
        set: attrs(json!({"ttl": 1})),
        ..Update::default()
    };
    assert!(matches!(
        t.update(&key, set, None).await,
        Err(PortError::Invalid(_))
    ));
    assert!(matches!(
        t.put(item("", "s", json!({})), None).await,
        Err(PortError::Invalid(_))
    ));
    assert_eq!(t.get(&key).await.unwrap().unwrap().version, 1);
    let expiry = Update {
        expires_at: Some(Some(9)),
        ..Update::default()
    };
    assert_eq!(
        t.update(&key, expiry, None).await.unwrap().expires_at,
        Some(9)
    );
    let cleared = Update {
        expires_at: Some(None),
        ..Update::default()
    };
    let after = t
        .update(&key, cleared, Some(Condition::VersionEquals(2)))
        .await
        .unwrap();
    assert_eq!((after.expires_at, after.version), (None, 3));
}

#[tokio::test]
async fn queries_order_by_bytes_and_page_the_index_through_ties() {
    let t = SqliteTable::open(temp_dir("table").join("t.db")).unwrap();
    for sk in ["b", "B", "é", "a", "ab", "a\u{10FFFF}", "中"] {
        let mut it = item("p", sk, json!({}));
        it.gsi1 = Some(Key::new("idx", "same"));
        t.put(it, None).await.unwrap();
    }
    let sks = |items: &[Item]| items.iter().map(|i| i.key.sk.clone()).collect::<Vec<_>>();
    let all = t.query(Query::partition("p")).await.unwrap();
    assert_eq!(
        sks(&all.items),
        vec!["B", "a", "ab", "a\u{10FFFF}", "b", "é", "中"]
    );
    assert_eq!(
        sks(&t
            .query(Query::partition("p").prefix("a"))
            .await
            .unwrap()
            .items),
        vec!["a", "ab", "a\u{10FFFF}"]
    );
    let mut between = Query::partition("p");
    between.range = KeyRange::Between("a".into(), "b".into());
    assert_eq!(
        sks(&t.query(between).await.unwrap().items),
        vec!["a", "ab", "a\u{10FFFF}", "b"]
    );

    for ascending in [true, false] {
        let (mut seen, mut cursor) = (Vec::new(), None);
        loop {
            let mut q = Query::partition("idx").on_gsi1().limit(2).after(cursor);
            q.ascending = ascending;
            let page = t.query(q).await.unwrap();
            seen.extend(sks(&page.items));
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        let mut expected = sks(&all.items);
        if !ascending {
            expected.reverse();
        }
        assert_eq!(
            seen, expected,
            "ties on the index sort key order by the primary key"
        );
    }
    let exact = t.query(Query::partition("p").limit(7)).await.unwrap();
    assert_eq!(
        (exact.items.len(), exact.next),
        (7, None),
        "a full last page has no cursor"
    );
    assert!(matches!(
        t.query(Query::partition("p").after(Some("garbage".into())))
            .await,
        Err(PortError::BadCursor)
    ));
}

trait NowPlus {
    fn now_plus(&self, secs: i64) -> chrono::DateTime<Utc>;
}

impl NowPlus for ManualClock {
    fn now_plus(&self, secs: i64) -> chrono::DateTime<Utc> {
        puhui_ports::Clock::now(self) + chrono::Duration::seconds(secs)
    }
}
