//! A bank's watch list: the firms its scans look at (its borrowers).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use puhui_domain::risk::{WatchEntry, WatchSource};
use puhui_domain::{BankId, Error, FieldError, Principal, Uscc};
use puhui_ports::{Query, TxOp, Update};
use serde::{Deserialize, Serialize};

use super::{RiskPorts, risk_bank, watch_key};
use crate::codec;
use crate::paging::{Listing, PageRequest, all_pages, page_of};

/// Most firms one bulk upload may name.
pub const MAX_BULK: usize = 5000;

/// The operation that puts `uscc` on the bank's watch list (an upsert: adding a firm twice
/// keeps one entry), for use inside other transactions such as a claim's approval.
pub fn watch_op(
    bank: &BankId,
    uscc: &Uscc,
    source: WatchSource,
    by: &str,
    now: DateTime<Utc>,
) -> Result<TxOp, Error> {
    let entry = WatchEntry {
        uscc: uscc.clone(),
        source,
        added_at: now,
        added_by: by.to_owned(),
    };
    Ok(TxOp::Update {
        key: watch_key(bank, uscc),
        update: Update {
            set: codec::attrs(&entry)?,
            ..Update::default()
        },
        condition: None,
    })
}

/// What a bulk upload did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BulkReport {
    /// Firms named in the upload (after removing repeats).
    pub received: usize,
    /// Firms newly on the list.
    pub added: usize,
    /// Firms that were on it already.
    pub already_watched: usize,
}

/// A bulk upload: the firms' codes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkUpload {
    /// USCCs (1–5000); every invalid one is reported with its index and nothing is added.
    pub usccs: Vec<String>,
}

/// Watch-list use cases.
#[derive(Clone)]
pub struct WatchListService {
    ports: RiskPorts,
}

impl WatchListService {
    /// The service over the risk ports.
    pub fn new(ports: RiskPorts) -> Self {
        WatchListService { ports }
    }

    /// The caller's watch list, in USCC order.
    pub async fn list(
        &self,
        who: &Principal,
        page: PageRequest,
    ) -> Result<Listing<WatchEntry>, Error> {
        let bank = risk_bank(who)?;
        page_of(
            self.ports.table.as_ref(),
            Query::partition(format!("WATCH#{bank}")),
            page,
        )
        .await
    }

    /// Adds one firm; returns the entry and whether it is new.
    pub async fn add(&self, who: &Principal, uscc: &Uscc) -> Result<(WatchEntry, bool), Error> {
        let bank = risk_bank(who)?;
        let key = watch_key(bank, uscc);
        if let Some(existing) = self.ports.table.get(&key).await? {
            return Ok((codec::from_item(existing)?, false));
        }
        let op = watch_op(
            bank,
            uscc,
            WatchSource::Manual,
            &who.subject,
            self.ports.clock.now(),
        )?;
        self.ports.table.transact(vec![op]).await?;
        let stored =
            self.ports.table.get(&key).await?.ok_or_else(|| {
                Error::Internal("watch entry vanished after it was written".into())
            })?;
        Ok((codec::from_item(stored)?, true))
    }

    /// Removes one firm (its alerts stay).
    pub async fn remove(&self, who: &Principal, uscc: &Uscc) -> Result<(), Error> {
        let bank = risk_bank(who)?;
        let key = watch_key(bank, uscc);
        if self.ports.table.get(&key).await?.is_none() {
            return Err(Error::NotFound(format!("{uscc} on the watch list")));
        }
        self.ports.table.delete(&key, None).await?;
        Ok(())
    }

    /// Adds many firms at once. Every code is checked first; if any is invalid, the upload is
    /// refused (422, each bad code with its index) and nothing is added.
    pub async fn bulk(&self, who: &Principal, upload: BulkUpload) -> Result<BulkReport, Error> {
        let bank = risk_bank(who)?;
        if upload.usccs.is_empty() || upload.usccs.len() > MAX_BULK {
            return Err(Error::field(
                "usccs",
                "out_of_range",
                format!("1–{MAX_BULK} codes per upload"),
            ));
        }
        let mut errors = Vec::new();
        let mut firms = Vec::new();
        let mut seen = HashSet::new();
        for (i, raw) in upload.usccs.iter().enumerate() {
            match Uscc::parse(raw.trim()) {
                Ok(u) => {
                    if seen.insert(u.clone()) {
                        firms.push(u);
                    }
                }
                Err(e) => errors.push(FieldError::from(e).under(&format!("usccs[{i}]"))),
            }
        }
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        let existing = self.watched(bank).await?;
        let now = self.ports.clock.now();
        let new: Vec<&Uscc> = firms
            .iter()
            .filter(|u| !existing.contains(u.as_str()))
            .collect();
        for chunk in new.chunks(puhui_ports::table::MAX_TX_OPS) {
            let ops = chunk
                .iter()
                .map(|u| watch_op(bank, u, WatchSource::Bulk, &who.subject, now))
                .collect::<Result<Vec<_>, _>>()?;
            self.ports.table.transact(ops).await?;
        }
        Ok(BulkReport {
            received: firms.len(),
            added: new.len(),
            already_watched: firms.len() - new.len(),
        })
    }

    /// Every firm on the bank's list (what a scan filters a shard by).
    pub async fn watched(&self, bank: &BankId) -> Result<HashSet<String>, Error> {
        let items = all_pages(
            self.ports.table.as_ref(),
            Query::partition(format!("WATCH#{bank}")).limit(1000),
        )
        .await?;
        Ok(items.into_iter().map(|i| i.key.sk).collect())
    }
}
