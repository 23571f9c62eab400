//! Routes of the product-listing function.
//!
//! | method | path | who | what |
//! |---|---|---|---|
//! | POST | /v1/products | product_admin | create a draft (idempotent by `Idempotency-Key` or payload) |
//! | GET | /v1/products | product_admin | the bank's own products (`status`, `limit`, `cursor`) |
//! | GET | /v1/products/{id} | product_admin | one own product, with `ETag` |
//! | PUT | /v1/products/{id} | product_admin | replace terms; `If-Match` required |
//! | POST | /v1/products/{id}/list | product_admin | list in the catalogue (`If-Match` optional) |
//! | POST | /v1/products/{id}/delist | product_admin | withdraw from the catalogue |
//! | GET | /v1/catalogue | anyone | listed, valid products (`region`, `industry`, `amount`, `term`, `type`, `bank`) |

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use puhui_domain::{Error, Principal, Product, ProductDraft, ProductId, ProductStatus};
use puhui_edge::idempotency::StoredResponse;
use puhui_edge::problem::Problem;
use puhui_edge::{
    ApiError, ApiJson, ApiQuery, Authenticated, Authenticator, Idempotency, PathParam,
};

use crate::BearerAuth;
use puhui_services::products::CatalogueEntry;
use puhui_services::{CatalogueFilter, Listing, PageRequest, ProductService};
use serde::Deserialize;

/// What the product routes need.
#[derive(Clone)]
pub struct ProductsApi {
    /// The use cases.
    pub products: Arc<ProductService>,
    /// Token verification.
    pub auth: Arc<Authenticator>,
    /// Replay of retried creates.
    pub idempotency: Arc<Idempotency>,
}

impl ProductsApi {
    /// The routes' state over a table, with the system clock and ULID ids.
    pub fn new(table: Arc<dyn puhui_ports::Table>, auth: Arc<Authenticator>) -> Self {
        let clock: Arc<dyn puhui_ports::Clock> = Arc::new(puhui_ports::SystemClock);
        let ids = Arc::new(puhui_ports::UlidGenerator::default());
        ProductsApi {
            products: Arc::new(ProductService::new(table.clone(), clock.clone(), ids)),
            auth,
            idempotency: Arc::new(Idempotency::new(table, clock)),
        }
    }
}

impl FromRef<ProductsApi> for Arc<Authenticator> {
    fn from_ref(s: &ProductsApi) -> Self {
        s.auth.clone()
    }
}

/// The product-listing routes with their state.
pub fn routes(state: ProductsApi) -> Router {
    Router::new()
        .route("/v1/products", post(create).get(list_own))
        .route("/v1/products/{id}", get(get_one).put(replace))
        .route("/v1/products/{id}/list", post(list))
        .route("/v1/products/{id}/delist", post(delist))
        .route("/v1/catalogue", get(catalogue))
        .with_state(state)
}

type ApiResult = Result<Response, ApiError>;

fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

fn product_response(status: StatusCode, p: &Product) -> Response {
    let mut resp = (status, Json(p)).into_response();
    resp.headers_mut().insert(header::ETAG, etag(p.version));
    resp
}

/// Parses `If-Match`: `"3"`, `W/"3"` or `3`.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, Error> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let bad = || Error::Malformed {
        detail: "If-Match must carry the product's ETag, e.g. \"3\"".into(),
        errors: vec![puhui_domain::FieldError::new(
            "header.if-match",
            "invalid_format",
            "expected an ETag like \"3\"",
        )],
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    text.parse().map(Some).map_err(|_| bad())
}

fn tenant_scope(who: &Principal, action: &str) -> String {
    match &who.bank_id {
        Some(bank) => format!("{bank}:{action}"),
        None => format!("platform:{}:{action}", who.subject),
    }
}

#[utoipa::path(post, path = "/v1/products", tag = "products", security(("bearer" = [])),
    request_body = ProductDraft,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe; without it the payload is the key")),
    responses(
        (status = 201, description = "Draft created (or replayed: `Idempotent-Replayed: true`)", body = Product,
         headers(("ETag" = String, description = "Version"), ("Location" = String))),
        (status = 400, description = "malformed body or header", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"), (status = 409, description = "same key in progress", body = Problem, content_type = "application/problem+json"), (status = 413, description = "body too large", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid product, unknown field or key reused", body = Problem, content_type = "application/problem+json"), (status = 503, description = "storage unavailable", body = Problem, content_type = "application/problem+json")))]
async fn create(
    State(s): State<ProductsApi>,
    Authenticated(who): Authenticated,
    headers: HeaderMap,
    body: ApiJson<ProductDraft>,
) -> ApiResult {
    let key = puhui_edge::idempotency::key_header(&headers);
    let scope = tenant_scope(&who, "create-product");
    let outcome = s
        .idempotency
        .run(&scope, key, &body.raw, || async {
            let p = s.products.create(&who, body.value).await?;
            let json = serde_json::to_string(&p).map_err(|e| Error::Internal(e.to_string()))?;
            Ok(StoredResponse {
                status: 201,
                headers: vec![
                    ("location".into(), format!("/v1/products/{}", p.id)),
                    ("etag".into(), format!("\"{}\"", p.version)),
                ],
                body: json,
            })
        })
        .await?;
    Ok(outcome.into_response())
}

