//! Puhui ports: the storage, messaging, notification, time and identity capabilities the use cases need,
//! as traits. Adapters (`puhui-aws`, `puhui-embedded`) implement them with the same behaviour,
//! proven by one conformance suite (`puhui-conformance`).
//!
//! The table follows DynamoDB semantics (single-table design, conditional writes, one secondary
//! index, cursor pagination, all-or-nothing transactions) because that is the production store;
//! the embedded adapter reproduces them on SQLite.

pub mod blob;
pub mod notify;
pub mod queue;
pub mod table;
pub mod wechat;

use chrono::{DateTime, Utc};

/// Re-exported so adapters and tests name the same time types as the ports.
pub use chrono;

pub use blob::{BlobMeta, BlobStore, Presigned};
pub use notify::{Notification, Notifier, NotifyError, Recipient};
pub use queue::{Queue, QueueMessage, ReceivedMessage};
pub use table::{Condition, IndexName, Item, Key, KeyRange, Page, Query, Table, TxOp, Update};
pub use wechat::{VerifiedPhone, WeChatError, WeChatIdentity, WeChatSession};

/// Errors every port may return. Adapters map their backend's errors onto these.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// A write's condition did not hold (nothing was written).
    #[error("condition failed: {0}")]
    ConditionFailed(String),
    /// A transaction was cancelled; `reasons[i]` says why op `i` failed (`None` if it did not).
    #[error("transaction cancelled: {reasons:?}")]
    TransactionCancelled { reasons: Vec<Option<String>> },
    /// A query cursor that is malformed or was issued for a different query.
    #[error("invalid cursor")]
    BadCursor,
    /// The request is not acceptable to the backend (bad key, reserved attribute, too large).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The backend throttled or is unreachable; retrying may succeed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("backend error: {0}")]
    Backend(String),
}

impl From<PortError> for puhui_domain::Error {
    fn from(e: PortError) -> Self {
        match e {
            PortError::ConditionFailed(m) => puhui_domain::Error::Conflict(m),
            PortError::TransactionCancelled { .. } => puhui_domain::Error::Conflict(e.to_string()),
            PortError::Unavailable(m) => puhui_domain::Error::Unavailable(m),
            PortError::BadCursor => puhui_domain::Error::field(
                "cursor",
                "invalid_cursor",
                "cursor is malformed or belongs to another query",
            ),
            PortError::Invalid(m) | PortError::Backend(m) => puhui_domain::Error::Internal(m),
        }
    }
}

/// Result of a port call.
pub type PortResult<T> = Result<T, PortError>;

/// The current time. Injected so tests and the demo can move it.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock tests set and advance by hand.
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock stopped at `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        ManualClock(std::sync::Mutex::new(at))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }

    /// Sets the clock.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Source of new entity ids.
pub trait IdGenerator: Send + Sync {
    /// A new ULID, monotonic within this process.
    fn ulid(&self) -> ulid::Ulid;
}

/// ULIDs from the system clock and randomness, monotonic within the process.
#[derive(Default)]
pub struct UlidGenerator(std::sync::Mutex<ulid::Generator>);

impl IdGenerator for UlidGenerator {
    fn ulid(&self) -> ulid::Ulid {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Overflow needs 2^80 ids in one millisecond; fall back to a fresh id rather than panic.
        g.generate().unwrap_or_else(|_| ulid::Ulid::new())
    }
}
