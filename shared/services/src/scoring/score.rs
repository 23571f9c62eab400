//! Scoring one firm for a bank: only under the firm's live authorization of that bank, with the
//! bank's own model or the platform's, the challenger in shadow, and every request audited —
//! allowed or refused — before the answer leaves.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use puhui_domain::authorization::{CREDIT_EVALUATION, Purpose};
use puhui_domain::{AuthorizationId, BankId, Error, ModelName, ModelOwner, Principal, Role, Uscc};
use puhui_engines::decision::Decision;
use puhui_engines::model::{ModelFormat, ModelOutput};
use puhui_engines::scorecard::{Row, Value};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use super::ScoringPorts;
use super::registry::{LoadedModel, ModelRecord, ModelRegistry, visible};
use crate::audit::{AuditOutcome, AuditRecord, sha256_json};
use crate::profiles::{self, FirmIndicators};
use puhui_engines::features::row_from_profile;

/// The model a bank scores with when it names none.
pub const DEFAULT_MODEL: &str = "default";

/// A request to score one firm.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    /// The firm.
    #[schema(value_type = String, example = "91350100M000100Y43")]
    pub uscc: Uscc,
    /// The model's name (default `default`): the bank's own model of that name, else the
    /// platform's.
    #[serde(default)]
    pub model: Option<ModelName>,
    /// Pick the owner explicitly (`platform` or `bank:<own id>`).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub owner: Option<ModelOwner>,
    /// Why the bank asks (default `pre_loan`); the firm's authorization must cover it.
    #[serde(default)]
    pub purpose: Option<Purpose>,
}

/// The model version that answered.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ModelUsed {
    /// Owner.
    #[schema(value_type = String)]
    pub owner: ModelOwner,
    /// Name.
    pub name: ModelName,
    /// Version.
    pub version: u64,
    /// Format.
    #[schema(value_type = String)]
    pub format: ModelFormat,
}

/// A firm's score and decision.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScoreResponse {
    /// The audit record of this request.
    pub audit_id: String,
    /// The firm.
    #[schema(value_type = String)]
    pub uscc: Uscc,
    /// The model version used.
    pub model: ModelUsed,
    /// The authorization relied on.
    pub authorization_id: AuthorizationId,
    /// Score, PD, grade, outcome, limit, rate and the top reason codes.
    #[schema(value_type = Object)]
    pub decision: Decision,
    /// When.
    pub scored_at: DateTime<Utc>,
}

/// The scoring use case.
pub struct ScoringService {
    ports: ScoringPorts,
    registry: Arc<ModelRegistry>,
}

/// A score as the engines give it, with what was read.
pub(crate) struct Scored {
    pub(crate) inputs: Map<String, Json>,
    pub(crate) output: ModelOutput,
    pub(crate) decision: Decision,
}

/// The caller's bank if it holds a role that may score (`loan_officer` or `risk_admin`).
pub(crate) fn scoring_bank(who: &Principal) -> Result<&BankId, Error> {
    who.bank_with_role(Role::LoanOfficer)
        .or_else(|_| who.bank_with_role(Role::RiskAdmin))
}

/// Runs a loaded model and its policy on a firm's indicators.
pub(crate) fn score_with(loaded: &LoadedModel, firm: &FirmIndicators) -> Scored {
    let row = row_from_profile(
        &loaded.meta.variables,
        &loaded.meta.features,
        firm.industry.as_ref().map(|i| i.as_str()),
        &firm.values,
    );
    let output = loaded.model.score(&row);
    let decision = loaded.policy.decide(&output, &firm.values);
    Scored {
        inputs: inputs_of(&loaded.meta.variables, &row),
        output,
        decision,
    }
}

/// The row as JSON in model variable order (hashed for the audit; never logged).
fn inputs_of(variables: &[String], row: &Row) -> Map<String, Json> {
    variables
        .iter()
        .map(|v| {
            let value = match row.get(v) {
                None | Some(Value::Missing) => Json::Null,
                Some(Value::Number(n)) => json!(n),
                Some(Value::Integer(i)) => json!(i),
                Some(Value::Text(s)) => json!(s),
            };
            (v.clone(), value)
        })
        .collect()
}

/// The non-personal summary of a decision kept in the audit.
pub(crate) fn summary(d: &Decision) -> Json {
    let v = serde_json::to_value(d).unwrap_or(Json::Null);
    let keep = ["outcome", "grade", "score", "pd", "limit", "rate"];
    Json::Object(
        keep.iter()
            .filter_map(|k| v.get(*k).map(|x| ((*k).to_string(), x.clone())))
            .collect(),
    )
}

impl ScoringService {
    /// The service over the ports and the registry (whose model cache it shares).
    pub fn new(ports: ScoringPorts, registry: Arc<ModelRegistry>) -> Self {
        ScoringService { ports, registry }
    }

    /// The model record a bank means by `owner` / `name`.
    pub(crate) async fn resolve(
        &self,
        who: &Principal,
        bank: &BankId,
        owner: Option<&ModelOwner>,
        name: Option<&ModelName>,
    ) -> Result<ModelRecord, Error> {
        let default =
            ModelName::parse(DEFAULT_MODEL).map_err(|e| Error::Internal(e.to_string()))?;
        let name = name.unwrap_or(&default);
        let owners = match owner {
            Some(o) => {
                visible(who, o)?;
                vec![o.clone()]
            }
            None => vec![ModelOwner::Bank(bank.clone()), ModelOwner::Platform],
        };
        for o in &owners {
            if let Some(r) = self.registry.record(o, name).await? {
                return Ok(r);
            }
        }
        Err(Error::NotFound(format!("model {name}")))
    }

