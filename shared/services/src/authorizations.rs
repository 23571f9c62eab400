//! Firms' authorizations of banks, stored and checked. The check ([`Authorizations::require`])
//! is the one every data query and score goes through.
//!
//! | item | pk | sk | gsi1pk / gsi1sk |
//! |---|---|---|---|
//! | authorization | `AUTHZ#<uscc>` | `<bank>#<id>` | `AUTHZ_BANK#<bank>` / `<uscc>#<id>` |
//!
//! A firm's partition holds every bank's authorizations (the firm lists and revokes them); a
//! bank's index partition is its authorized portfolio. A bank that claims a financing demand
//! receives one in the claim's own transaction ([`grant_op`]).

use std::sync::Arc;

use puhui_domain::authorization::{Authorization, AuthorizationRefusal, Purpose, live};
use puhui_domain::{AuthorizationId, BankId, Error, Uscc};
use puhui_ports::{Clock, Condition, Key, KeyRange, PortError, Query, Table, TxOp};

use crate::codec;
use crate::paging::all_pages;

fn key(uscc: &Uscc, bank: &BankId, id: AuthorizationId) -> Key {
    Key::new(format!("AUTHZ#{uscc}"), format!("{bank}#{id}"))
}

/// The write that records a new authorization (its id is new, so it never overwrites one),
/// for callers that record one inside their own transaction.
pub fn grant_op(a: &Authorization) -> Result<TxOp, Error> {
    let mut item = codec::to_item(key(&a.uscc, &a.bank_id, a.id), a)?;
    item.gsi1 = Some(Key::new(
        format!("AUTHZ_BANK#{}", a.bank_id),
        format!("{}#{}", a.uscc, a.id),
    ));
    Ok(TxOp::Put {
        item,
        condition: Some(Condition::NotExists),
    })
}

/// Authorization records over the table.
#[derive(Clone)]
pub struct Authorizations {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
}

impl Authorizations {
    /// The store over the table and clock.
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> Self {
        Authorizations { table, clock }
    }

    /// Records a new authorization (its id is new, so it never overwrites one).
    pub async fn grant(&self, a: &Authorization) -> Result<(), Error> {
        self.grant_with(a, vec![]).await
    }

    /// Records a new authorization together with the caller's `also` writes, all or none.
    pub async fn grant_with(&self, a: &Authorization, also: Vec<TxOp>) -> Result<(), Error> {
        let mut ops = vec![grant_op(a)?];
        ops.extend(also);
        match self.table.transact(ops).await {
            Ok(()) => Ok(()),
            Err(PortError::TransactionCancelled { .. } | PortError::ConditionFailed(_)) => {
                Err(Error::Conflict(format!("authorization {} exists", a.id)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Revokes one authorization from now on (a second revocation keeps the first instant).
    pub async fn revoke(
        &self,
        uscc: &Uscc,
        bank: &BankId,
        id: AuthorizationId,
    ) -> Result<Authorization, Error> {
        let k = key(uscc, bank, id);
        let item = self
            .table
            .get(&k)
            .await?
            .ok_or_else(|| Error::NotFound(format!("authorization {id}")))?;
        let mut a: Authorization = codec::from_item(item.clone())?;
        if a.revoked_at.is_some() {
            return Ok(a);
        }
        a.revoked_at = Some(self.clock.now());
        let mut next = codec::to_item(k, &a)?;
        next.gsi1 = item.gsi1;
        next.version = item.version + 1;
        match self
            .table
            .put(next, Some(Condition::VersionEquals(item.version)))
            .await
        {
            Ok(()) => Ok(a),
            Err(PortError::ConditionFailed(_)) => Err(Error::Conflict(
                "the authorization changed meanwhile; try again".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Every authorization the firm gave the bank (live or not).
    pub async fn held(&self, uscc: &Uscc, bank: &BankId) -> Result<Vec<Authorization>, Error> {
        let query = Query {
            range: KeyRange::Prefix(format!("{bank}#")),
            ..Query::partition(format!("AUTHZ#{uscc}"))
        };
        all_pages(self.table.as_ref(), query)
            .await?
            .into_iter()
            .map(codec::from_item)
            .collect()
    }

    /// The live authorization that lets `bank` use `interface` of the firm for `purpose` now,
    /// or why there is none.
    pub async fn require(
        &self,
        uscc: &Uscc,
        bank: &BankId,
        interface: &str,
        purpose: Purpose,
    ) -> Result<Result<Authorization, AuthorizationRefusal>, Error> {
        let held = self.held(uscc, bank).await?;
        Ok(live(&held, interface, purpose, self.clock.now()).cloned())
    }
}
