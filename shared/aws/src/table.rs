//! [`DynamoTable`]: the document table port on one DynamoDB table (see the crate docs for the
//! key schema).

mod codec;
mod cursor;
mod expr;

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValue, TransactWriteItem,
    Update as DynamoUpdate,
};
use puhui_ports::table::{check_item, check_key, check_transaction, check_update};
use puhui_ports::{
    Condition, IndexName, Item, Key, KeyRange, Page, PortError, PortResult, Query, Table, TxOp,
    Update,
};

use crate::errors::{build_error, classify, sdk_error};
use codec::{decode_item, encode_item, key_map};
use cursor::{cursor_after, decode_cursor};
use expr::{Expr, condition_expression, update_expression};

/// The global secondary index's name.
pub const GSI1: &str = "gsi1";
/// Most operations in one transaction (DynamoDB's TransactWriteItems limit is 100; the port's
/// contract is 25).
pub use puhui_ports::table::MAX_TX_OPS;
/// Largest page a query returns.
const MAX_PAGE: u32 = 1000;

/// The document table on one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoTable {
    client: Client,
    table_name: String,
}

impl DynamoTable {
    /// The table `table_name`, reached through `client`.
    pub fn new(client: Client, table_name: String) -> DynamoTable {
        DynamoTable { client, table_name }
    }

    /// The DynamoDB table's name.
    pub fn table_name(&self) -> &str {
        &self.table_name
    }

    /// One page of raw DynamoDB items (`fetch` at most), following LastEvaluatedKey until
    /// `fetch` items arrived or the partition is exhausted.
    async fn fetch_page(
        &self,
        query: &Query,
        fetch: u32,
        mut start: Option<HashMap<String, AttributeValue>>,
    ) -> PortResult<Vec<HashMap<String, AttributeValue>>> {
        let (pk_attr, sk_attr) = index_attrs(query.index);
        let mut e = Expr::default();
        let mut key_condition = format!("{} = {}", e.name(pk_attr), e.value(s(&query.pk)));
        match &query.range {
            KeyRange::All => {}
            KeyRange::Prefix(p) if p.is_empty() => {}
            KeyRange::Prefix(p) => {
                key_condition +=
                    &format!(" AND begins_with({}, {})", e.name(sk_attr), e.value(s(p)));
            }
            KeyRange::Between(low, high) if low.is_empty() => {
                key_condition += &format!(" AND {} <= {}", e.name(sk_attr), e.value(s(high)));
            }
            KeyRange::Between(low, high) => {
                let sk = e.name(sk_attr);
                let (low, high) = (e.value(s(low)), e.value(s(high)));
                key_condition += &format!(" AND {sk} BETWEEN {low} AND {high}");
            }
        }
        let (names, values) = e.into_parts();
        let mut items = Vec::new();
        loop {
            let want = fetch.saturating_sub(u32::try_from(items.len()).unwrap_or(u32::MAX));
            let request = self
                .client
                .query()
                .table_name(&self.table_name)
                .key_condition_expression(&key_condition)
                .set_expression_attribute_names(names.clone())
                .set_expression_attribute_values(values.clone())
                .scan_index_forward(query.ascending)
                .limit(i32::try_from(want).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take());
            let request = match query.index {
                IndexName::Primary => request.consistent_read(true),
                IndexName::Gsi1 => request.index_name(GSI1),
            };
            let out = request.send().await.map_err(|e| sdk_error("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(lek) if !lek.is_empty() && items.len() < fetch as usize => start = Some(lek),
                _ => return Ok(items),
            }
        }
    }
}

/// The key attribute names a query reads.
fn index_attrs(index: IndexName) -> (&'static str, &'static str) {
    match index {
        IndexName::Primary => ("pk", "sk"),
        IndexName::Gsi1 => ("gsi1pk", "gsi1sk"),
    }
}

/// A string attribute value.
fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> PortResult<Option<Item>> {
        if check_key(key).is_err() {
            return Ok(None); // DynamoDB refuses such keys; no item can have them.
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(key_map(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        out.item.map(decode_item).transpose()
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> PortResult<()> {
        check_item(&item)?;
        let mut e = Expr::default();
        let cond = condition.as_ref().map(|c| condition_expression(&mut e, c));
        let (names, values) = e.into_parts();
        self.client
            .put_item()
            .table_name(&self.table_name)
            .set_item(Some(encode_item(&item)?))
            .set_condition_expression(cond)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", e))?;
        Ok(())
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Option<Condition>,
    ) -> PortResult<Item> {
        check_key(key)?;
        check_update(&update)?;
        let mut e = Expr::default();
        let update_expr = update_expression(&mut e, &update)?;
        let cond = condition.as_ref().map(|c| condition_expression(&mut e, c));
        let (names, values) = e.into_parts();
        let out = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(key_map(key)))
            .update_expression(update_expr)
            .set_condition_expression(cond)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| sdk_error("UpdateItem", e))?;
        let attrs = out
            .attributes
            .ok_or_else(|| PortError::Backend("UpdateItem returned no attributes".into()))?;
        decode_item(attrs)
    }

    async fn delete(&self, key: &Key, condition: Option<Condition>) -> PortResult<()> {
        check_key(key)?;
        let mut e = Expr::default();
        let cond = condition.as_ref().map(|c| condition_expression(&mut e, c));
        let (names, values) = e.into_parts();
        self.client
            .delete_item()
            .table_name(&self.table_name)
            .set_key(Some(key_map(key)))
            .set_condition_expression(cond)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteItem", e))?;
        Ok(())
    }

    async fn query(&self, query: Query) -> PortResult<Page> {
        let start = query
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, &query))
            .transpose()?;
        let empty = Page {
            items: Vec::new(),
            next: None,
        };
        // Ranges no stored key can match: DynamoDB would refuse them rather than answer empty.
        if query.pk.is_empty() {
            return Ok(empty);
        }
        if let KeyRange::Between(low, high) = &query.range
            && (low > high || high.is_empty())
        {
            return Ok(empty);
        }
        let limit = query.limit.clamp(1, MAX_PAGE);
        let mut raw = self.fetch_page(&query, limit + 1, start).await?;
        let more = raw.len() > limit as usize;
        raw.truncate(limit as usize);
        let next = match raw.last() {
            Some(last) if more => Some(cursor_after(last, query.index)?),
            _ => None,
        };
        let items = raw
            .into_iter()
            .map(decode_item)
            .collect::<PortResult<_>>()?;
        Ok(Page { items, next })
    }

