//! Data-interface queries (数据查询): a bank reads one interface of one firm's profile, only
//! under the firm's live authorization of that bank covering that interface and the purpose it
//! states, within its daily quota, and gets the masked view (never raw personal data). Every
//! query — allowed or refused — is audited before the answer leaves; an audit that cannot be
//! written fails the request.
//!
//! Also here: the audit listing (a bank its own records, platform staff everyone's) and the
//! firm's side of its authorizations (the applicant lists and revokes what they consented to).
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | a bank's query count of one business day | `QUOTA#<bank>` | `DAY#<yyyy-mm-dd>` | `used` (expires two days later) |
//!
//! Not in this slice yet: screening (find firms by indicator filters). Bulk exports of the
//! authorized portfolio are [`crate::data_export`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use puhui_domain::authorization::{Authorization, AuthorizationRefusal, Purpose};
use puhui_domain::interfaces::Catalogue;
use puhui_domain::time::business_date;
use puhui_domain::{ApplicantId, AuthorizationId, BankId, Error, Principal, Role, Uscc};
use puhui_engines::masking::{FieldStatus, MaskedView, mask_view};
use puhui_ports::{Clock, Condition, IdGenerator, Item, Key, PortError, Query, Table, Update};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{AuditLog, AuditOutcome, AuditRecord, sha256_json};
use crate::authorizations::Authorizations;
use crate::paging::all_pages;
use crate::{Listing, PageRequest, codec, profiles};

/// The audit action of a data-interface query.
pub const ACTION: &str = "data_query";
/// Default queries a bank may make per business day.
pub const DEFAULT_DAILY_QUOTA: u64 = 10_000;
/// Longest interface id kept in an audit record (ids come from the path: untrusted).
const MAX_AUDITED_ID: usize = 64;

/// Quotas: a default and per-bank overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataQueryConfig {
    /// Queries a bank may make per business day (Asia/Shanghai) unless overridden.
    pub daily_quota: u64,
    /// Per-bank quotas.
    pub bank_quotas: HashMap<BankId, u64>,
}

impl Default for DataQueryConfig {
    fn default() -> Self {
        DataQueryConfig {
            daily_quota: DEFAULT_DAILY_QUOTA,
            bank_quotas: HashMap::new(),
        }
    }
}

impl DataQueryConfig {
    /// Reads `PUHUI_DATA_QUERY_DAILY_QUOTA` (default 10000) and
    /// `PUHUI_DATA_QUERY_BANK_QUOTAS` (`nbcb=5000,czbank=200`); the error names the variable.
    pub fn from_env() -> Result<Self, String> {
        let mut c = DataQueryConfig::default();
        if let Ok(v) = std::env::var("PUHUI_DATA_QUERY_DAILY_QUOTA")
            && !v.is_empty()
        {
            c.daily_quota = v
                .parse()
                .map_err(|_| format!("PUHUI_DATA_QUERY_DAILY_QUOTA must be a count, got {v}"))?;
        }
        if let Ok(v) = std::env::var("PUHUI_DATA_QUERY_BANK_QUOTAS") {
            c.bank_quotas = parse_bank_quotas(&v)
                .map_err(|reason| format!("PUHUI_DATA_QUERY_BANK_QUOTAS: {reason}"))?;
        }
        Ok(c)
    }

    /// The bank's quota.
    pub fn quota_of(&self, bank: &BankId) -> u64 {
        self.bank_quotas
            .get(bank)
            .copied()
            .unwrap_or(self.daily_quota)
    }
}

fn parse_bank_quotas(s: &str) -> Result<HashMap<BankId, u64>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (bank, n) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not bank=count"))?;
            let bank = BankId::parse(bank.trim()).map_err(|e| format!("{bank:?}: {e}"))?;
            let n = n
                .trim()
                .parse()
                .map_err(|_| format!("{n:?} is not a count"))?;
            Ok((bank, n))
        })
        .collect()
}