    /// Scores one firm and audits the request, whatever its outcome. An audit that cannot be
    /// written fails the request: no score leaves unrecorded.
    pub async fn score(&self, who: &Principal, req: ScoreRequest) -> Result<ScoreResponse, Error> {
        // A bank user without a scoring role is refused on the bank's record too; only a
        // token with no tenant at all has nowhere to be recorded.
        let bank = match (&who.bank_id, scoring_bank(who)) {
            (_, Ok(b)) => b.clone(),
            (Some(b), Err(_)) => b.clone(),
            (None, Err(e)) => return Err(e),
        };
        let purpose = req.purpose.unwrap_or(Purpose::PreLoan);
        let audit_id = self.ports.ids.ulid().to_string();
        let now = self.ports.clock.now();
        let mut record = AuditRecord {
            id: audit_id.clone(),
            at: now,
            bank_id: bank.clone(),
            user: who.subject.clone(),
            action: "model_score".into(),
            uscc: Some(req.uscc.clone()),
            purpose: Some(purpose),
            authorization_id: None,
            subject: None,
            inputs_sha256: None,
            outcome: AuditOutcome::Allowed,
            result: None,
            response_sha256: None,
        };
        let result = match scoring_bank(who) {
            Ok(_) => {
                self.score_inner(who, &bank, &req, purpose, &mut record)
                    .await
            }
            Err(e) => Err(e),
        };
        match &result {
            Ok(response) => {
                record.response_sha256 = Some(sha256_json(response));
            }
            Err(e) => {
                record.outcome = AuditOutcome::Refused {
                    reason: refusal_code(e, &record),
                };
            }
        }
        self.ports.audit().append(&record).await?;
        result
    }

    async fn score_inner(
        &self,
        who: &Principal,
        bank: &BankId,
        req: &ScoreRequest,
        purpose: Purpose,
        record: &mut AuditRecord,
    ) -> Result<ScoreResponse, Error> {
        let authorization = match self
            .ports
            .authorizations()
            .require(&req.uscc, bank, CREDIT_EVALUATION, purpose)
            .await?
        {
            Ok(a) => a,
            Err(refusal) => {
                record.result = Some(json!({"refusal": refusal}));
                return Err(Error::Forbidden(refusal.to_string()));
            }
        };
        record.authorization_id = Some(authorization.id);
        let model = self
            .resolve(who, bank, req.owner.as_ref(), req.model.as_ref())
            .await?;
        let version = model.active.ok_or_else(|| {
            Error::Conflict(format!(
                "model {}/{} has no active version",
                model.owner, model.name
            ))
        })?;
        record.subject = Some(format!("{}/{}@{version}", model.owner, model.name));
        let loaded = self
            .registry
            .load(&model.owner, &model.name, version)
            .await?;
        let firm = profiles::indicators(self.ports.table.as_ref(), &req.uscc)
            .await?
            .ok_or_else(|| Error::NotFound(format!("profile of firm {}", req.uscc)))?;
        let scored = score_with(&loaded, &firm);
        record.inputs_sha256 = Some(sha256_json(&scored.inputs));
        let mut summary = summary(&scored.decision);
        if let Some(challenger) = model.challenger {
            let shadow = self.shadow(&model, challenger, &firm).await;
            if let Json::Object(m) = &mut summary {
                m.insert("challenger".into(), shadow);
            }
        }
        record.result = Some(summary);
        tracing::info!(
            bank = %bank,
            model = %model.name,
            version,
            outcome = ?scored.decision.outcome,
            unmatched = scored.output.any_unmatched(),
            "firm scored"
        );
        Ok(ScoreResponse {
            audit_id: record.id.clone(),
            uscc: req.uscc.clone(),
            model: ModelUsed {
                owner: model.owner.clone(),
                name: model.name.clone(),
                version,
                format: loaded.meta.format,
            },
            authorization_id: authorization.id,
            decision: scored.decision,
            scored_at: record.at,
        })
    }

    /// The challenger's answer, for the audit and the log only. Its failure never fails the
    /// request: the champion answered.
    async fn shadow(&self, model: &ModelRecord, version: u64, firm: &FirmIndicators) -> Json {
        match self.registry.load(&model.owner, &model.name, version).await {
            Ok(loaded) => {
                let scored = score_with(&loaded, firm);
                tracing::info!(model = %model.name, version, outcome = ?scored.decision.outcome, "challenger scored in shadow");
                let mut s = summary(&scored.decision);
                if let Json::Object(m) = &mut s {
                    m.insert("version".into(), json!(version));
                }
                s
            }
            Err(e) => {
                tracing::warn!(model = %model.name, version, error = %e, "challenger failed to load");
                json!({"version": version, "error": e.to_string()})
            }
        }
    }
}

/// The audit's reason code for a refused request.
fn refusal_code(e: &Error, record: &AuditRecord) -> String {
    if let Some(r) = record
        .result
        .as_ref()
        .and_then(|r| r.get("refusal"))
        .and_then(Json::as_str)
    {
        return r.to_string();
    }
    match e {
        Error::Forbidden(_) => "forbidden",
        Error::NotFound(what) if what.starts_with("profile") => "no_profile",
        Error::NotFound(_) => "no_model",
        Error::Conflict(_) => "no_active_version",
        Error::Validation(_) | Error::Malformed { .. } => "invalid_request",
        _ => "error",
    }
    .to_string()
}
