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
//! | a firm the applicant authorized directly | `APPLICANT#<applicant>` | `AUTHZ_FIRM#<uscc>` | `uscc` |
//!
//! A firm's legal representative may also authorize a bank directly (not through a financing
//! demand); the applicant is recognised as such by its verified phone matching the registration.
//! Screening is in [`crate::screening`]; bulk exports of the authorized portfolio are
//! [`crate::data_export`]; the daily quota both count against is [`crate::quota`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use puhui_domain::authorization::{
    Authorization, AuthorizationRefusal, CREDIT_EVALUATION, ConsentEvidence, Purpose,
};
use puhui_domain::error::Findings;
use puhui_domain::interfaces::Catalogue;
use puhui_domain::{
    ApplicantId, AuthorizationId, BankId, Error, FieldError, Phone, Principal, ProfileCategory,
    Role, Uscc,
};
use puhui_engines::masking::{FieldStatus, MaskedView, mask_view};
use puhui_ports::{Clock, IdGenerator, Item, Key, Query, Table, TxOp};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{AuditLog, AuditOutcome, AuditRecord, AuditedRefusal};
use crate::authorizations::Authorizations;
use crate::financing::verified_phone_in;
use crate::paging::all_pages;
use crate::{Listing, PageRequest, codec, profiles, quota};

