//! Puhui AWS adapter: DynamoDB, S3 and SQS behind the ports.
//!
//! [`AwsBackend::from_env`] builds the three SDK clients once (a Lambda does it at start); the
//! adapters wrap clones of them: [`DynamoTable`] implements [`puhui_ports::Table`],
//! [`S3BlobStore`] implements [`puhui_ports::BlobStore`] and [`SqsQueue`] implements
//! [`puhui_ports::Queue`]. [`provision`] creates the resources for tests and local setups.
//!
//! # Configuration
//!
//! Everything comes from the SDK's standard configuration chain (`aws_config::defaults`):
//! region, credentials, and `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_DYNAMODB`, `_S3`, `_SQS`)
//! to talk to a local AWS-API server instead of AWS. `PUHUI_S3_FORCE_PATH_STYLE=true` switches
//! S3 to path-style addressing (`http://host/bucket/key`), which local servers such as moto need.
//!
//! # DynamoDB key schema (single-table design)
//!
//! One table holds every entity. Each DynamoDB item has these attributes:
//!
//! | attribute | type | meaning |
//! |-----------|------|---------|
//! | `pk`      | S    | partition key (table key, HASH) |
//! | `sk`      | S    | sort key (table key, RANGE) |
//! | `gsi1pk`  | S    | partition key of the global secondary index `gsi1` (optional) |
//! | `gsi1sk`  | S    | sort key of `gsi1` (optional; present exactly when `gsi1pk` is) |
//! | `version` | N    | optimistic-concurrency version ([`puhui_ports::Item::version`]) |
//! | `ttl`     | N    | expiry in epoch seconds, the table's TTL attribute ([`puhui_ports::Item::expires_at`]) |
//! | others    | any  | the item's JSON attributes, one top-level DynamoDB attribute each |
//!
//! The index `gsi1` (HASH `gsi1pk`, RANGE `gsi1sk`, projection ALL) is sparse: only items with
//! an index key are in it. Billing is on demand (PAY_PER_REQUEST); TTL is enabled on `ttl`, so
//! DynamoDB deletes expired items some time (up to days) after they expire.
//!
//! Entity key patterns used so far:
//!
//! | entity | `pk` | `sk` | `gsi1pk` / `gsi1sk` |
//! |--------|------|------|---------------------|
//! | loan product | `BANK#<bank_id>` | `PRODUCT#<ulid>` | `CATALOGUE` / `PRODUCT#<ulid>`, only while listed |
//! | idempotency record | `IDEMPOTENCY#<sha256 of scope and key>` | `RECORD` | none (expires through `ttl`) |
//!
//! Query cursors are base64url (no padding) of a JSON object holding the last item's key
//! attributes as strings (`pk`, `sk`, plus `gsi1pk`, `gsi1sk` on the index), the same format
//! as the embedded adapter's.

pub mod blob;
mod errors;
pub mod provision;
pub mod queue;
pub mod table;

pub use blob::S3BlobStore;
pub use queue::SqsQueue;
pub use table::DynamoTable;

use aws_config::{BehaviorVersion, SdkConfig};

/// Environment variable that turns on S3 path-style addressing when set to `true` (or `1`).
pub const FORCE_PATH_STYLE_ENV: &str = "PUHUI_S3_FORCE_PATH_STYLE";

/// The three AWS SDK clients, built once and cloned into the adapters.
#[derive(Debug, Clone)]
pub struct AwsBackend {
    /// DynamoDB client.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// S3 client (path-style when configured).
    pub s3: aws_sdk_s3::Client,
    /// SQS client.
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsBackend {
    /// Loads the SDK's default configuration (honouring `AWS_ENDPOINT_URL`) and
    /// `PUHUI_S3_FORCE_PATH_STYLE`, and builds the clients.
    pub async fn from_env() -> AwsBackend {
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let path_style = std::env::var(FORCE_PATH_STYLE_ENV)
            .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1"))
            .unwrap_or(false);
        AwsBackend::from_config(&config, path_style)
    }

    /// Builds the clients from an explicit SDK configuration.
    pub fn from_config(config: &SdkConfig, force_path_style: bool) -> AwsBackend {
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(force_path_style)
            .build();
        AwsBackend {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sqs: aws_sdk_sqs::Client::new(config),
        }
    }

    /// The DynamoDB client.
    pub fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        &self.dynamodb
    }

    /// The S3 client.
    pub fn s3(&self) -> &aws_sdk_s3::Client {
        &self.s3
    }

    /// The SQS client.
    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.sqs
    }

    /// The document table stored in the DynamoDB table `table_name`.
    pub fn table(&self, table_name: impl Into<String>) -> DynamoTable {
        DynamoTable::new(self.dynamodb.clone(), table_name.into())
    }

    /// The blob store on the S3 bucket `bucket`.
    pub fn blobs(&self, bucket: impl Into<String>) -> S3BlobStore {
        S3BlobStore::new(self.s3.clone(), bucket.into())
    }

    /// The queue at `queue_url`.
    pub fn queue(&self, queue_url: impl Into<String>) -> SqsQueue {
        SqsQueue::new(self.sqs.clone(), queue_url.into())
    }
}