    async fn transact(&self, ops: Vec<TxOp>) -> PortResult<()> {
        check_transaction(&ops)?;
        let items = ops
            .iter()
            .map(|op| self.transact_item(op))
            .collect::<PortResult<Vec<_>>>()?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(ctx)) => {
                let status = ctx.raw().status().as_u16();
                match ctx.into_err() {
                    TransactWriteItemsError::TransactionCanceledException(tc) => {
                        Err(cancelled(&tc, ops.len()))
                    }
                    other => {
                        use aws_sdk_dynamodb::error::ProvideErrorMetadata;
                        Err(classify(
                            "TransactWriteItems",
                            other.code(),
                            other.message(),
                            status,
                        ))
                    }
                }
            }
            Err(e) => Err(sdk_error("TransactWriteItems", e)),
        }
    }
}

impl DynamoTable {
    /// One operation of a TransactWriteItems request.
    fn transact_item(&self, op: &TxOp) -> PortResult<TransactWriteItem> {
        let mut e = Expr::default();
        let item = match op {
            TxOp::Put { item, condition } => {
                let cond = condition.as_ref().map(|c| condition_expression(&mut e, c));
                let (names, values) = e.into_parts();
                let put = Put::builder()
                    .table_name(&self.table_name)
                    .set_item(Some(encode_item(item)?))
                    .set_condition_expression(cond)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().put(put).build()
            }
            TxOp::Update {
                key,
                update,
                condition,
            } => {
                let update_expr = update_expression(&mut e, update)?;
                let cond = condition.as_ref().map(|c| condition_expression(&mut e, c));
                let (names, values) = e.into_parts();
                let up = DynamoUpdate::builder()
                    .table_name(&self.table_name)
                    .set_key(Some(key_map(key)))
                    .update_expression(update_expr)
                    .set_condition_expression(cond)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().update(up).build()
            }
            TxOp::Delete { key, condition } => {
                let cond = condition.as_ref().map(|c| condition_expression(&mut e, c));
                let (names, values) = e.into_parts();
                let delete = Delete::builder()
                    .table_name(&self.table_name)
                    .set_key(Some(key_map(key)))
                    .set_condition_expression(cond)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().delete(delete).build()
            }
            TxOp::Check { key, condition } => {
                let cond = condition_expression(&mut e, condition);
                let (names, values) = e.into_parts();
                let check = ConditionCheck::builder()
                    .table_name(&self.table_name)
                    .set_key(Some(key_map(key)))
                    .condition_expression(cond)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().condition_check(check).build()
            }
        };
        Ok(item)
    }
}

/// The port error for a cancelled transaction: one reason per operation, `None` where the
/// operation did not fail. If no operation failed its condition and some were cancelled for
/// throttling or a conflicting transaction, retrying may succeed: `Unavailable`.
fn cancelled(
    tc: &aws_sdk_dynamodb::types::error::TransactionCanceledException,
    n_ops: usize,
) -> PortError {
    let codes: Vec<Option<String>> = tc
        .cancellation_reasons()
        .iter()
        .map(|r| match r.code() {
            None | Some("None") => None,
            Some(code) => Some(match r.message() {
                Some(m) if !m.is_empty() => format!("{code}: {m}"),
                _ => code.to_owned(),
            }),
        })
        .collect();
    let message = tc.message().unwrap_or("transaction cancelled").to_owned();
    if codes.len() != n_ops {
        // DynamoDB always sends one reason per operation; anything else is not trusted.
        return PortError::TransactionCancelled {
            reasons: vec![Some(message); n_ops],
        };
    }
    let transient = |code: &str| {
        [
            "ThrottlingError",
            "TransactionConflict",
            "ProvisionedThroughputExceeded",
        ]
        .contains(&code)
    };
    let reason_codes: Vec<&str> = tc
        .cancellation_reasons()
        .iter()
        .filter_map(|r| r.code())
        .filter(|c| *c != "None")
        .collect();
    if !reason_codes.is_empty() && reason_codes.iter().all(|c| transient(c)) {
        return PortError::Unavailable(format!("TransactWriteItems: {message}"));
    }
    if reason_codes.contains(&"ValidationError") {
        return PortError::Invalid(format!("TransactWriteItems: {message}"));
    }
    PortError::TransactionCancelled { reasons: codes }
}