/// The audit action of a data-interface query.
pub const ACTION: &str = "data_query";
/// Default queries a bank may make per business day.
pub const DEFAULT_DAILY_QUOTA: u64 = 10_000;
/// The daily query quota's name in the 429 problem type.
pub const DAILY_QUOTA: &str = "data-query-daily";
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
        /// Seconds until the next business day, when it refills.
        retry_after_secs: u64,
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
            QueryRefusal::Quota { limit, .. } => write!(
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

impl AuditedRefusal for QueryRefusal {
    fn code(&self) -> &'static str {
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
            QueryRefusal::Quota {
                retry_after_secs, ..
            } => Error::QuotaExhausted {
                quota: DAILY_QUOTA,
                detail: r.to_string(),
                retry_after_secs,
            },
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

/// How a direct authorization's consent was given (its evidence `method`).
pub const DIRECT_METHOD: &str = "legal_rep_direct";
/// Longest validity of a direct authorization.
pub const MAX_DIRECT_VALIDITY_DAYS: i64 = 366;
/// Longest consent text version accepted.
const MAX_TEXT_VERSION: usize = 64;

/// A firm's authorization of a bank given directly by its legal representative (not through a
/// financing demand): valid from now until `valid_until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectAuthorization {
    /// The firm (unified social credit code).
    pub uscc: String,
    /// The bank authorized.
    pub bank: String,
    /// Data interfaces covered: catalogue ids, or `credit_evaluation` for model scores.
    pub interfaces: Vec<String>,
    /// Purposes covered.
    pub purposes: Vec<Purpose>,
    /// End of validity (exclusive), at most a year from now.
    pub valid_until: DateTime<Utc>,
    /// The version of the consent text the legal representative accepted.
    pub consent_text_version: String,
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
        let served = match result {
            Ok(Ok(view)) => view,
            refused_or_failed => {
                let answer = record.conclude(refused_or_failed);
                self.audit_log().append(&record).await?;
                return answer;
            }
        };
        // A served query is counted and recorded in one transaction: it is counted exactly when
        // its record exists, and the common case costs one write.
        let mut counted = record.clone();
        let answer = counted.conclude(Ok(Ok::<_, QueryRefusal>(served)));
        match self.count_and_record(&bank, now, &counted).await {
            Ok(Ok(())) => answer,
            Ok(Err(refusal)) => {
                record.result = None;
                let answer = record.conclude(Ok(Err::<DataView, _>(refusal)));
                self.audit_log().append(&record).await?;
                answer
            }
            Err(e) => {
                // Nothing was served; the failure is recorded if the log can take it.
                record.result = None;
                let answer = record.conclude(Err::<Result<DataView, QueryRefusal>, _>(e));
                self.audit_log().append(&record).await?;
                answer
            }
        }
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

    /// Counts one served query against the bank's quota of the business day and appends its
    /// audit record, in one transaction: a query is counted exactly when it is recorded as
    /// served. Only queries the firm allowed are counted: a refused one was answered with nothing.
    async fn count_and_record(
        &self,
        bank: &BankId,
        now: DateTime<Utc>,
        record: &AuditRecord,
    ) -> Result<Result<(), QueryRefusal>, Error> {
        let append = AuditLog::append_op(record)?;
        let table = self.table.as_ref();
        let counted = quota::take(table, bank, self.config.quota_of(bank), 1, now, |count| {
            table.transact(vec![count, append.clone()])
        })
        .await?;
        Ok(counted.map_err(|q| QueryRefusal::Quota {
            limit: q.limit,
            retry_after_secs: q.retry_after_secs,
        }))
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

    /// Records the firm's authorization of a bank, given directly by the applicant as the
    /// firm's legal representative: the applicant's WeChat-verified phone must be the legal
    /// representative's phone in the firm's registration. The evidence is the applicant, the
    /// method [`DIRECT_METHOD`], the consent text version and the clock.
    pub async fn grant_for_applicant(
        &self,
        applicant: &ApplicantId,
        request: DirectAuthorization,
    ) -> Result<ApplicantAuthorization, Error> {
        let now = self.clock.now();
        let (uscc, bank, scope, purposes) = self.check_direct(&request, now)?;
        self.require_legal_rep(applicant, &uscc).await?;
        let a = Authorization {
            id: AuthorizationId(self.ids.ulid()),
            uscc,
            bank_id: bank,
            scope,
            purposes,
            valid_from: now,
            valid_until: request.valid_until,
            evidence: ConsentEvidence {
                consented_by: applicant.0.clone(),
                method: DIRECT_METHOD.into(),
                text_version: request.consent_text_version,
                at: now,
            },
            revoked_at: None,
        };
        // The firm is linked to the applicant with the grant, so it is listed (and revocable)
        // with the firms of the applicant's demands.
        let link = Item::new(
            direct_link_key(applicant, &a.uscc),
            json!({"uscc": a.uscc})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        self.authorizations()
            .grant_with(
                &a,
                vec![TxOp::Put {
                    item: link,
                    condition: None,
                }],
            )
            .await?;
        tracing::info!(authorization = %a.id, bank = %a.bank_id, "authorization granted by the legal representative");
        Ok(ApplicantAuthorization {
            status: status_of(&a, now),
            authorization: a,
        })
    }

    /// The request's firm, bank, scope and purposes, or every field error at once.
    fn check_direct(
        &self,
        r: &DirectAuthorization,
        now: DateTime<Utc>,
    ) -> Result<(Uscc, BankId, Vec<String>, Vec<Purpose>), Error> {
        let mut f = Findings::default();
        let uscc = f.check("uscc", Uscc::parse(&r.uscc));
        let bank = f.check("bank", BankId::parse(&r.bank));
        if r.interfaces.is_empty() {
            f.push(FieldError::new(
                "interfaces",
                "required",
                "name at least one interface",
            ));
        }
        let mut scope: Vec<String> = Vec::new();
        for (i, id) in r.interfaces.iter().enumerate() {
            let known = id == CREDIT_EVALUATION || self.catalogue.get(id).is_some();
            if !known {
                f.push(FieldError::new(
                    format!("interfaces[{i}]"),
                    "unknown_interface",
                    "not an interface of the catalogue (GET /v1/interfaces) nor credit_evaluation",
                ));
            } else if scope.contains(id) {
                f.push(FieldError::new(
                    format!("interfaces[{i}]"),
                    "duplicate",
                    "listed twice",
                ));
            } else {
                scope.push(id.clone());
            }
        }
        let mut purposes: Vec<Purpose> = Vec::new();
        if r.purposes.is_empty() {
            f.push(FieldError::new(
                "purposes",
                "required",
                "name at least one purpose",
            ));
        }
        for (i, p) in r.purposes.iter().enumerate() {
            if purposes.contains(p) {
                f.push(FieldError::new(
                    format!("purposes[{i}]"),
                    "duplicate",
                    "listed twice",
                ));
            } else {
                purposes.push(*p);
            }
        }
        let longest = now + chrono::Duration::days(MAX_DIRECT_VALIDITY_DAYS);
        if r.valid_until <= now {
            f.push(FieldError::new(
                "valid_until",
                "in_the_past",
                "must be after now",
            ));
        } else if r.valid_until > longest {
            f.push(FieldError::new(
                "valid_until",
                "out_of_range",
                format!("at most {MAX_DIRECT_VALIDITY_DAYS} days from now"),
            ));
        }
        let v = r.consent_text_version.as_str();
        if v.trim().is_empty()
            || v.chars().count() > MAX_TEXT_VERSION
            || v.chars().any(char::is_control)
        {
            f.push(FieldError::new(
                "consent_text_version",
                "invalid_format",
                format!("1–{MAX_TEXT_VERSION} printable characters"),
            ));
        }
        f.finish()?;
        match (uscc, bank) {
            (Some(u), Some(b)) => Ok((u, b, scope, purposes)),
            // Unreachable after `finish`, which failed on either being absent.
            _ => Err(Error::Internal(
                "direct authorization checked without firm or bank".into(),
            )),
        }
    }

    /// Refuses (403, saying why) unless the applicant's verified phone is the one the firm's
    /// registration gives for its legal representative.
    async fn require_legal_rep(&self, applicant: &ApplicantId, uscc: &Uscc) -> Result<(), Error> {
        let Some(phone) = verified_phone_in(self.table.as_ref(), applicant).await? else {
            return Err(Error::Forbidden(
                "verify your phone first: the firm's legal representative is recognised by the phone in its registration".into(),
            ));
        };
        let registered = profiles::category(self.table.as_ref(), uscc, ProfileCategory::Basic)
            .await?
            .and_then(|basic| basic.get(LEGAL_REP_PHONE).cloned())
            .and_then(|f| f.value.as_str().and_then(|p| Phone::parse(p).ok()));
        match registered {
            None => Err(Error::Forbidden(format!(
                "firm {uscc} has no legal representative's phone on record to verify you against"
            ))),
            Some(p) if p.expose() == phone.expose() => Ok(()),
            Some(_) => Err(Error::Forbidden(format!(
                "only the legal representative of firm {uscc} (by the phone in its registration) may authorize directly"
            ))),
        }
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
    /// are those of the applicant's demands (the consent is given with a demand) and those the
    /// applicant authorized directly as legal representative.
    async fn consented_by(&self, applicant: &ApplicantId) -> Result<Vec<Authorization>, Error> {
        let demands = all_pages(
            self.table.as_ref(),
            Query::partition(format!("APPLICANT#{applicant}"))
                .on_gsi1()
                .prefix("DEMAND#"),
        )
        .await?;
        let direct = all_pages(
            self.table.as_ref(),
            Query::partition(format!("APPLICANT#{applicant}")).prefix(DIRECT_LINK),
        )
        .await?;
        let firms: BTreeSet<String> = demands
            .iter()
            .chain(&direct)
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

/// Sort-key prefix of the items linking an applicant to the firms it authorized directly.
const DIRECT_LINK: &str = "AUTHZ_FIRM#";
/// The registration field holding the legal representative's phone.
const LEGAL_REP_PHONE: &str = "legal_rep_phone";

fn direct_link_key(applicant: &ApplicantId, uscc: &Uscc) -> Key {
    Key::new(
        format!("APPLICANT#{applicant}"),
        format!("{DIRECT_LINK}{uscc}"),
    )
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
        let q = QueryRefusal::Quota {
            limit: 3,
            retry_after_secs: 60,
        };
        assert_eq!(q.code(), "quota_exhausted");
        assert!(matches!(
            Error::from(q),
            Error::QuotaExhausted { quota: DAILY_QUOTA, detail, retry_after_secs: 60 }
                if detail.contains("quota of 3")
        ));
        assert!(matches!(
            Error::from(QueryRefusal::UnknownInterface("x".into())),
            Error::NotFound(m) if m == "data interface x"
        ));
    }
}
