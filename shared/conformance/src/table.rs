//! Table behaviour: conditional writes under races, updates, queries with pagination on the
//! table and the secondary index, and all-or-nothing transactions.

use std::collections::BTreeSet;
use std::sync::Arc;

use puhui_ports::{Condition, Item, Key, KeyRange, PortError, Query, Table, TxOp, Update};
use serde_json::{Map, Value, json};

use crate::namespace;

fn attrs(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn item(pk: &str, sk: &str, v: Value) -> Item {
    Item::new(Key::new(pk, sk), attrs(v))
}

/// Expands to one `#[tokio::test]` per table behaviour, each calling `$make().await`.
#[macro_export]
macro_rules! table_tests {
    ($make:path) => {
        $crate::table_tests!(@each $make; put_get_round_trip, put_not_exists_refuses_second_write,
            fifty_concurrent_creators_one_wins, version_check_detects_lost_updates,
            update_sets_removes_adds_and_bumps_version, below_bound_admits_exactly_three_of_ten,
            update_and_delete_conditions, query_prefix_range_order, pagination_visits_every_item_once,
            secondary_index_is_sparse_and_follows_updates, transaction_fails_as_a_whole,
            transaction_applies_every_op, reserved_attribute_names_are_refused,
            expired_items_can_be_replaced, numbers_and_nested_values_survive,
            foreign_or_garbage_cursors_are_refused);
    };
    (@each $make:path; $($name:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                $crate::table::$name($make().await).await;
            }
        )+
    };
}

/// An item reads back exactly as written, including index key, version and expiry.
pub async fn put_get_round_trip(t: Arc<dyn Table>) {
    let ns = namespace("rt");
    let mut it = item(
        &ns,
        "A",
        json!({"name": "张三有限公司", "n": 7, "ok": true, "list": [1, "x"], "none": null}),
    );
    it.gsi1 = Some(Key::new(format!("{ns}-idx"), "1"));
    it.version = 3;
    it.expires_at = Some(4_102_444_800);
    t.put(it.clone(), None).await.unwrap();
    assert_eq!(t.get(&it.key).await.unwrap(), Some(it.clone()));
    assert_eq!(t.get(&Key::new(&ns, "B")).await.unwrap(), None);
    // A plain put replaces the whole item.
    let replaced = item(&ns, "A", json!({"other": 1}));
    t.put(replaced.clone(), None).await.unwrap();
    assert_eq!(t.get(&it.key).await.unwrap(), Some(replaced));
}

/// `NotExists` lets the first write through and refuses the second, leaving the first intact.
pub async fn put_not_exists_refuses_second_write(t: Arc<dyn Table>) {
    let ns = namespace("ne");
    t.put(item(&ns, "A", json!({"v": 1})), Some(Condition::NotExists))
        .await
        .unwrap();
    let err = t
        .put(item(&ns, "A", json!({"v": 2})), Some(Condition::NotExists))
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::ConditionFailed(_)), "{err:?}");
    assert_eq!(
        t.get(&Key::new(&ns, "A")).await.unwrap().unwrap().attrs["v"],
        json!(1)
    );
}

/// Fifty concurrent conditional creates of one key: exactly one succeeds.
pub async fn fifty_concurrent_creators_one_wins(t: Arc<dyn Table>) {
    let ns = namespace("race");
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let t = t.clone();
            let it = item(&ns, "only", json!({"writer": i}));
            tokio::spawn(async move { t.put(it, Some(Condition::NotExists)).await })
        })
        .collect();
    let results = futures::future::join_all(tasks).await;
    let wins = results.iter().filter(|r| matches!(r, Ok(Ok(())))).count();
    let losses = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(PortError::ConditionFailed(_)))))
        .count();
    assert_eq!((wins, losses), (1, 49), "{results:?}");
}

