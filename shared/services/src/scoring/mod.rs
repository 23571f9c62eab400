//! Credit scoring: a registry of versioned models (with their decision policies), scoring one
//! firm under its authorization, batch pre-approval jobs, and the audit of every score.
//!
//! Storage (single table; model files in the blob store):
//!
//! | item | pk | sk | gsi1pk / gsi1sk |
//! |---|---|---|---|
//! | model (active, challenger, history) | `MODEL#<owner>#<name>` | `MODEL` | `MODELS#<owner>` / `<name>` |
//! | model version | `MODEL#<owner>#<name>` | `V#<version, 10 digits>` | – |
//! | scoring job | `SCOREJOB#<bank>#<job>` | `JOB` | `SCOREJOBS#<bank>` / `<job>` |
//! | scoring job chunk done | `SCOREJOB#<bank>#<job>` | `CHUNK#<index, 5 digits>` | – |
//!
//! Blobs: `models/<owner>/<name>/<version>/model.<ext>`; `scoring-jobs/<bank>/<job>/input.json`
//! and `…/part-<index, 5 digits>.csv`.
//!
//! Features: a model's variables are read from the firm's profile (`FIRM#<uscc>` /
//! `INDICATORS#LATEST`, written by the ingest) through the version's feature map (variable →
//! catalogue feature; by default the variable's own name): the 27 indicators and `industry`.

mod batch;
mod registry;
mod score;

use puhui_domain::{Error, ModelName, ModelOwner};
use puhui_ports::Key;

pub use batch::{
    BatchScoring, ChunkOutcome, JobChunk, JobRequest, JobStatus, ScoringJob, ScoringJobView,
};
pub use registry::{
    LoadedModel, MAX_MODEL_BYTES, ModelRecord, ModelRegistry, ModelUpload, ModelVersion, SmokeCheck,
};
pub use score::{ScoreRequest, ScoreResponse, ScoringService};

use crate::audit::AuditLog;
use crate::authorizations::Authorizations;

/// The ports scoring shares (model files and job results in the blob store; job chunks staged
/// in the outbox with the job).
pub type ScoringPorts = crate::storage::StoragePorts;

impl ScoringPorts {
    fn audit(&self) -> AuditLog {
        AuditLog::new(self.table.clone())
    }

    fn authorizations(&self) -> Authorizations {
        Authorizations::new(self.table.clone(), self.clock.clone())
    }
}

/// How an owner is spelled in keys (`platform`, `bank.<id>`: never `#`, never `/`).
fn owner_key(owner: &ModelOwner) -> String {
    match owner {
        ModelOwner::Platform => "platform".into(),
        ModelOwner::Bank(b) => format!("bank.{b}"),
    }
}

pub(crate) fn model_key(owner: &ModelOwner, name: &ModelName) -> Key {
    Key::new(format!("MODEL#{}#{name}", owner_key(owner)), "MODEL")
}

pub(crate) fn version_key(owner: &ModelOwner, name: &ModelName, version: u64) -> Key {
    Key::new(
        format!("MODEL#{}#{name}", owner_key(owner)),
        format!("V#{version:010}"),
    )
}

pub(crate) fn model_blob(owner: &ModelOwner, name: &ModelName, version: u64, ext: &str) -> String {
    format!("models/{}/{name}/{version}/model.{ext}", owner_key(owner))
}

/// An internal error for a model stored by this registry that no longer reads.
fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored {what} unreadable: {e}"))
}