/// Why a query is refused (each with its audit reason code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryRefusal {
    /// The caller lacks `loan_officer` and `risk_admin`.
    Role,
    /// No such interface in the catalogue.
    UnknownInterface(String),
    /// The firm's authorization does not allow it.
    Authorization(AuthorizationRefusal),
    /// The bank used up its quota for the business day.
    Quota {
        /// The quota.
        limit: u64,
    },
    /// The ingest has written nothing this interface reads for the firm.
    NoProfile(Uscc),
}

impl std::fmt::Display for QueryRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryRefusal::Role => {
                f.write_str("querying firm data needs the loan_officer or risk_admin role")
            }
            QueryRefusal::UnknownInterface(id) => write!(f, "no data interface {id}"),
            QueryRefusal::Authorization(r) => write!(f, "{r}"),
            QueryRefusal::Quota { limit } => write!(
                f,
                "the bank's daily quota of {limit} queries is used up; it resets at midnight Beijing time"
            ),
            QueryRefusal::NoProfile(uscc) => {
                write!(f, "no profile data of firm {uscc} for this interface")
            }
        }
    }
}

impl std::error::Error for QueryRefusal {}

impl From<AuthorizationRefusal> for QueryRefusal {
    fn from(r: AuthorizationRefusal) -> Self {
        QueryRefusal::Authorization(r)
    }
}

impl QueryRefusal {
    /// The reason code kept in the audit record.
    pub fn code(&self) -> &'static str {
        match self {
            QueryRefusal::Role => "forbidden_role",
            QueryRefusal::UnknownInterface(_) => "unknown_interface",
            QueryRefusal::Authorization(r) => match r {
                AuthorizationRefusal::None => "no_authorization",
                AuthorizationRefusal::NotYetValid => "not_yet_valid",
                AuthorizationRefusal::Expired => "expired",
                AuthorizationRefusal::Revoked => "revoked",
                AuthorizationRefusal::OutOfScope => "out_of_scope",
                AuthorizationRefusal::PurposeNotCovered => "purpose_not_covered",
            },
            QueryRefusal::Quota { .. } => "quota_exhausted",
            QueryRefusal::NoProfile(_) => "no_profile",
        }
    }
}

impl From<QueryRefusal> for Error {
    fn from(r: QueryRefusal) -> Error {
        match r {
            QueryRefusal::UnknownInterface(_) | QueryRefusal::NoProfile(_) => {
                Error::NotFound(strip_not_found(&r.to_string()))
            }
            other => Error::Forbidden(other.to_string()),
        }
    }
}

/// `Error::NotFound` appends "not found"; drop the leading "no " so the sentence reads.
fn strip_not_found(s: &str) -> String {
    s.strip_prefix("no ").unwrap_or(s).to_owned()
}

/// One interface of one firm as the bank may see it, with the audit record it left.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DataView {
    /// The audit record of this query.
    pub audit_id: String,
    /// The firm.
    #[schema(value_type = String)]
    pub uscc: Uscc,
    /// The purpose stated.
    pub purpose: Purpose,
    /// The authorization relied on.
    pub authorization_id: AuthorizationId,
    /// When.
    pub queried_at: DateTime<Utc>,
    /// The masked view, with each field's source and as-of date.
    #[serde(flatten)]
    pub view: MaskedView,
}

/// How an authorization stands now, for the firm's own listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizationStatus {
    /// In force.
    Live,
    /// Starts later.
    NotYetValid,
    /// Past its end.
    Expired,
    /// Revoked.
    Revoked,
}

/// One of the firm's authorizations, as its applicant sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApplicantAuthorization {
    /// How it stands now.
    pub status: AuthorizationStatus,
    /// The authorization.
    pub authorization: Authorization,
}

/// Whose audit records a listing asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Platform staff: one bank's records only (a bank always sees just its own).
    #[param(value_type = Option<String>)]
    pub bank: Option<BankId>,
    /// Page size (1–100, default 20).
    pub limit: Option<u32>,
    /// Cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// The data-query use cases.
