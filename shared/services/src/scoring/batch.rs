//! Batch scoring: a bank's pre-approval job (预授信) over its list of firms. The job pins one
//! model version, its firms are split into chunks sent on a queue through the outbox (with the
//! job, in one transaction), and each chunk is scored, audited per firm, written to the blob
//! store and counted once: a redelivered chunk rewrites the same part and counts nothing twice.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use puhui_domain::authorization::{CREDIT_EVALUATION, Purpose};
use puhui_domain::{BankId, Error, FieldError, ModelName, ModelOwner, Principal, Uscc};
use puhui_ports::{Condition, Key, TxOp};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::registry::{LoadedModel, ModelRegistry};
use super::score::{ScoringService, score_with, scoring_bank, summary};
use super::{ScoringPorts, corrupt};
use crate::audit::{AuditOutcome, AuditRecord, sha256_json};
use crate::codec;
use crate::outbox::{Destination, Envelope};
use crate::profiles;
use crate::storage::{chunk_of, count_chunk_once};

/// Most firms in one job.
pub const MAX_FIRMS: usize = 10_000;
/// Firms per chunk (one queue message).
pub const CHUNK_FIRMS: usize = 100;
/// How long a result link stays valid.
pub const LINK_TTL: Duration = Duration::from_secs(15 * 60);

/// A job as a bank submits it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// The firms (1–10,000; repeats are scored once).
    #[schema(value_type = Vec<String>)]
    pub firms: Vec<Uscc>,
    /// Model name (default `default`, the bank's own before the platform's).
    #[serde(default)]
    pub model: Option<ModelName>,
    /// Owner, to pick explicitly.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub owner: Option<ModelOwner>,
    /// Purpose (default `pre_loan`); firms whose authorization does not cover it are skipped.
    #[serde(default)]
    pub purpose: Option<Purpose>,
}

/// A scoring job and its progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoringJob {
    /// Id (a ULID).
    pub id: String,
    /// The bank.
    #[schema(value_type = String)]
    pub bank_id: BankId,
    /// Who submitted it.
    pub requested_by: String,
    /// Model owner.
    #[schema(value_type = String)]
    pub owner: ModelOwner,
    /// Model name.
    pub model: ModelName,
    /// The model version every firm is scored with.
    pub model_version: u64,
    /// Purpose.
    pub purpose: Purpose,
    /// Firms in the job.
    pub firms: u64,
    /// Chunks in the job.
    pub chunks: u64,
    /// Submitted at.
    pub created_at: DateTime<Utc>,
    /// Chunks finished.
    #[serde(default)]
    pub chunks_done: u64,
    /// Firms scored.
    #[serde(default)]
    pub scored: u64,
    /// Firms skipped (no live authorization, no profile).
    #[serde(default)]
    pub skipped: u64,
    /// Of the scored, approved / referred / declined.
    #[serde(default)]
    pub approved: u64,
    /// Referred.
    #[serde(default)]
    pub referred: u64,
    /// Declined.
    #[serde(default)]
    pub declined: u64,
    /// Record version.
    #[serde(default)]
    pub version: u64,
}

/// Running or done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Chunks still to score.
    Running,
    /// Every chunk scored.
    Completed,
}

/// A job as its bank sees it: progress and, when complete, links to the result parts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScoringJobView {
    /// The job.
    pub job: ScoringJob,
    /// Status.
    pub status: JobStatus,
    /// Presigned links to the CSV parts (valid 15 minutes), once complete.
    pub results: Vec<String>,
}

/// The queue message: one chunk of one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobChunk {
    /// The bank.
    pub bank_id: BankId,
    /// The job.
    pub job_id: String,
    /// Chunk index (0-based).
    pub chunk: u64,
}

/// What one chunk did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChunkOutcome {
    /// Scored.
    pub scored: u64,
    /// Skipped.
    pub skipped: u64,
    /// Whether this delivery counted it (false: an earlier one had).
    pub counted: bool,
}

fn job_key(bank: &BankId, job: &str) -> Key {
    Key::new(format!("SCOREJOB#{bank}#{job}"), "JOB")
}

fn chunk_key(bank: &BankId, job: &str, chunk: u64) -> Key {
    Key::new(
        format!("SCOREJOB#{bank}#{job}"),
        format!("CHUNK#{chunk:05}"),
    )
}

fn input_blob(bank: &BankId, job: &str) -> String {
    format!("scoring-jobs/{bank}/{job}/input.json")
}

fn part_blob(bank: &BankId, job: &str, chunk: u64) -> String {
    format!("scoring-jobs/{bank}/{job}/part-{chunk:05}.csv")
}

/// The batch-scoring use cases.
pub struct BatchScoring {
    ports: ScoringPorts,
    registry: std::sync::Arc<ModelRegistry>,
    scoring: std::sync::Arc<ScoringService>,
}

