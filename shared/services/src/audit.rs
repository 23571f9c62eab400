//! The append-only record of every data query and score, allowed or refused: who asked, for
//! which firm, under which authorization, what was used and what came back (as hashes and a
//! summary, never raw personal data).
//!
//! | item | pk | sk | gsi1pk / gsi1sk |
//! |---|---|---|---|
//! | audit record | `AUDIT#<bank>` | `<record id>` | `AUDIT` / `<record id>` |
//!
//! Record ids start with a ULID, so a bank's records (and, on the index, everyone's) list in
//! time order. Records are only ever put under `NotExists`: nothing overwrites one.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use puhui_domain::{AuthorizationId, BankId, Error, Uscc};
use puhui_ports::{Condition, Key, PortError, Table};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codec;

/// Whether the request was served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AuditOutcome {
    /// Served.
    Allowed,
    /// Refused, with the reason code (`no_authorization`, `expired`, `no_profile`, …).
    Refused {
        /// Why.
        reason: String,
    },
}

/// One audited request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Id: a ULID, `<job ulid>.<uscc>` for one firm of a batch job, or
    /// `<job ulid>.<uscc>.<interface>` for one firm's interface of an export job.
    pub id: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The bank asking.
    #[schema(value_type = String)]
    pub bank_id: BankId,
    /// The user (token subject).
    pub user: String,
    /// What was done: `model_score`, `batch_score`, a data interface id …
    pub action: String,
    /// The firm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub uscc: Option<Uscc>,
    /// The stated purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<puhui_domain::Purpose>,
    /// The authorization relied on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_id: Option<AuthorizationId>,
    /// What was used: for a score, `<owner>/<model>@<version>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// SHA-256 of the inputs used (canonical JSON), so a result can be reproduced and checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_sha256: Option<String>,
    /// Allowed or refused.
    pub outcome: AuditOutcome,
    /// A short, non-personal summary of the result (outcome, grade, score …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// SHA-256 of the response body sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_sha256: Option<String>,
}

/// A refusal an audited request may end in, with the reason code its record keeps.
pub trait AuditedRefusal: Into<Error> {
    /// The reason code kept in the audit record.
    fn code(&self) -> &'static str;
}

impl AuditRecord {
    /// Sets the outcome of the request on the record — served (with the response's hash),
    /// refused (with the refusal's code) or failed (a fault is recorded too: the request was
    /// made, and nothing was served) — and returns what the caller gets.
    pub fn conclude<T: Serialize, R: AuditedRefusal>(
        &mut self,
        result: Result<Result<T, R>, Error>,
    ) -> Result<T, Error> {
        match result {
            Ok(Ok(served)) => {
                self.response_sha256 = Some(sha256_json(&served));
                Ok(served)
            }
            Ok(Err(refusal)) => {
                self.outcome = AuditOutcome::Refused {
                    reason: refusal.code().into(),
                };
                Err(refusal.into())
            }
            Err(e) => {
                self.outcome = AuditOutcome::Refused {
                    reason: "error".into(),
                };
                Err(e)
            }
        }
    }
}

/// Hex SHA-256 of a JSON value (serde_json writes object keys in their stored order; the
/// maps hashed here are built in a fixed order).
pub fn sha256_json(v: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

/// The audit log over the table.
#[derive(Clone)]
pub struct AuditLog {
    table: Arc<dyn Table>,
}

impl AuditLog {
    /// The log over the table.
    pub fn new(table: Arc<dyn Table>) -> Self {
        AuditLog { table }
    }

    /// The write that appends `record`, for callers that record it inside their own
    /// transaction (so the audited change and its record commit together or not at all).
    pub fn append_op(record: &AuditRecord) -> Result<puhui_ports::TxOp, Error> {
        Ok(puhui_ports::TxOp::Put {
            item: Self::item(record)?,
            condition: Some(Condition::NotExists),
        })
    }

    fn item(record: &AuditRecord) -> Result<puhui_ports::Item, Error> {
        let mut item = codec::to_item(
            Key::new(format!("AUDIT#{}", record.bank_id), record.id.clone()),
            record,
        )?;
        item.gsi1 = Some(Key::new("AUDIT", record.id.clone()));
        Ok(item)
    }

    /// Appends a record. A record with the same id already there is the same request replayed
    /// (a redelivered batch message): returns `false` and writes nothing.
    pub async fn append(&self, record: &AuditRecord) -> Result<bool, Error> {
        match self
            .table
            .put(Self::item(record)?, Some(Condition::NotExists))
            .await
        {
            Ok(()) => Ok(true),
            Err(PortError::ConditionFailed(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// A bank's records, newest first.
    pub async fn of_bank(
        &self,
        bank: &BankId,
        page: crate::PageRequest,
    ) -> Result<crate::Listing<AuditRecord>, Error> {
        let mut query = puhui_ports::Query::partition(format!("AUDIT#{bank}"));
        query.ascending = false;
        crate::paging::page_of(self.table.as_ref(), query, page).await
    }

    /// Every bank's records, newest first (platform staff), through the index.
    pub async fn all(
        &self,
        page: crate::PageRequest,
    ) -> Result<crate::Listing<AuditRecord>, Error> {
        let mut query = puhui_ports::Query::partition("AUDIT").on_gsi1();
        query.ascending = false;
        crate::paging::page_of(self.table.as_ref(), query, page).await
    }
}
