//! [`S3BlobStore`]: the blob store port on one S3 bucket.

use std::path::Path;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use puhui_ports::blob::{MAX_PRESIGN, check_key};
use puhui_ports::{BlobMeta, BlobStore, PortError, PortResult, Presigned};

use crate::errors::sdk_error;

/// The blob store on one S3 bucket.
#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

impl S3BlobStore {
    /// The bucket `bucket`, reached through `client`.
    pub fn new(client: Client, bucket: String) -> S3BlobStore {
        S3BlobStore { client, bucket }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object's response, its body not read yet; `None` if there is no such key.
    async fn get_object(&self, key: &str) -> PortResult<Option<GetObjectOutput>> {
        check_key(key)?;
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(out)),
            Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => {
                Ok(None)
            }
            Err(e) => Err(sdk_error("GetObject", e)),
        }
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> PortResult<()> {
        check_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| sdk_error("PutObject", e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> PortResult<Option<Vec<u8>>> {
        let Some(out) = self.get_object(key).await? else {
            return Ok(None);
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| PortError::Unavailable(format!("GetObject: reading the body: {e}")))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    async fn download(&self, key: &str, to: &Path) -> PortResult<Option<u64>> {
        use tokio::io::AsyncWriteExt;
        let Some(mut out) = self.get_object(key).await? else {
            return Ok(None);
        };
        let local = |e: std::io::Error| {
            PortError::Backend(format!("GetObject: writing {}: {e}", to.display()))
        };
        let mut file = tokio::fs::File::create(to).await.map_err(local)?;
        let mut size = 0u64;
        while let Some(part) = out
            .body
            .try_next()
            .await
            .map_err(|e| PortError::Unavailable(format!("GetObject: reading the body: {e}")))?
        {
            file.write_all(&part).await.map_err(local)?;
            size += part.len() as u64;
        }
        file.flush().await.map_err(local)?;
        Ok(Some(size))
    }

    async fn list(&self, prefix: &str) -> PortResult<Vec<BlobMeta>> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("ListObjectsV2", e))?;
            for o in page.contents() {
                if let Some(key) = o.key() {
                    out.push(BlobMeta {
                        key: key.to_owned(),
                        size: u64::try_from(o.size().unwrap_or(0)).unwrap_or(0),
                    });
                }
            }
        }
        // S3 lists in UTF-8 byte order already; sorting keeps the promise on any backend.
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> PortResult<()> {
        check_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteObject", e))?;
        Ok(())
    }

    async fn presign_get(&self, key: &str, expires_in: Duration) -> PortResult<Presigned> {
        check_key(key)?;
        if expires_in > MAX_PRESIGN || expires_in < Duration::from_secs(1) {
            return Err(PortError::Invalid(format!(
                "a presigned URL lasts from 1 second to 7 days, not {expires_in:?}"
            )));
        }
        let start = SystemTime::now();
        let config = PresigningConfig::builder()
            .start_time(start)
            .expires_in(expires_in)
            .build()
            .map_err(|e| PortError::Invalid(format!("presigning: {e}")))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| sdk_error("presign GetObject", e))?;
        // The URL carries the signing time and the validity in whole seconds.
        let signed_at = start
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|e| PortError::Backend(format!("system clock before 1970: {e}")))?
            .as_secs();
        let expires_at = i64::try_from(signed_at.saturating_add(expires_in.as_secs()))
            .ok()
            .and_then(|secs| DateTime::<Utc>::from_timestamp(secs, 0))
            .ok_or_else(|| PortError::Backend("presign expiry out of range".into()))?;
        Ok(Presigned {
            url: request.uri().to_owned(),
            expires_at,
        })
    }
}