impl BatchScoring {
    /// The use cases over the ports, sharing the registry's model cache.
    pub fn new(
        ports: ScoringPorts,
        registry: std::sync::Arc<ModelRegistry>,
        scoring: std::sync::Arc<ScoringService>,
    ) -> Self {
        BatchScoring {
            ports,
            registry,
            scoring,
        }
    }

    /// Checks and records a job, and stages its chunks for the queue with it.
    pub async fn submit(&self, who: &Principal, req: JobRequest) -> Result<ScoringJob, Error> {
        let bank = scoring_bank(who)?.clone();
        if req.firms.is_empty() || req.firms.len() > MAX_FIRMS {
            return Err(Error::Validation(vec![FieldError::new(
                "firms",
                "out_of_range",
                format!("1–{MAX_FIRMS} firms, got {}", req.firms.len()),
            )]));
        }
        let mut seen = HashSet::new();
        let firms: Vec<Uscc> = req
            .firms
            .into_iter()
            .filter(|f| seen.insert(f.clone()))
            .collect();
        let model = self
            .scoring
            .resolve(who, &bank, req.owner.as_ref(), req.model.as_ref())
            .await?;
        let version = model.active.ok_or_else(|| {
            Error::Conflict(format!(
                "model {}/{} has no active version",
                model.owner, model.name
            ))
        })?;
        let id = self.ports.ids.ulid().to_string();
        let chunks = firms.len().div_ceil(CHUNK_FIRMS) as u64;
        let job = ScoringJob {
            id: id.clone(),
            bank_id: bank.clone(),
            requested_by: who.subject.clone(),
            owner: model.owner,
            model: model.name,
            model_version: version,
            purpose: req.purpose.unwrap_or(Purpose::PreLoan),
            firms: firms.len() as u64,
            chunks,
            created_at: self.ports.clock.now(),
            chunks_done: 0,
            scored: 0,
            skipped: 0,
            approved: 0,
            referred: 0,
            declined: 0,
            version: 1,
        };
        let input = serde_json::to_vec(&firms).map_err(|e| Error::Internal(e.to_string()))?;
        self.ports
            .blobs
            .put(&input_blob(&bank, &id), input, "application/json")
            .await?;
        let mut item = codec::to_item(job_key(&bank, &id), &job)?;
        item.gsi1 = Some(Key::new(format!("SCOREJOBS#{bank}"), id.clone()));
        let messages = (0..chunks)
            .map(|chunk| {
                Envelope::json(
                    Destination::ScoringJobs,
                    &JobChunk {
                        bank_id: bank.clone(),
                        job_id: id.clone(),
                        chunk,
                    },
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ops = vec![TxOp::Put {
            item,
            condition: Some(Condition::NotExists),
        }];
        self.ports.outbox.commit(ops, messages).await?;
        tracing::info!(bank = %bank, job = %id, firms = job.firms, chunks, "scoring job submitted");
        Ok(job)
    }

    /// The caller's job with its progress (another bank's job does not exist for it).
    pub async fn view(&self, who: &Principal, id: &str) -> Result<ScoringJobView, Error> {
        let bank = scoring_bank(who)?;
        let job = self.job(bank, id).await?;
        let status = if job.chunks_done >= job.chunks {
            JobStatus::Completed
        } else {
            JobStatus::Running
        };
        let mut results = Vec::new();
        if status == JobStatus::Completed {
            for chunk in 0..job.chunks {
                let link = self
                    .ports
                    .blobs
                    .presign_get(&part_blob(bank, id, chunk), LINK_TTL)
                    .await?;
                results.push(link.url);
            }
        }
        Ok(ScoringJobView {
            job,
            status,
            results,
        })
    }

    async fn job(&self, bank: &BankId, id: &str) -> Result<ScoringJob, Error> {
        if ulid::Ulid::from_string(id).is_err() {
            return Err(Error::NotFound(format!("scoring job {id}")));
        }
        match self.ports.table.get(&job_key(bank, id)).await? {
            Some(item) => codec::from_item(item),
            None => Err(Error::NotFound(format!("scoring job {id}"))),
        }
    }

    /// Scores one chunk (the queue consumer). Idempotent per (job, firm): audit records have
    /// deterministic ids, the part is rewritten whole, and the counts move once per chunk.
    pub async fn process(&self, msg: &JobChunk) -> Result<ChunkOutcome, Error> {
        let job = self.job(&msg.bank_id, &msg.job_id).await?;
        if msg.chunk >= job.chunks {
            return Err(Error::Internal(format!(
                "job {} has {} chunks, not {}",
                job.id, job.chunks, msg.chunk
            )));
        }
        let input = self
            .ports
            .blobs
            .get(&input_blob(&job.bank_id, &job.id))
            .await?
            .ok_or_else(|| corrupt("job input", &job.id))?;
        let firms: Vec<Uscc> =
            serde_json::from_slice(&input).map_err(|e| corrupt("job input", e))?;
        let slice = chunk_of(&firms, msg.chunk, CHUNK_FIRMS);
        let loaded = self
            .registry
            .load(&job.owner, &job.model, job.model_version)
            .await?;
        let rows = join_all(slice.iter().map(|uscc| self.one(&job, &loaded, uscc))).await;
        let mut csv =
            String::from("uscc,status,reason,score,pd,grade,outcome,limit_fen,rate_bp,reasons\n");
        let mut counts = ChunkOutcome::default();
        let (mut approved, mut referred, mut declined) = (0i64, 0i64, 0i64);
        for row in rows {
            let row = row?;
            match row.get("status").and_then(|s| s.as_str()) {
                Some("scored") => {
                    counts.scored += 1;
                    match row.get("outcome").and_then(|s| s.as_str()) {
                        Some("approve") => approved += 1,
                        Some("refer") => referred += 1,
                        _ => declined += 1,
                    }
                }
                _ => counts.skipped += 1,
            }
            csv.push_str(&csv_line(&row));
        }
        self.ports
            .blobs
            .put(
                &part_blob(&job.bank_id, &job.id, msg.chunk),
                csv.into_bytes(),
                "text/csv; charset=utf-8",
            )
            .await?;
        let marker = puhui_ports::Item::new(
            chunk_key(&job.bank_id, &job.id, msg.chunk),
            serde_json::Map::from_iter([("scored".into(), json!(counts.scored))]),
        );
        let add = vec![
            ("chunks_done".into(), 1),
            ("scored".into(), counts.scored as i64),
            ("skipped".into(), counts.skipped as i64),
            ("approved".into(), approved),
            ("referred".into(), referred),
            ("declined".into(), declined),
        ];
        let job_key = job_key(&job.bank_id, &job.id);
        counts.counted = count_chunk_once(self.ports.table.as_ref(), marker, job_key, add).await?;
        Ok(counts)
    }

    /// One firm of a chunk: checked, scored and audited; the CSV row's fields.
    async fn one(
        &self,
        job: &ScoringJob,
        loaded: &LoadedModel,
        uscc: &Uscc,
    ) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
        let mut record = AuditRecord {
            id: format!("{}.{uscc}", job.id),
            at: self.ports.clock.now(),
            bank_id: job.bank_id.clone(),
            user: job.requested_by.clone(),
            action: "batch_score".into(),
            uscc: Some(uscc.clone()),
            purpose: Some(job.purpose),
            authorization_id: None,
            subject: Some(format!("{}/{}@{}", job.owner, job.model, job.model_version)),
            inputs_sha256: None,
            outcome: AuditOutcome::Allowed,
            result: None,
            response_sha256: None,
        };
        let mut row = serde_json::Map::new();
        row.insert("uscc".into(), json!(uscc));
        let authorization = self
            .ports
            .authorizations()
            .require(uscc, &job.bank_id, CREDIT_EVALUATION, job.purpose)
            .await?;
        let firm = match &authorization {
            Ok(_) => profiles::indicators(self.ports.table.as_ref(), uscc).await?,
            Err(_) => None,
        };
        match (authorization, firm) {
            (Err(refusal), _) => {
                let reason = serde_json::to_value(refusal)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                record.outcome = AuditOutcome::Refused {
                    reason: reason.clone(),
                };
                row.insert("status".into(), json!("skipped"));
                row.insert("reason".into(), json!(reason));
            }
            (Ok(a), None) => {
                record.authorization_id = Some(a.id);
                record.outcome = AuditOutcome::Refused {
                    reason: "no_profile".into(),
                };
                row.insert("status".into(), json!("skipped"));
                row.insert("reason".into(), json!("no_profile"));
            }
            (Ok(a), Some(firm)) => {
                record.authorization_id = Some(a.id);
                let scored = score_with(loaded, &firm);
                record.inputs_sha256 = Some(sha256_json(&scored.inputs));
                let s = summary(&scored.decision);
                record.result = Some(s.clone());
                row.insert("status".into(), json!("scored"));
                if let serde_json::Value::Object(m) = s {
                    row.extend(m);
                }
                let reasons: Vec<String> = serde_json::to_value(&scored.decision)
                    .ok()
                    .and_then(|d| d.get("reasons").cloned())
                    .and_then(|r| r.as_array().cloned())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|r| r.get("code").and_then(|c| c.as_str()).map(str::to_owned))
                    .collect();
                row.insert("reasons".into(), json!(reasons.join(";")));
            }
        }
        self.ports.audit().append(&record).await?;
        Ok(row)
    }
}

/// A CSV line of the result columns (values carry no commas or quotes but reasons, which are
/// codes joined by `;`).
fn csv_line(row: &serde_json::Map<String, serde_json::Value>) -> String {
    let cell = |k: &str| match row.get(k) {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    let cols = [
        "uscc", "status", "reason", "score", "pd", "grade", "outcome", "limit", "rate", "reasons",
    ];
    let mut line = cols.iter().map(|c| cell(c)).collect::<Vec<_>>().join(",");
    line.push('\n');
    line
}
