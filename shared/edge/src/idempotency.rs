//! Idempotent handlers (after Powertools for AWS Lambda): a client retry with the same
//! `Idempotency-Key` (or, without one, the same payload) gets the first response back instead
//! of doing the work twice.
//!
//! A record is claimed with a conditional put (absent or expired), so two concurrent requests
//! with one key cannot both run: the second sees "in progress" (409). A completed record stores
//! the response for `ttl`; a failed attempt deletes its record so the client can retry. An
//! in-progress record left by a crashed invocation expires after `lock_timeout`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use puhui_domain::Error;
use puhui_ports::{Clock, Condition, Item, Key, PortError, Table};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// A response as stored for replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers to replay (e.g. `location`, `etag`).
    pub headers: Vec<(String, String)>,
    /// Body (JSON text).
    pub body: String,
}

/// Whether a response was produced now or replayed from the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The work ran in this request.
    Fresh(StoredResponse),
    /// An earlier request with the same key did the work; this is its response.
    Replayed(StoredResponse),
}

/// The idempotency layer over the document table.
pub struct Idempotency {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    lock_timeout: Duration,
}

/// Longest idempotency key accepted.
pub const MAX_KEY_LEN: usize = 255;

impl Idempotency {
    /// Records kept 24 hours; an in-progress claim expires after 30 seconds.
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> Self {
        Self::with_timeouts(
            table,
            clock,
            Duration::from_secs(24 * 3600),
            Duration::from_secs(30),
        )
    }

    /// With explicit record lifetime and in-progress timeout.
    pub fn with_timeouts(
        table: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
        ttl: Duration,
        lock_timeout: Duration,
    ) -> Self {
        Idempotency {
            table,
            clock,
            ttl,
            lock_timeout,
        }
    }

    /// Runs `work` at most once per (`scope`, key). The key is the client's `Idempotency-Key`,
    /// or the payload's hash when there is none. Reusing a key with a different payload is 422.
    pub async fn run<F, Fut>(
        &self,
        scope: &str,
        key: Option<&str>,
        payload: &[u8],
        work: F,
    ) -> Result<Outcome, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<StoredResponse, Error>>,
    {
        let payload_hash = hex::encode(Sha256::digest(payload));
        let key = match key {
            Some(k)
                if k.is_empty()
                    || k.len() > MAX_KEY_LEN
                    || !k.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                return Err(Error::Malformed {
                    detail: format!(
                        "Idempotency-Key must be 1–{MAX_KEY_LEN} visible ASCII characters"
                    ),
                    errors: vec![puhui_domain::FieldError::new(
                        "header.idempotency-key",
                        "invalid_format",
                        "1–255 visible ASCII characters",
                    )],
                });
            }
            Some(k) => k.to_owned(),
            None => payload_hash.clone(),
        };
        let record_key = Key::new(
            format!(
                "IDEMPOTENCY#{}",
                hex::encode(Sha256::digest(format!("{scope}\n{key}")))
            ),
            "RECORD",
        );
        // Two attempts: a record can expire between our failed claim and our read.
        for _ in 0..2 {
            let now = self.clock.now().timestamp();
            let mut claim = Item::new(
                record_key.clone(),
                obj(json!({"state": "in_progress", "payload_hash": payload_hash})),
            );
            claim.expires_at = Some(now + self.lock_timeout.as_secs() as i64);
            match self
                .table
                .put(claim, Some(Condition::NotExistsOrExpired { now }))
                .await
            {
                Ok(()) => return self.execute(&record_key, &payload_hash, work).await,
                Err(PortError::ConditionFailed(_)) => {}
                Err(e) => return Err(e.into()),
            }
            let Some(existing) = self.table.get(&record_key).await? else {
                continue;
            };
            if existing.expires_at.is_some_and(|t| t <= now) {
                continue;
            }
            if existing.attrs.get("payload_hash").and_then(Value::as_str)
                != Some(payload_hash.as_str())
            {
                return Err(Error::field(
                    "header.idempotency-key",
                    "key_reused",
                    "this Idempotency-Key was already used with a different request",
                ));
            }
            return match existing.attrs.get("response") {
                Some(stored) => serde_json::from_value(stored.clone())
                    .map(Outcome::Replayed)
                    .map_err(|e| Error::Internal(format!("stored response unreadable: {e}"))),
                None => Err(Error::Conflict(
                    "a request with this Idempotency-Key is still in progress".into(),
                )),
            };
        }
        Err(Error::Unavailable(
            "idempotency record is changing; retry".into(),
        ))
    }

    async fn execute<F, Fut>(
        &self,
        record_key: &Key,
        payload_hash: &str,
        work: F,
    ) -> Result<Outcome, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<StoredResponse, Error>>,
    {
        match work().await {
            Ok(response) => {
                let mut done = Item::new(
                    record_key.clone(),
                    obj(
                        json!({"state": "completed", "payload_hash": payload_hash, "response": response}),
                    ),
                );
                done.version = 2;
                done.expires_at = Some(self.clock.now().timestamp() + self.ttl.as_secs() as i64);
                if let Err(e) = self.table.put(done, None).await {
                    // The work is done; failing the request now would invite a duplicate.
                    tracing::warn!(error = %e, "could not store idempotency record");
                }
                Ok(Outcome::Fresh(response))
            }
            Err(e) => {
                if let Err(del) = self.table.delete(record_key, None).await {
                    tracing::warn!(error = %del, "could not release idempotency record");
                }
                Err(e)
            }
        }
    }
}

