//! A bank's daily quota of firm data reads: each data-interface query counts one, each firm ×
//! interface pair of a bulk export counts one (reserved when the export is submitted), so an
//! export cannot read past what the bank may query in a day.
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | a bank's reads of one business day | `QUOTA#<bank>` | `DAY#<yyyy-mm-dd>` | `used` (expires two days later) |

use std::future::Future;

use chrono::{DateTime, Utc};
use puhui_domain::time::{business_date, secs_to_next_business_day};
use puhui_domain::{BankId, Error};
use puhui_ports::{Condition, Item, Key, PortError, PortResult, Table, TxOp, Update};
use serde_json::json;

/// The reads asked for do not fit in what is left of the day's quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaExhausted {
    /// The bank's quota of the day.
    pub limit: u64,
    /// Seconds until the next business day, when the quota refills.
    pub retry_after_secs: u64,
}

/// Counts `reads` against the bank's quota of the business day, in one transaction with the
/// writes `commit` adds after the counter's op (which it must put first): the counted work and
/// its count commit together or not at all. The counter is changed by a conditional add (created
/// by the day's first read), so concurrent callers never overshoot.
pub async fn take<F, Fut>(
    table: &dyn Table,
    bank: &BankId,
    limit: u64,
    reads: u64,
    now: DateTime<Utc>,
    mut commit: F,
) -> Result<Result<(), QuotaExhausted>, Error>
where
    F: FnMut(TxOp) -> Fut,
    Fut: Future<Output = PortResult<()>>,
{
    let exhausted = Ok(Err(QuotaExhausted {
        limit,
        retry_after_secs: secs_to_next_business_day(now),
    }));
    if reads == 0 {
        return Ok(Ok(()));
    }
    if reads > limit {
        return exhausted;
    }
    let day = business_date(now);
    let key = Key::new(format!("QUOTA#{bank}"), format!("DAY#{day}"));
    let n = i64::try_from(reads).unwrap_or(i64::MAX);
    // `used + reads <= limit`, as `used < limit - reads + 1`.
    let bound = i64::try_from(limit - reads + 1).unwrap_or(i64::MAX);
    // Three rounds cover the one race: another caller creating the day's counter meanwhile
    // (after it exists, an add fails only on the bound).
    for _ in 0..3 {
        let add = TxOp::Update {
            key: key.clone(),
            update: Update {
                add: vec![("used".into(), n)],
                ..Update::default()
            },
            condition: Some(Condition::Below {
                attr: "used".into(),
                bound,
            }),
        };
        match commit(add).await {
            Ok(()) => return Ok(Ok(())),
            Err(e) if counter_refused(&e) => {}
            Err(e) => return Err(e.into()),
        }
        // The add failed on the bound, or because there was no counter yet; one created since
        // then by a concurrent caller is counted on, not taken as used up.
        if let Some(counter) = table.get(&key).await? {
            let used = counter.attrs.get("used").and_then(|v| v.as_u64());
            if used.is_none_or(|u| u.saturating_add(reads) > limit) {
                return exhausted;
            }
            continue;
        }
        let mut first = Item::new(
            key.clone(),
            json!({"used": n}).as_object().cloned().unwrap_or_default(),
        );
        // Kept two days past the day so an audit of the quota can still read it.
        first.expires_at = day
            .succ_opt()
            .and_then(|d| d.succ_opt())
            .and_then(|d| d.succ_opt())
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp());
        let create = TxOp::Put {
            item: first,
            condition: Some(Condition::NotExists),
        };
        match commit(create).await {
            Ok(()) => return Ok(Ok(())),
            Err(e) if counter_refused(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Unavailable(
        "the quota counter is busy; try again".into(),
    ))
}

/// Whether a transaction failed on the counter's condition (its first op), so the counter must
/// be looked at; anything else is a fault.
fn counter_refused(e: &PortError) -> bool {
    matches!(e, PortError::TransactionCancelled { reasons } if reasons.first().is_some_and(Option::is_some))
}