/// Optimistic concurrency: a write based on a stale version fails.
pub async fn version_check_detects_lost_updates(t: Arc<dyn Table>) {
    let ns = namespace("ver");
    let mut it = item(&ns, "A", json!({"v": "first"}));
    t.put(it.clone(), Some(Condition::NotExists)).await.unwrap();
    it.version = 2;
    it.attrs = attrs(json!({"v": "second"}));
    t.put(it.clone(), Some(Condition::VersionEquals(1)))
        .await
        .unwrap();
    it.attrs = attrs(json!({"v": "stale"}));
    let err = t
        .put(it.clone(), Some(Condition::VersionEquals(1)))
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::ConditionFailed(_)), "{err:?}");
    let stored = t.get(&it.key).await.unwrap().unwrap();
    assert_eq!(
        (stored.version, stored.attrs["v"].clone()),
        (2, json!("second"))
    );
    let err = t
        .put(
            item(&ns, "missing", json!({})),
            Some(Condition::VersionEquals(1)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, PortError::ConditionFailed(_)),
        "absent item has no version: {err:?}"
    );
}

/// Update sets, removes and adds attributes, bumps the version and returns the new item.
pub async fn update_sets_removes_adds_and_bumps_version(t: Arc<dyn Table>) {
    let ns = namespace("upd");
    let key = Key::new(&ns, "A");
    t.put(
        item(&ns, "A", json!({"keep": 1, "drop": 2, "count": 5})),
        None,
    )
    .await
    .unwrap();
    let update = Update {
        set: attrs(json!({"name": "new", "keep": 10})),
        remove: vec!["drop".into()],
        add: vec![("count".into(), 3), ("fresh".into(), 2)],
        ..Update::default()
    };
    let after = t
        .update(&key, update, Some(Condition::VersionEquals(1)))
        .await
        .unwrap();
    assert_eq!(after.version, 2);
    assert_eq!(
        after.attrs,
        attrs(json!({"keep": 10, "count": 8, "fresh": 2, "name": "new"}))
    );
    assert_eq!(t.get(&key).await.unwrap(), Some(after));
    // Without a condition an update creates the item, starting at version 1.
    let created = t
        .update(
            &Key::new(&ns, "B"),
            Update {
                add: vec![("n".into(), 1)],
                ..Update::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!((created.version, created.attrs["n"].clone()), (1, json!(1)));
}

/// A bounded counter (`Below`): of ten concurrent increments with bound 3, exactly three succeed.
pub async fn below_bound_admits_exactly_three_of_ten(t: Arc<dyn Table>) {
    let ns = namespace("below");
    let key = Key::new(&ns, "demand");
    t.put(item(&ns, "demand", json!({"title": "x"})), None)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (t, key) = (t.clone(), key.clone());
            tokio::spawn(async move {
                let up = Update {
                    add: vec![("claims".into(), 1)],
                    ..Update::default()
                };
                t.update(
                    &key,
                    up,
                    Some(Condition::Below {
                        attr: "claims".into(),
                        bound: 3,
                    }),
                )
                .await
            })
        })
        .collect();
    let results = futures::future::join_all(tasks).await;
    let ok = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(PortError::ConditionFailed(_)))))
        .count();
    assert_eq!((ok, refused), (3, 7), "{results:?}");
    assert_eq!(
        t.get(&key).await.unwrap().unwrap().attrs["claims"],
        json!(3)
    );
    let err = t
        .update(
            &Key::new(&ns, "absent"),
            Update::default(),
            Some(Condition::Below {
                attr: "claims".into(),
                bound: 3,
            }),
        )
        .await;
    assert!(
        matches!(err, Err(PortError::ConditionFailed(_))),
        "Below requires the item: {err:?}"
    );
}