pub struct DataQueryService {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    config: DataQueryConfig,
    catalogue: &'static Catalogue,
}

impl DataQueryService {
    /// The service over the table, with the built-in catalogue.
    pub fn new(
        table: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        config: DataQueryConfig,
    ) -> Self {
        DataQueryService {
            table,
            clock,
            ids,
            config,
            catalogue: Catalogue::builtin(),
        }
    }

    /// The interface catalogue (definitions only, no data).
    pub fn catalogue(&self) -> &Catalogue {
        self.catalogue
    }

    fn audit_log(&self) -> AuditLog {
        AuditLog::new(self.table.clone())
    }

    fn authorizations(&self) -> Authorizations {
        Authorizations::new(self.table.clone(), self.clock.clone())
    }

    /// One interface of one firm for the caller's bank, audited whatever the outcome. A caller
    /// without a bank has no tenant to audit under and is refused before anything is read.
    pub async fn query(
        &self,
        who: &Principal,
        uscc: &Uscc,
        interface: &str,
        purpose: Purpose,
    ) -> Result<DataView, Error> {
        let bank = who.bank_id.clone().ok_or_else(|| {
            Error::Forbidden("querying firm data needs a token issued for a bank".into())
        })?;
        let now = self.clock.now();
        let audited_id: String = interface.chars().take(MAX_AUDITED_ID).collect();
        let mut record = AuditRecord {
            id: self.ids.ulid().to_string(),
            at: now,
            bank_id: bank.clone(),
            user: who.subject.clone(),
            action: ACTION.into(),
            uscc: Some(uscc.clone()),
            purpose: Some(purpose),
            authorization_id: None,
            subject: Some(audited_id),
            inputs_sha256: None,
            outcome: AuditOutcome::Allowed,
            result: None,
            response_sha256: None,
        };
        let result = self
            .query_inner(who, &bank, uscc, interface, purpose, now, &mut record)
            .await;
        let answer = match result {
            Ok(Ok(view)) => {
                record.response_sha256 = Some(sha256_json(&view));
                Ok(view)
            }
            Ok(Err(refusal)) => {
                record.outcome = AuditOutcome::Refused {
                    reason: refusal.code().into(),
                };
                Err(refusal.into())
            }
            Err(e) => {
                // A fault is recorded too: the request was made, and nothing was served.
                record.outcome = AuditOutcome::Refused {
                    reason: "error".into(),
                };
                Err(e)
            }
        };
        self.audit_log().append(&record).await?;
        answer
    }

    #[allow(clippy::too_many_arguments)]
    async fn query_inner(
        &self,
        who: &Principal,
        bank: &BankId,
        uscc: &Uscc,
        interface: &str,
        purpose: Purpose,
        now: DateTime<Utc>,
        record: &mut AuditRecord,
    ) -> Result<Result<DataView, QueryRefusal>, Error> {
        if !(who.has(Role::LoanOfficer) || who.has(Role::RiskAdmin)) {
            return Ok(Err(QueryRefusal::Role));
        }
        let Some(iface) = self.catalogue.get(interface) else {
            return Ok(Err(QueryRefusal::UnknownInterface(
                record.subject.clone().unwrap_or_default(),
            )));
        };
        record.subject = Some(format!("{}@{}", iface.id, iface.version));
        let authorization = match self
            .authorizations()
            .require(uscc, bank, &iface.id, purpose)
            .await?
        {
            Ok(a) => a,
            Err(r) => return Ok(Err(r.into())),
        };
        record.authorization_id = Some(authorization.id);
        // Only queries the firm allowed count against the quota: a refused one read nothing.
        if let Err(r) = self.take_quota(bank, now).await? {
            return Ok(Err(r));
        }
        let profile = profiles::profile(self.table.as_ref(), uscc).await?;
        let wanted = iface.categories();
        if !profile.keys().any(|c| wanted.contains(c)) {
            return Ok(Err(QueryRefusal::NoProfile(uscc.clone())));
        }
        let view = mask_view(iface, &profile);
        let count = |s: FieldStatus| view.fields.iter().filter(|f| f.status == s).count();
        record.result = Some(json!({
            "present": count(FieldStatus::Present),
            "missing": count(FieldStatus::Missing),
            "withheld": count(FieldStatus::Withheld),
            "unusable": count(FieldStatus::Unusable),
            "oldest_as_of": view.oldest_as_of,
        }));
        tracing::info!(bank = %bank, interface = %iface.id, ?purpose, "data interface served");
        Ok(Ok(DataView {
            audit_id: record.id.clone(),
            uscc: uscc.clone(),
            purpose,
            authorization_id: authorization.id,
            queried_at: now,
            view,
        }))
    }