/// Query of the own-products list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListParams {
    status: Option<ProductStatus>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/products", tag = "products", security(("bearer" = [])), params(ListParams),
    responses((status = 200, description = "The bank's own products, oldest first", body = Listing<Product>),
        (status = 400, description = "bad query parameter", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"), (status = 422, description = "limit or cursor invalid", body = Problem, content_type = "application/problem+json")))]
async fn list_own(
    State(s): State<ProductsApi>,
    Authenticated(who): Authenticated,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult {
    let listing = s
        .products
        .list_own(
            &who,
            q.status,
            PageRequest {
                limit: q.limit,
                cursor: q.cursor,
            },
        )
        .await?;
    Ok(Json(listing).into_response())
}

#[utoipa::path(get, path = "/v1/products/{id}", tag = "products", security(("bearer" = [])),
    params(("id" = String, Path, description = "Product id (ULID)")),
    responses((status = 200, description = "The product", body = Product, headers(("ETag" = String))),
        (status = 400, description = "id is not a ULID", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"), (status = 404, description = "no such product for this bank", body = Problem, content_type = "application/problem+json")))]
async fn get_one(
    State(s): State<ProductsApi>,
    Authenticated(who): Authenticated,
    PathParam(id): PathParam<ProductId>,
) -> ApiResult {
    let p = s.products.get(&who, id).await?;
    Ok(product_response(StatusCode::OK, &p))
}

#[utoipa::path(put, path = "/v1/products/{id}", tag = "products", security(("bearer" = [])),
    request_body = ProductDraft,
    params(("id" = String, Path, description = "Product id (ULID)"), ("If-Match" = String, Header, description = "ETag read before")),
    responses((status = 200, description = "Replaced", body = Product, headers(("ETag" = String))),
        (status = 400, description = "malformed", body = Problem, content_type = "application/problem+json"), (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"), (status = 404, description = "no such product for this bank", body = Problem, content_type = "application/problem+json"), (status = 412, description = "stale version", body = Problem, content_type = "application/problem+json"), (status = 413, description = "body too large", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid product", body = Problem, content_type = "application/problem+json"), (status = 428, description = "If-Match missing", body = Problem, content_type = "application/problem+json")))]
async fn replace(
    State(s): State<ProductsApi>,
    Authenticated(who): Authenticated,
    PathParam(id): PathParam<ProductId>,
    headers: HeaderMap,
    body: ApiJson<ProductDraft>,
) -> ApiResult {
    let expected = if_match(&headers)?.ok_or_else(|| {
        Error::PreconditionRequired(
            "send If-Match with the ETag you read, so no one's change is lost".into(),
        )
    })?;
    let p = s.products.replace(&who, id, expected, body.value).await?;
    Ok(product_response(StatusCode::OK, &p))
}

#[utoipa::path(post, path = "/v1/products/{id}/list", tag = "products", security(("bearer" = [])),
    params(("id" = String, Path, description = "Product id (ULID)"), ("If-Match" = Option<String>, Header, description = "ETag read before")),
    responses((status = 200, description = "Listed", body = Product), (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"), (status = 404, description = "no such product for this bank", body = Problem, content_type = "application/problem+json"), (status = 409, description = "already listed", body = Problem, content_type = "application/problem+json"), (status = 412, description = "stale version", body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(s): State<ProductsApi>,
    Authenticated(who): Authenticated,
    PathParam(id): PathParam<ProductId>,
    headers: HeaderMap,
) -> ApiResult {
    change_status(&s, &who, id, &headers, ProductStatus::Listed).await
}

#[utoipa::path(post, path = "/v1/products/{id}/delist", tag = "products", security(("bearer" = [])),
    params(("id" = String, Path, description = "Product id (ULID)"), ("If-Match" = Option<String>, Header, description = "ETag read before")),
    responses((status = 200, description = "Delisted", body = Product), (status = 401, description = "no valid token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "role missing", body = Problem, content_type = "application/problem+json"), (status = 404, description = "no such product for this bank", body = Problem, content_type = "application/problem+json"), (status = 409, description = "not listed", body = Problem, content_type = "application/problem+json"), (status = 412, description = "stale version", body = Problem, content_type = "application/problem+json")))]
async fn delist(
    State(s): State<ProductsApi>,
    Authenticated(who): Authenticated,
    PathParam(id): PathParam<ProductId>,
    headers: HeaderMap,
) -> ApiResult {
    change_status(&s, &who, id, &headers, ProductStatus::Delisted).await
}

async fn change_status(
    s: &ProductsApi,
    who: &Principal,
    id: ProductId,
    headers: &HeaderMap,
    to: ProductStatus,
) -> ApiResult {
    let p = s
        .products
        .set_status(who, id, to, if_match(headers)?)
        .await?;
    Ok(product_response(StatusCode::OK, &p))
}

#[utoipa::path(get, path = "/v1/catalogue", tag = "catalogue", params(CatalogueFilter),
    responses((status = 200, description = "Listed products valid today, cheapest first", body = Listing<CatalogueEntry>),
        (status = 400, description = "bad filter", body = Problem, content_type = "application/problem+json"), (status = 422, description = "limit or cursor invalid", body = Problem, content_type = "application/problem+json")))]
async fn catalogue(
    State(s): State<ProductsApi>,
    ApiQuery(filter): ApiQuery<CatalogueFilter>,
) -> ApiResult {
    Ok(Json(s.products.catalogue(filter).await?).into_response())
}

/// The OpenAPI document of the product-listing routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Puhui product listing", description = "Banks maintain loan products; anyone browses the catalogue. Money in fen, rates in basis points, errors as application/problem+json."),
    paths(create, list_own, get_one, replace, list, delist, catalogue),
    components(schemas(puhui_domain::Fen, puhui_domain::Bp)),
    modifiers(&BearerAuth),
    tags((name = "products", description = "A bank's own products (role product_admin)"), (name = "catalogue", description = "The public product supermarket"))
)]
pub struct ProductsDoc;
