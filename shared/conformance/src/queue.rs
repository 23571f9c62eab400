//! Queue behaviour: delivery and acknowledgement, redelivery after the visibility timeout,
//! dead-lettering after too many receives, batch sends, and deduplication on FIFO queues.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use puhui_ports::{Queue, QueueMessage, ReceivedMessage};

use crate::namespace;

/// The queues under test. Each test gets fresh, empty queues.
#[derive(Clone)]
pub struct QueueFixture {
    /// A standard queue whose messages move to `dead_letter` after `max_receives` receives.
    pub main: Arc<dyn Queue>,
    /// Its dead-letter queue.
    pub dead_letter: Arc<dyn Queue>,
    /// The main queue's receive limit (2 or 3 keeps the test short).
    pub max_receives: u32,
    /// A FIFO queue (deduplication by id).
    pub fifo: Arc<dyn Queue>,
}

/// Expands to one `#[tokio::test]` per queue behaviour, each calling `$make().await`.
#[macro_export]
macro_rules! queue_tests {
    ($make:path) => {
        $crate::queue_tests!(@each $make; delivered_once_when_acknowledged,
            redelivered_after_visibility_timeout, dead_lettered_after_max_receives,
            batch_send_delivers_every_message, fifo_deduplicates_by_id);
    };
    (@each $make:path; $($name:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::queue::$name($make().await).await;
            }
        )+
    };
}

/// Receives until `n` messages arrived or `within` passed.
pub async fn receive_n(
    q: &Arc<dyn Queue>,
    n: usize,
    visibility: Duration,
    within: Duration,
) -> Vec<ReceivedMessage> {
    let deadline = tokio::time::Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < n && tokio::time::Instant::now() < deadline {
        let batch = q.receive(10, visibility).await.unwrap();
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        got.extend(batch);
    }
    got
}

const LONG: Duration = Duration::from_secs(30);

/// A message arrives with its body and count 1; once deleted it never comes back.
pub async fn delivered_once_when_acknowledged(f: QueueFixture) {
    let body = format!("{{\"demand\":\"{}\"}}", namespace("m"));
    let id = f.main.send(QueueMessage::new(&body)).await.unwrap();
    let got = receive_n(&f.main, 1, LONG, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        (
            got[0].id.as_str(),
            got[0].body.as_str(),
            got[0].receive_count
        ),
        (id.as_str(), body.as_str(), 1)
    );
    f.main.delete(&got[0].receipt).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        f.main
            .receive(10, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty()
    );
}

/// An unacknowledged message is hidden for the visibility timeout, then delivered again.
pub async fn redelivered_after_visibility_timeout(f: QueueFixture) {
    f.main.send(QueueMessage::new("retry me")).await.unwrap();
    // A visibility long enough that a slow machine still sees the message hidden, and no fixed
    // sleep: the second receive polls until the message is visible again.
    let first = receive_n(&f.main, 1, Duration::from_secs(3), Duration::from_secs(5)).await;
    assert_eq!(first.len(), 1);
    let during = f.main.receive(10, Duration::from_secs(1)).await.unwrap();
    assert!(during.is_empty(), "hidden while in flight");
    let again = receive_n(&f.main, 1, LONG, Duration::from_secs(15)).await;
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].id.clone(), again[0].receive_count),
        (first[0].id.clone(), 2)
    );
    f.main.delete(&again[0].receipt).await.unwrap();
}

/// After `max_receives` failed deliveries the message moves to the dead-letter queue, intact.
pub async fn dead_lettered_after_max_receives(f: QueueFixture) {
    let body = format!("poison {}", namespace("p"));
    let id = f.main.send(QueueMessage::new(&body)).await.unwrap();
    for attempt in 1..=f.max_receives {
        let got = receive_n(&f.main, 1, Duration::from_secs(1), Duration::from_secs(5)).await;
        assert_eq!(got.len(), 1, "attempt {attempt}");
        assert_eq!(got[0].receive_count, attempt);
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    // As in SQS, the receive that would exceed the limit moves the message instead of delivering it.
    let past_limit = f.main.receive(10, Duration::from_secs(1)).await.unwrap();
    assert!(past_limit.is_empty(), "delivered past the limit");
    let dead = receive_n(&f.dead_letter, 1, LONG, Duration::from_secs(8)).await;
    assert_eq!(dead.len(), 1, "message not dead-lettered");
    assert_eq!(
        (dead[0].id.as_str(), dead[0].body.as_str()),
        (id.as_str(), body.as_str())
    );
    let after = f.main.receive(10, Duration::from_secs(1)).await.unwrap();
    assert!(after.is_empty(), "still on the main queue");
}

/// Ten messages sent in one batch each arrive once.
pub async fn batch_send_delivers_every_message(f: QueueFixture) {
    let bodies: Vec<String> = (0..10).map(|i| format!("batch-{i}")).collect();
    let results = f
        .main
        .send_batch(bodies.iter().map(QueueMessage::new).collect())
        .await
        .unwrap();
    assert_eq!(results.len(), 10);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let got = receive_n(&f.main, 10, LONG, Duration::from_secs(10)).await;
    let received: BTreeSet<_> = got.iter().map(|m| m.body.clone()).collect();
    assert_eq!(received, bodies.into_iter().collect::<BTreeSet<_>>());
    assert_eq!(got.len(), 10, "a message came twice");
    for m in got {
        f.main.delete(&m.receipt).await.unwrap();
    }
}

/// On a FIFO queue a second message with the same deduplication id is dropped.
pub async fn fifo_deduplicates_by_id(f: QueueFixture) {
    let dedup = namespace("dedup");
    let msg = |body: &str| {
        let mut m = QueueMessage::new(body).dedup(&dedup);
        m.group_id = Some("demand-1".into());
        m
    };
    f.fifo.send(msg("first")).await.unwrap();
    f.fifo.send(msg("second")).await.unwrap();
    let mut other = QueueMessage::new("other").dedup(namespace("other"));
    other.group_id = Some("demand-2".into());
    f.fifo.send(other).await.unwrap();
    let got = receive_n(&f.fifo, 3, LONG, Duration::from_secs(4)).await;
    let bodies: BTreeSet<_> = got.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, BTreeSet::from(["first", "other"]));
}
