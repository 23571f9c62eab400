//! Page requests and listings shared by every list endpoint.

use puhui_domain::Error;
use puhui_ports::{Item, Query, Table};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest page size.
pub const MAX_LIMIT: u32 = 100;

/// What a caller asks for: a page size and the cursor from the previous page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageRequest {
    /// Page size (1–100, default 20).
    pub limit: Option<u32>,
    /// Cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

impl PageRequest {
    /// The page size, checked.
    pub fn limit(&self) -> Result<u32, Error> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(Error::field(
                "limit",
                "out_of_range",
                format!("must be 1–{MAX_LIMIT}"),
            )),
        }
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Listing<T> {
    /// The items.
    pub items: Vec<T>,
    /// Cursor for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Every item a query matches, page after page (for partitions known to be bounded).
pub async fn all_pages(table: &dyn Table, query: Query) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let page = table
            .query(Query {
                cursor,
                ..query.clone()
            })
            .await?;
        items.extend(page.items);
        match page.next {
            Some(c) => cursor = Some(c),
            None => return Ok(items),
        }
    }
}

/// One page of `query` as the caller asked for it (size checked, cursor passed on), each item
/// decoded as `T`.
pub async fn page_of<T: DeserializeOwned>(
    table: &dyn Table,
    query: Query,
    page: PageRequest,
) -> Result<Listing<T>, Error> {
    let result = table
        .query(query.limit(page.limit()?).after(page.cursor))
        .await?;
    Ok(Listing {
        items: result
            .items
            .into_iter()
            .map(crate::codec::from_item)
            .collect::<Result<_, _>>()?,
        next_cursor: result.next,
    })
}