/// `Exists` guards updates and deletes of absent items; unconditional deletes are idempotent.
pub async fn update_and_delete_conditions(t: Arc<dyn Table>) {
    let ns = namespace("cond");
    let absent = Key::new(&ns, "absent");
    let err = t
        .update(&absent, Update::default(), Some(Condition::Exists))
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::ConditionFailed(_)), "{err:?}");
    assert_eq!(
        t.get(&absent).await.unwrap(),
        None,
        "a refused update must not create the item"
    );
    t.delete(&absent, None).await.unwrap();
    let err = t
        .delete(&absent, Some(Condition::Exists))
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::ConditionFailed(_)), "{err:?}");
    t.put(item(&ns, "A", json!({})), None).await.unwrap();
    let err = t
        .delete(&Key::new(&ns, "A"), Some(Condition::VersionEquals(9)))
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::ConditionFailed(_)), "{err:?}");
    t.delete(&Key::new(&ns, "A"), Some(Condition::VersionEquals(1)))
        .await
        .unwrap();
    assert_eq!(t.get(&Key::new(&ns, "A")).await.unwrap(), None);
}

async fn seed(t: &Arc<dyn Table>, ns: &str, sks: &[&str]) {
    for sk in sks {
        t.put(item(ns, sk, json!({"label": sk})), None)
            .await
            .unwrap();
    }
}

fn sks(items: &[Item]) -> Vec<String> {
    items.iter().map(|i| i.key.sk.clone()).collect()
}

