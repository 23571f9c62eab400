//! Idempotent creation of the table, bucket and queues, for tests, benchmarks and local setups
//! against a local AWS-API server. Deployed stacks get them from the infrastructure template;
//! Lambdas never call this.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
    TimeToLiveStatus,
};
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_sdk_sqs::types::QueueAttributeName;
use puhui_ports::{PortError, PortResult};

use crate::errors::{build_error, sdk_error};
use crate::table::GSI1;

/// How long [`ensure_table`] waits for a new table and its index to become active.
const TABLE_READY_TIMEOUT: Duration = Duration::from_secs(300);

/// SDK configuration for a local AWS-API server at `endpoint`: static test credentials and
/// region `us-east-1`, set explicitly rather than through the process environment.
pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    let credentials =
        aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "puhui-local");
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .load()
        .await
}

/// Clients for a local AWS-API server at `endpoint` (path-style S3).
pub async fn backend_for(endpoint: &str) -> crate::AwsBackend {
    crate::AwsBackend::from_config(&sdk_config_for(endpoint).await, true)
}

/// Creates the single table unless it exists: `pk`/`sk` keys, the index `gsi1`
/// (`gsi1pk`/`gsi1sk`, projection ALL), on-demand billing; waits until it is active and then
/// enables TTL on `ttl`.
pub async fn ensure_table(client: &aws_sdk_dynamodb::Client, name: &str) -> PortResult<()> {
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(build_error)
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .map_err(build_error)
    };
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(GSI1)
        .key_schema(key("gsi1pk", KeyType::Hash)?)
        .key_schema(key("gsi1sk", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(build_error)?;
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .attribute_definitions(attr("gsi1pk")?)
        .attribute_definitions(attr("gsi1sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(gsi)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) => {}
        Err(e) => return Err(sdk_error("CreateTable", e)),
    }
    wait_until_active(client, name).await?;
    let ttl = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|e| sdk_error("DescribeTimeToLive", e))?;
    let enabled = ttl.time_to_live_description().is_some_and(|d| {
        d.attribute_name() == Some("ttl")
            && matches!(
                d.time_to_live_status(),
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            )
    });
    if !enabled {
        let spec = TimeToLiveSpecification::builder()
            .attribute_name("ttl")
            .enabled(true)
            .build()
            .map_err(build_error)?;
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(|e| sdk_error("UpdateTimeToLive", e))?;
    }
    Ok(())
}

/// Waits until the table and its indexes are active.
async fn wait_until_active(client: &aws_sdk_dynamodb::Client, name: &str) -> PortResult<()> {
    let deadline = tokio::time::Instant::now() + TABLE_READY_TIMEOUT;
    loop {
        let out = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeTable", e))?;
        let active = out.table().is_some_and(|t| {
            t.table_status() == Some(&TableStatus::Active)
                && t.global_secondary_indexes()
                    .iter()
                    .all(|i| i.index_status() == Some(&IndexStatus::Active))
        });
        if active {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(PortError::Unavailable(format!(
                "table {name} is not active after {TABLE_READY_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Creates a bucket in the client's region unless this account already owns it.
pub async fn ensure_bucket(client: &aws_sdk_s3::Client, name: &str) -> PortResult<()> {
    let mut request = client.create_bucket().bucket(name);
    // us-east-1 is the default location and refuses an explicit constraint.
    if let Some(region) = client.config().region().map(|r| r.as_ref().to_owned())
        && region != "us-east-1"
    {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_bucket_already_owned_by_you()) =>
        {
            Ok(())
        }
        // us-east-1 (and some local servers) answer this for a bucket of one's own: check.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_bucket_already_exists()) =>
        {
            client
                .head_bucket()
                .bucket(name)
                .send()
                .await
                .map(drop)
                .map_err(|_| {
                    PortError::Invalid(format!("bucket {name} belongs to another account"))
                })
        }
        Err(e) => Err(sdk_error("CreateBucket", e)),
    }
}

/// Creates a queue unless it exists and returns its URL: FIFO if `fifo` (the name gets the
/// `.fifo` suffix SQS requires; content-based deduplication off), with a redrive policy to
/// `dead_letter = Some((dead-letter queue ARN, max receives))`. An existing queue gets the
/// requested attributes.
pub async fn ensure_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    fifo: bool,
    dead_letter: Option<(&str, u32)>,
) -> PortResult<String> {
    let name = if fifo && !name.ends_with(".fifo") {
        format!("{name}.fifo")
    } else {
        name.to_owned()
    };
    let mut attrs = HashMap::new();
    if fifo {
        attrs.insert(QueueAttributeName::FifoQueue, "true".to_owned());
        attrs.insert(
            QueueAttributeName::ContentBasedDeduplication,
            "false".to_owned(),
        );
    }
    if let Some((arn, max_receives)) = dead_letter {
        let policy = serde_json::json!({
            "deadLetterTargetArn": arn,
            "maxReceiveCount": max_receives.to_string(),
        });
        attrs.insert(QueueAttributeName::RedrivePolicy, policy.to_string());
    }
    let created = client
        .create_queue()
        .queue_name(&name)
        .set_attributes(Some(attrs.clone()))
        .send()
        .await;
    match created {
        Ok(out) => out
            .queue_url
            .ok_or_else(|| PortError::Backend("CreateQueue returned no queue URL".into())),
        // The queue exists with other attributes: bring them to what was asked.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_queue_name_exists()) =>
        {
            let url = client
                .get_queue_url()
                .queue_name(&name)
                .send()
                .await
                .map_err(|e| sdk_error("GetQueueUrl", e))?
                .queue_url
                .ok_or_else(|| PortError::Backend("GetQueueUrl returned no URL".into()))?;
            attrs.remove(&QueueAttributeName::FifoQueue); // fixed at creation
            if !attrs.is_empty() {
                client
                    .set_queue_attributes()
                    .queue_url(&url)
                    .set_attributes(Some(attrs))
                    .send()
                    .await
                    .map_err(|e| sdk_error("SetQueueAttributes", e))?;
            }
            Ok(url)
        }
        Err(e) => Err(sdk_error("CreateQueue", e)),
    }
}

/// The ARN of the queue at `url` (for another queue's redrive policy).
pub async fn queue_arn(client: &aws_sdk_sqs::Client, url: &str) -> PortResult<String> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sdk_error("GetQueueAttributes", e))?;
    out.attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| PortError::Backend("GetQueueAttributes returned no queue ARN".into()))
}