impl Outcome {
    /// The HTTP response: the stored status, headers and JSON body, marked
    /// `Idempotent-Replayed: true` when it is a replay.
    pub fn into_response(self) -> axum::response::Response {
        use axum::http::{HeaderValue, StatusCode, header};
        use axum::response::IntoResponse;
        let (stored, replayed) = match self {
            Outcome::Fresh(r) => (r, false),
            Outcome::Replayed(r) => (r, true),
        };
        let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
        let mut resp = (status, stored.body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in stored.headers {
            if let (Ok(n), Ok(v)) = (
                header::HeaderName::try_from(name),
                HeaderValue::from_str(&value),
            ) {
                h.insert(n, v);
            }
        }
        if replayed {
            h.insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        resp
    }
}

/// The client's `Idempotency-Key` header: `None` if absent; a value that is not visible ASCII
/// becomes `"\0"`, which [`Idempotency::run`] refuses with a 400.
pub fn key_header(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap_or("\u{0}"))
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    use puhui_ports::ManualClock;

    fn setup() -> (Idempotency, Arc<ManualClock>) {
        let dir = std::env::temp_dir().join(format!("puhui-idem-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let table = Arc::new(puhui_embedded::SqliteTable::open(dir.join("t.db")).unwrap());
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let idem = Idempotency::with_timeouts(
            table,
            clock.clone(),
            Duration::from_secs(3600),
            Duration::from_secs(30),
        );
        (idem, clock)
    }

    fn response(body: &str) -> StoredResponse {
        StoredResponse {
            status: 201,
            headers: vec![("etag".into(), "\"1\"".into())],
            body: body.into(),
        }
    }

    #[tokio::test]
    async fn a_retry_replays_the_first_response_without_running_again() {
        let (idem, _) = setup();
        let runs = AtomicU32::new(0);
        let work = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(response("first"))
        };
        let first = idem
            .run("bank:create", Some("k1"), b"{}", work)
            .await
            .unwrap();
        let second = idem
            .run("bank:create", Some("k1"), b"{}", || async {
                Ok(response("second"))
            })
            .await
            .unwrap();
        assert_eq!(first, Outcome::Fresh(response("first")));
        assert_eq!(second, Outcome::Replayed(response("first")));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Another scope (tenant) with the same key is independent.
        let other = idem
            .run("other:create", Some("k1"), b"{}", || async {
                Ok(response("other"))
            })
            .await
            .unwrap();
        assert_eq!(other, Outcome::Fresh(response("other")));
    }

    #[tokio::test]
    async fn without_a_key_the_payload_is_the_key() {
        let (idem, _) = setup();
        idem.run("s", None, b"{\"a\":1}", || async { Ok(response("a")) })
            .await
            .unwrap();
        let again = idem
            .run("s", None, b"{\"a\":1}", || async { Ok(response("b")) })
            .await
            .unwrap();
        assert_eq!(again, Outcome::Replayed(response("a")));
        let different = idem
            .run("s", None, b"{\"a\":2}", || async { Ok(response("c")) })
            .await
            .unwrap();
        assert_eq!(different, Outcome::Fresh(response("c")));
    }

    #[tokio::test]
    async fn reuse_with_another_payload_is_refused() {
        let (idem, _) = setup();
        idem.run("s", Some("k"), b"one", || async { Ok(response("a")) })
            .await
            .unwrap();
        let err = idem
            .run("s", Some("k"), b"two", || async { Ok(response("b")) })
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Validation(ref v) if v[0].code == "key_reused"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn in_progress_is_a_conflict_until_the_claim_expires() {
        let (idem, clock) = setup();
        let idem = Arc::new(idem);
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (finish_tx, finish_rx) = tokio::sync::oneshot::channel::<()>();
        let slow = {
            let idem = idem.clone();
            tokio::spawn(async move {
                idem.run("s", Some("k"), b"p", || async move {
                    started_tx.send(()).unwrap();
                    finish_rx.await.unwrap();
                    Ok(response("slow"))
                })
                .await
            })
        };
        started_rx.await.unwrap();
        let err = idem
            .run("s", Some("k"), b"p", || async { Ok(response("fast")) })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        clock.advance(chrono::Duration::seconds(31));
        let taken_over = idem
            .run("s", Some("k"), b"p", || async { Ok(response("takeover")) })
            .await
            .unwrap();
        assert_eq!(taken_over, Outcome::Fresh(response("takeover")));
        finish_tx.send(()).unwrap();
        slow.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_failed_attempt_can_be_retried_and_records_expire() {
        let (idem, clock) = setup();
        let err = idem
            .run("s", Some("k"), b"p", || async {
                Err(Error::Unavailable("db".into()))
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)));
        let ok = idem
            .run("s", Some("k"), b"p", || async {
                Ok(response("second try"))
            })
            .await
            .unwrap();
        assert_eq!(ok, Outcome::Fresh(response("second try")));
        clock.advance(chrono::Duration::seconds(3601));
        let after_ttl = idem
            .run("s", Some("k"), b"p", || async { Ok(response("new day")) })
            .await
            .unwrap();
        assert_eq!(after_ttl, Outcome::Fresh(response("new day")));
        let bad = idem
            .run("s", Some("has space"), b"p", || async { Ok(response("x")) })
            .await
            .unwrap_err();
        assert!(matches!(bad, Error::Malformed { .. }));
    }
}