/// Prefix and between ranges, both orders; other partitions never leak in.
pub async fn query_prefix_range_order(t: Arc<dyn Table>) {
    let ns = namespace("q");
    seed(&t, &ns, &["A#1", "A#2", "A#3", "B#1", "B#2", "C"]).await;
    seed(&t, &format!("{ns}x"), &["A#9"]).await;
    let page = t.query(Query::partition(&ns).prefix("A#")).await.unwrap();
    assert_eq!(
        (sks(&page.items), page.next),
        (vec!["A#1".to_string(), "A#2".into(), "A#3".into()], None)
    );
    let mut q = Query::partition(&ns);
    q.range = KeyRange::Between("A#2".into(), "B#1".into());
    q.ascending = false;
    assert_eq!(
        sks(&t.query(q).await.unwrap().items),
        vec!["B#1", "A#3", "A#2"]
    );
    assert_eq!(t.query(Query::partition(&ns)).await.unwrap().items.len(), 6);
    assert!(
        t.query(Query::partition(&ns).prefix("Z"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// Paging with a small limit visits every item exactly once, in order, and ends with `next: None`.
pub async fn pagination_visits_every_item_once(t: Arc<dyn Table>) {
    let ns = namespace("page");
    let all: Vec<String> = (0..25).map(|i| format!("ITEM#{i:03}")).collect();
    for sk in &all {
        t.put(item(&ns, sk, json!({})), None).await.unwrap();
    }
    let (mut seen, mut cursor, mut pages) = (Vec::new(), None, 0);
    loop {
        let page = t
            .query(
                Query::partition(&ns)
                    .prefix("ITEM#")
                    .limit(10)
                    .after(cursor),
            )
            .await
            .unwrap();
        assert!(page.items.len() <= 10);
        seen.extend(sks(&page.items));
        pages += 1;
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(seen, all);
    assert!((3..=4).contains(&pages), "{pages} pages");
}

/// Only items with an index key are in the index; updates move items in and out of it.
pub async fn secondary_index_is_sparse_and_follows_updates(t: Arc<dyn Table>) {
    let ns = namespace("gsi");
    let idx = format!("{ns}-catalogue");
    for (sk, indexed) in [("P1", true), ("P2", false), ("P3", true)] {
        let mut it = item(&ns, sk, json!({"name": sk}));
        if indexed {
            it.gsi1 = Some(Key::new(&idx, format!("R#{sk}")));
        }
        t.put(it, None).await.unwrap();
    }
    let page = t.query(Query::partition(&idx).on_gsi1()).await.unwrap();
    assert_eq!(
        page.items
            .iter()
            .map(|i| i.key.sk.as_str())
            .collect::<Vec<_>>(),
        vec!["P1", "P3"]
    );
    assert_eq!(
        page.items[0].attrs["name"],
        json!("P1"),
        "index queries return whole items"
    );
    let out = Update {
        gsi1: Some(None),
        ..Update::default()
    };
    t.update(&Key::new(&ns, "P1"), out, None).await.unwrap();
    let into = Update {
        gsi1: Some(Some(Key::new(&idx, "R#P2"))),
        ..Update::default()
    };
    t.update(&Key::new(&ns, "P2"), into, None).await.unwrap();
    let mut pks = BTreeSet::new();
    let (mut cursor, mut keys) = (None, Vec::new());
    loop {
        let page = t
            .query(Query::partition(&idx).on_gsi1().limit(1).after(cursor))
            .await
            .unwrap();
        for i in &page.items {
            pks.insert(i.key.pk.clone());
            keys.push(i.key.sk.clone());
        }
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(keys, vec!["P2", "P3"]);
    assert_eq!(pks.len(), 1);
}

/// One failing condition cancels every operation and says which one failed.
pub async fn transaction_fails_as_a_whole(t: Arc<dyn Table>) {
    let ns = namespace("txf");
    t.put(item(&ns, "existing", json!({"v": 1})), None)
        .await
        .unwrap();
    t.put(item(&ns, "other", json!({"v": 1})), None)
        .await
        .unwrap();
    let ops = vec![
        TxOp::Put {
            item: item(&ns, "new", json!({})),
            condition: Some(Condition::NotExists),
        },
        TxOp::Update {
            key: Key::new(&ns, "other"),
            update: Update {
                set: attrs(json!({"v": 2})),
                ..Update::default()
            },
            condition: None,
        },
        TxOp::Put {
            item: item(&ns, "existing", json!({})),
            condition: Some(Condition::NotExists),
        },
    ];
    match t.transact(ops).await {
        Err(PortError::TransactionCancelled { reasons }) => {
            assert_eq!(reasons.len(), 3, "{reasons:?}");
            assert!(
                reasons[0].is_none() && reasons[1].is_none() && reasons[2].is_some(),
                "{reasons:?}"
            );
        }
        other => panic!("expected a cancelled transaction, got {other:?}"),
    }
    assert_eq!(t.get(&Key::new(&ns, "new")).await.unwrap(), None);
    assert_eq!(
        t.get(&Key::new(&ns, "other")).await.unwrap().unwrap().attrs["v"],
        json!(1)
    );
}

/// A transaction that holds applies every put, update, delete and check.
pub async fn transaction_applies_every_op(t: Arc<dyn Table>) {
    let ns = namespace("txok");
    seed(&t, &ns, &["counter", "gone", "guard"]).await;
    let ops = vec![
        TxOp::Put {
            item: item(&ns, "demand", json!({"s": "submitted"})),
            condition: Some(Condition::NotExists),
        },
        TxOp::Update {
            key: Key::new(&ns, "counter"),
            update: Update {
                add: vec![("n".into(), 1)],
                ..Update::default()
            },
            condition: Some(Condition::Below {
                attr: "n".into(),
                bound: 3,
            }),
        },
        TxOp::Delete {
            key: Key::new(&ns, "gone"),
            condition: Some(Condition::Exists),
        },
        TxOp::Check {
            key: Key::new(&ns, "guard"),
            condition: Condition::VersionEquals(1),
        },
    ];
    t.transact(ops).await.unwrap();
    assert!(t.get(&Key::new(&ns, "demand")).await.unwrap().is_some());
    let counter = t.get(&Key::new(&ns, "counter")).await.unwrap().unwrap();
    assert_eq!((counter.version, counter.attrs["n"].clone()), (2, json!(1)));
    assert_eq!(t.get(&Key::new(&ns, "gone")).await.unwrap(), None);
    assert_eq!(
        t.get(&Key::new(&ns, "guard"))
            .await
            .unwrap()
            .unwrap()
            .version,
        1,
        "checks do not write"
    );
}

/// Attributes may not shadow the key and bookkeeping names.
pub async fn reserved_attribute_names_are_refused(t: Arc<dyn Table>) {
    let ns = namespace("res");
    for name in puhui_ports::table::RESERVED {
        let err = t
            .put(item(&ns, "A", json!({ name: "x" })), None)
            .await
            .unwrap_err();
        assert!(matches!(err, PortError::Invalid(_)), "{name}: {err:?}");
    }
}

/// `NotExistsOrExpired` replaces an expired item and refuses a live one (idempotency records).
pub async fn expired_items_can_be_replaced(t: Arc<dyn Table>) {
    let ns = namespace("ttl");
    let mut it = item(&ns, "rec", json!({"state": "old"}));
    it.expires_at = Some(1_000);
    t.put(it.clone(), None).await.unwrap();
    it.expires_at = Some(5_000);
    it.attrs = attrs(json!({"state": "new"}));
    t.put(
        it.clone(),
        Some(Condition::NotExistsOrExpired { now: 2_000 }),
    )
    .await
    .unwrap();
    let err = t
        .put(
            it.clone(),
            Some(Condition::NotExistsOrExpired { now: 3_000 }),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::ConditionFailed(_)), "{err:?}");
    t.put(
        item(&ns, "fresh", json!({})),
        Some(Condition::NotExistsOrExpired { now: 3_000 }),
    )
    .await
    .unwrap();
    let mut forever = item(&ns, "forever", json!({}));
    forever.expires_at = None;
    t.put(forever.clone(), None).await.unwrap();
    let err = t
        .put(
            forever,
            Some(Condition::NotExistsOrExpired { now: i64::MAX }),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, PortError::ConditionFailed(_)),
        "no expiry never expires: {err:?}"
    );
}

/// Large integers, negative numbers, decimals, empty strings and nested objects survive storage.
pub async fn numbers_and_nested_values_survive(t: Arc<dyn Table>) {
    let ns = namespace("num");
    let v = json!({"big": 9_007_199_254_740_993_i64, "neg": -42, "ratio": -0.125, "empty": "",
                   "nested": {"a": [1, {"b": false}], "c": "中文"}, "list": []});
    let it = item(&ns, "A", v.clone());
    t.put(it.clone(), None).await.unwrap();
    assert_eq!(t.get(&it.key).await.unwrap().unwrap().attrs, attrs(v));
}

/// Cursors are client-held: garbage, or a cursor from another partition or index, is `BadCursor`.
pub async fn foreign_or_garbage_cursors_are_refused(t: Arc<dyn Table>) {
    let ns = namespace("cur");
    let other = format!("{ns}-other");
    for pk in [&ns, &other] {
        for i in 0..3 {
            let mut it = item(pk, &format!("S#{i}"), json!({}));
            it.gsi1 = Some(Key::new(format!("{pk}-idx"), format!("S#{i}")));
            t.put(it, None).await.unwrap();
        }
    }
    let page = t.query(Query::partition(&other).limit(1)).await.unwrap();
    let foreign = page.next.expect("more pages");
    let err = t
        .query(Query::partition(&ns).limit(1).after(Some(foreign.clone())))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PortError::BadCursor),
        "cursor of another partition: {err:?}"
    );
    let err = t
        .query(
            Query::partition(format!("{other}-idx"))
                .on_gsi1()
                .limit(1)
                .after(Some(foreign)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, PortError::BadCursor),
        "table cursor on the index: {err:?}"
    );
    let ranged = t
        .query(Query::partition(&ns).prefix("S#").limit(1))
        .await
        .unwrap()
        .next
        .expect("more pages");
    let err = t
        .query(Query::partition(&ns).prefix("T#").after(Some(ranged)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PortError::BadCursor),
        "cursor outside the sort-key range: {err:?}"
    );
    for garbage in ["", "not base64 !", "e30", "eyJwayI6MX0"] {
        let err = t
            .query(Query::partition(&ns).after(Some(garbage.into())))
            .await
            .unwrap_err();
        assert!(matches!(err, PortError::BadCursor), "{garbage:?}: {err:?}");
    }
}
