//! An in-memory notifier for tests.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use puhui_ports::{Notification, Notifier, NotifyError};

/// Records every notification delivered, in order, for tests to assert on. It does not
/// deduplicate by key: that is the caller's job, and tests should see when a caller fails at it.
/// [`Self::fail_next`] makes the next sends fail with `Unavailable`, to exercise retries.
#[derive(Debug, Default)]
pub struct MemoryNotifier {
    sent: Mutex<Vec<Notification>>,
    fail_next: AtomicUsize,
    attempts: AtomicUsize,
}

impl MemoryNotifier {
    /// An empty notifier that delivers every message.
    pub fn new() -> Self {
        Self::default()
    }

    /// The notifications delivered so far (failed sends are not included), in order.
    pub fn sent(&self) -> Vec<Notification> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes the next `n` sends fail with [`NotifyError::Unavailable`] (replacing any count
    /// still pending).
    pub fn fail_next(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// How many sends were attempted, failed ones included.
    pub fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }

    /// Forgets what was sent and attempted, and any pending failures.
    pub fn clear(&self) {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.fail_next.store(0, Ordering::SeqCst);
        self.attempts.store(0, Ordering::SeqCst);
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        // Decrement only while positive, atomically, so concurrent sends fail exactly n times.
        let failing = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(NotifyError::Unavailable(
                "MemoryNotifier told to fail".into(),
            ));
        }
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(notification.clone());
        Ok(())
    }
}