    /// Counts one query against the bank's quota of the business day: a conditional add on the
    /// day's counter (created by the day's first query), so concurrent queries never overshoot.
    async fn take_quota(
        &self,
        bank: &BankId,
        now: DateTime<Utc>,
    ) -> Result<Result<(), QueryRefusal>, Error> {
        let limit = self.config.quota_of(bank);
        let exhausted = Ok(Err(QueryRefusal::Quota { limit }));
        if limit == 0 {
            return exhausted;
        }
        let day = business_date(now);
        let key = Key::new(format!("QUOTA#{bank}"), format!("DAY#{day}"));
        let bound = i64::try_from(limit).unwrap_or(i64::MAX);
        // Two rounds cover the one race: another query creating the day's counter meanwhile.
        for _ in 0..2 {
            let add = Update {
                add: vec![("used".into(), 1)],
                ..Update::default()
            };
            let below = Condition::Below {
                attr: "used".into(),
                bound,
            };
            match self.table.update(&key, add, Some(below)).await {
                Ok(_) => return Ok(Ok(())),
                Err(PortError::ConditionFailed(_)) => {}
                Err(e) => return Err(e.into()),
            }
            if self.table.get(&key).await?.is_some() {
                return exhausted;
            }
            let mut first = Item::new(
                key.clone(),
                json!({"used": 1}).as_object().cloned().unwrap_or_default(),
            );
            // Kept two days past the day so an audit of the quota can still read it.
            first.expires_at = day
                .succ_opt()
                .and_then(|d| d.succ_opt())
                .and_then(|d| d.succ_opt())
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp());
            match self.table.put(first, Some(Condition::NotExists)).await {
                Ok(()) => return Ok(Ok(())),
                Err(PortError::ConditionFailed(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Unavailable(
            "the quota counter is busy; try again".into(),
        ))
    }

    /// Audit records: a bank's staff (`loan_officer`, `risk_admin`) their own bank's; platform
    /// staff everyone's, or one bank's with `bank`. Newest first.
    pub async fn audit(
        &self,
        who: &Principal,
        filter: AuditFilter,
    ) -> Result<Listing<AuditRecord>, Error> {
        let page = PageRequest {
            limit: filter.limit,
            cursor: filter.cursor,
        };
        let log = self.audit_log();
        if who.has(Role::PlatformAdmin) && who.bank_id.is_none() {
            return match filter.bank {
                Some(bank) => log.of_bank(&bank, page).await,
                None => log.all(page).await,
            };
        }
        let own = who
            .bank_with_role(Role::LoanOfficer)
            .or_else(|_| who.bank_with_role(Role::RiskAdmin))?;
        if filter.bank.as_ref().is_some_and(|b| b != own) {
            return Err(Error::Forbidden(
                "a bank lists only its own audit records".into(),
            ));
        }
        log.of_bank(own, page).await
    }

    /// The authorizations the applicant consented to, over the firms of their demands, newest
    /// first.
    pub async fn applicant_authorizations(
        &self,
        applicant: &ApplicantId,
    ) -> Result<Vec<ApplicantAuthorization>, Error> {
        let now = self.clock.now();
        let mut out: Vec<ApplicantAuthorization> = self
            .consented_by(applicant)
            .await?
            .into_iter()
            .map(|a| ApplicantAuthorization {
                status: status_of(&a, now),
                authorization: a,
            })
            .collect();
        out.sort_by_key(|a| std::cmp::Reverse(a.authorization.id));
        Ok(out)
    }

    /// Revokes one of the applicant's authorizations from now on; another's is not found.
    pub async fn revoke_for_applicant(
        &self,
        applicant: &ApplicantId,
        id: AuthorizationId,
    ) -> Result<ApplicantAuthorization, Error> {
        let a = self
            .consented_by(applicant)
            .await?
            .into_iter()
            .find(|a| a.id == id)
            .ok_or_else(|| Error::NotFound(format!("authorization {id}")))?;
        let revoked = self
            .authorizations()
            .revoke(&a.uscc, &a.bank_id, a.id)
            .await?;
        tracing::info!(authorization = %id, bank = %revoked.bank_id, "authorization revoked by the firm");
        Ok(ApplicantAuthorization {
            status: status_of(&revoked, self.clock.now()),
            authorization: revoked,
        })
    }

    /// Every authorization of the applicant's firms whose consent the applicant gave. The firms
    /// are those of the applicant's demands (the consent is given with a demand).
    async fn consented_by(&self, applicant: &ApplicantId) -> Result<Vec<Authorization>, Error> {
        let demands = all_pages(
            self.table.as_ref(),
            Query::partition(format!("APPLICANT#{applicant}"))
                .on_gsi1()
                .prefix("DEMAND#"),
        )
        .await?;
        let firms: BTreeSet<String> = demands
            .iter()
            .filter_map(|d| d.attrs.get("uscc").and_then(|u| u.as_str()))
            .map(str::to_owned)
            .collect();
        let mut out = Vec::new();
        for uscc in firms {
            let items = all_pages(
                self.table.as_ref(),
                Query::partition(format!("AUTHZ#{uscc}")),
            )
            .await?;
            for item in items {
                let a: Authorization = codec::from_item(item)?;
                if a.evidence.consented_by == applicant.0 {
                    out.push(a);
                }
            }
        }
        Ok(out)
    }
}

fn status_of(a: &Authorization, now: DateTime<Utc>) -> AuthorizationStatus {
    if a.revoked_at.is_some_and(|r| r <= now) {
        AuthorizationStatus::Revoked
    } else if now < a.valid_from {
        AuthorizationStatus::NotYetValid
    } else if now >= a.valid_until {
        AuthorizationStatus::Expired
    } else {
        AuthorizationStatus::Live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_quotas_parse_or_say_why() {
        let q = parse_bank_quotas("nbcb=5, czbank = 0").expect("valid");
        assert_eq!(q.len(), 2);
        let c = DataQueryConfig {
            daily_quota: 7,
            bank_quotas: q,
        };
        assert_eq!(c.quota_of(&BankId::parse("nbcb").expect("valid")), 5);
        assert_eq!(c.quota_of(&BankId::parse("czbank").expect("valid")), 0);
        assert_eq!(c.quota_of(&BankId::parse("hzbank").expect("valid")), 7);
        assert!(parse_bank_quotas("nbcb").is_err());
        assert!(parse_bank_quotas("nbcb=many").is_err());
        assert!(parse_bank_quotas("").expect("empty is none").is_empty());
    }

    #[test]
    fn refusals_map_to_codes_and_statuses() {
        let r = QueryRefusal::from(AuthorizationRefusal::None);
        assert_eq!(r.code(), "no_authorization");
        assert!(matches!(Error::from(r), Error::Forbidden(_)));
        let q = QueryRefusal::Quota { limit: 3 };
        assert_eq!(q.code(), "quota_exhausted");
        assert!(matches!(Error::from(q), Error::Forbidden(m) if m.contains("quota of 3")));
        assert!(matches!(
            Error::from(QueryRefusal::UnknownInterface("x".into())),
            Error::NotFound(m) if m == "data interface x"
        ));
    }
}
