//! The financing flow: loan codes (贷款码), the applicant's submission, financing demands, and
//! the claims banks take on them (抢单, at most three per demand) with their progress.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use validator::Validate;

use crate::error::{Error, FieldError, Findings};
use crate::ids::{BankId, IdError, Phone, ProductId, Uscc};
use crate::money::{Bp, Fen};
use crate::product::{MAX_RATE, MAX_TERM_MONTHS};

/// Most banks that may hold a claim on one demand at a time (Ningbo's rule).
pub const MAX_CLAIMS: i64 = 3;

/// Characters WeChat allows in a mini-program QR `scene` besides letters and digits.
const SCENE_SYMBOLS: &str = "!#$&'()*+,/:;=?@-._~";
/// Longest `scene` WeChat accepts.
pub const MAX_SCENE_LEN: usize = 32;

/// A loan code's id, carried as the `scene` of the mini-program QR: 1–32 characters of
/// letters, digits and `!#$&'()*+,/:;=?@-._~`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, utoipa::ToSchema)]
#[schema(value_type = String, example = "nbcb-yz-2026")]
pub struct LoanCodeId(String);

impl LoanCodeId {
    /// Parses a scene string.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.is_empty() || s.len() > MAX_SCENE_LEN {
            return Err(IdError::Format("a loan code is 1–32 characters"));
        }
        if let Some((position, found)) = s
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || SCENE_SYMBOLS.contains(*c)))
        {
            return Err(IdError::Character { position, found });
        }
        Ok(LoanCodeId(s.to_owned()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LoanCodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_newtype!(LoanCodeId);

crate::ids::ulid_id!(
    /// Id of a financing demand (a ULID).
    DemandId
);

/// An applicant of the mini-program: an opaque id derived from the WeChat `openid`, so the
/// openid itself never appears in keys, tokens or logs.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String)]
pub struct ApplicantId(pub String);

impl fmt::Display for ApplicantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A loan code: who issued it (the platform or a bank, optionally a branch, a product or a
/// campaign) and when it may be scanned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoanCode {
    /// The QR `scene`.
    pub id: LoanCodeId,
    /// Issuing bank; `None` for a platform code.
    pub bank_id: Option<BankId>,
    /// Issuing branch (free text, e.g. `鄞州支行`).
    pub branch: Option<String>,
    /// The product the code advertises, if any.
    pub product_id: Option<ProductId>,
    /// Campaign name, if any.
    pub campaign: Option<String>,
    /// First moment the code may be used.
    pub valid_from: DateTime<Utc>,
    /// Last moment the code may be used; none means open-ended.
    pub valid_to: Option<DateTime<Utc>>,
    /// Who created it (token subject).
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl LoanCode {
    /// True if a scan at `now` may use the code.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.valid_from <= now && self.valid_to.is_none_or(|to| now <= to)
    }
}

/// What an admin sends to create a loan code.
#[derive(Debug, Clone, PartialEq, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoanCodeDraft {
    /// The `scene` to use; generated when absent.
    #[serde(default)]
    pub id: Option<LoanCodeId>,
    /// Issuing bank: a bank admin's own bank (may be omitted); platform admins may name any
    /// bank or none (a platform code).
    #[serde(default)]
    pub bank_id: Option<BankId>,
    /// Issuing branch.
    #[serde(default)]
    #[validate(length(min = 1, max = 64, message = "must be 1–64 characters"))]
    pub branch: Option<String>,
    /// Advertised product (must be the issuing bank's).
    #[serde(default)]
    pub product_id: Option<ProductId>,
    /// Campaign name.
    #[serde(default)]
    #[validate(length(min = 1, max = 64, message = "must be 1–64 characters"))]
    pub campaign: Option<String>,
    /// Start of validity (default: now).
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    /// End of validity.
    #[serde(default)]
    pub valid_to: Option<DateTime<Utc>>,
}

impl LoanCodeDraft {
    /// Every rule the draft breaks.
    pub fn check(&self) -> Result<(), Error> {
        let mut f = Findings::default();
        if let Err(errors) = self.validate() {
            crate::error::from_validator(&errors)
                .into_iter()
                .for_each(|e| f.push(e));
        }
        if let (Some(from), Some(to)) = (self.valid_from, self.valid_to)
            && to < from
        {
            f.push(FieldError::new(
                "valid_to",
                "range_inverted",
                "must not be before valid_from",
            ));
        }
        if self.product_id.is_some() && self.bank_id.is_none() {
            f.push(FieldError::new(
                "product_id",
                "needs_bank",
                "a product code must name the issuing bank",
            ));
        }
        f.finish()
    }
}

/// In what capacity the applicant acts for the firm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplicantRole {
    /// The firm's legal representative (法定代表人).
    LegalRepresentative,
    /// Someone the firm authorised (授权代理人).
    AuthorisedAgent,
}

/// The applicant's consent to the data authorization, as the mini-program recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// Must be `true`: the applicant ticked the authorization.
    pub accepted: bool,
    /// Version of the authorization text shown (e.g. `auth-v3`).
    #[validate(length(min = 1, max = 32, message = "must be 1–32 characters"))]
    pub text_version: String,
    /// When the applicant accepted it (device time).
    pub accepted_at: DateTime<Utc>,
}

/// What the mini-program submits after a scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// The scanned loan code.
    pub loan_code: LoanCodeId,
    /// The firm's unified social credit code (check characters verified).
    pub uscc: Uscc,
    /// The firm's registered name.
    #[validate(length(min = 2, max = 100, message = "must be 2–100 characters"))]
    pub firm_name: String,
    /// The applicant's capacity.
    pub applicant_role: ApplicantRole,
    /// Amount wanted (fen).
    pub amount: Fen,
    /// Term wanted (months).
    pub term_months: u16,
    /// What the money is for.
    #[validate(length(min = 2, max = 200, message = "must be 2–200 characters"))]
    pub purpose: String,
    /// Whether the firm can offer collateral.
    pub collateral: bool,
    /// Consent to the data authorization.
    #[validate(nested)]
    pub consent: Consent,
}

/// How far in the future a device clock may put the consent time.
const CLOCK_SKEW_SECS: i64 = 300;

impl Submission {
    /// Every rule the submission breaks; `cap` is the platform's largest demand.
    pub fn check(&self, cap: Fen, now: DateTime<Utc>) -> Result<(), Error> {
        let mut f = Findings::default();
        if let Err(errors) = self.validate() {
            crate::error::from_validator(&errors)
                .into_iter()
                .for_each(|e| f.push(e));
        }
        if self.firm_name.trim().chars().count() < 2 && self.firm_name.chars().count() >= 2 {
            f.push(FieldError::new("firm_name", "blank", "must not be blank"));
        }
        if self.amount < Fen(1) || self.amount > cap {
            f.push(FieldError::new(
                "amount",
                "out_of_range",
                format!("must be 1–{} fen", cap.0),
            ));
        }
        if !(1..=MAX_TERM_MONTHS).contains(&self.term_months) {
            f.push(FieldError::new(
                "term_months",
                "out_of_range",
                format!("must be 1–{MAX_TERM_MONTHS} months"),
            ));
        }
        if !self.consent.accepted {
            f.push(FieldError::new(
                "consent.accepted",
                "consent_required",
                "the data authorization must be accepted to apply",
            ));
        }
        if self.consent.accepted_at > now + chrono::Duration::seconds(CLOCK_SKEW_SECS) {
            f.push(FieldError::new(
                "consent.accepted_at",
                "in_future",
                "must not be in the future",
            ));
        }
        f.finish()
    }
}

/// The consent as recorded with the demand: what was accepted, by whom, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsentRecord {
    /// Version of the authorization text.
    pub text_version: String,
    /// When the applicant accepted (device time).
    pub accepted_at: DateTime<Utc>,
    /// When the platform recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Who consented.
    pub applicant: ApplicantId,
    /// In what capacity.
    pub applicant_role: ApplicantRole,
}

/// Where a demand is in the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DemandStatus {
    /// Written; waiting for matching.
    Submitted,
    /// Matched and offered to banks.
    Offered,
    /// No listed product fits; the firm is told.
    Unmatched,
}

/// A firm's request for credit, made through a loan code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinancingDemand {
    /// Id.
    pub id: DemandId,
    /// The loan code scanned.
    pub loan_code: LoanCodeId,
    /// The bank that issued the code, if any (offered first when it has a matching product).
    pub issuing_bank: Option<BankId>,
    /// The product the code advertised, if any.
    pub code_product: Option<ProductId>,
    /// Who applied.
    pub applicant: ApplicantId,
    /// The applicant's verified phone (personal data: masked in every view but the claiming
    /// banks' and the applicant's own).
    pub phone: Phone,
    /// The firm.
    pub uscc: Uscc,
    /// The firm's name.
    pub firm_name: String,
    /// Amount wanted.
    pub amount: Fen,
    /// Term wanted (months).
    pub term_months: u16,
    /// Purpose.
    pub purpose: String,
    /// Collateral available.
    pub collateral: bool,
    /// The consent.
    pub consent: ConsentRecord,
    /// Where it is.
    pub status: DemandStatus,
    /// Banks offered the demand, best first.
    #[serde(default)]
    pub offered_banks: Vec<BankId>,
    /// When it was submitted.
    pub submitted_at: DateTime<Utc>,
}

/// A bank's claim on a demand, tracked to its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClaimStage {
    /// Taken by the bank (接单).
    Claimed,
    /// The bank reached the firm.
    Contacted,
    /// Credit review under way.
    UnderReview,
    /// Approved, with amount and rate.
    Approved,
    /// Declined by the bank.
    Declined,
    /// Money paid out.
    Disbursed,
    /// Given up by the bank, or taken back for lack of progress; the slot is free again.
    Released,
}

impl ClaimStage {
    /// True if the claim still occupies one of the demand's slots.
    pub fn holds_slot(self) -> bool {
        !matches!(self, ClaimStage::Released)
    }

    /// True if nothing follows this stage.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ClaimStage::Declined | ClaimStage::Disbursed | ClaimStage::Released
        )
    }

    /// Checks a progress move: forward one step at a time; decline from any open stage;
    /// release only before a decision.
    pub fn transition(self, to: ClaimStage) -> Result<ClaimStage, Error> {
        use ClaimStage::*;
        let ok = matches!(
            (self, to),
            (Claimed, Contacted)
                | (Contacted, UnderReview)
                | (UnderReview, Approved)
                | (Approved, Disbursed)
                | (Claimed | Contacted | UnderReview | Approved, Declined)
                | (Claimed | Contacted | UnderReview, Released)
        );
        if ok {
            Ok(to)
        } else {
            Err(Error::Conflict(format!(
                "a claim at stage {} cannot move to {}",
                self.name(),
                to.name()
            )))
        }
    }

    /// The stage's wire name.
    pub fn name(self) -> &'static str {
        use ClaimStage::*;
        match self {
            Claimed => "claimed",
            Contacted => "contacted",
            UnderReview => "under_review",
            Approved => "approved",
            Declined => "declined",
            Disbursed => "disbursed",
            Released => "released",
        }
    }
}

/// Why a claim was released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    /// The bank gave it up.
    ByBank,
    /// No progress within the configured time; the platform took it back.
    NoProgress,
}

/// One step of a claim's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StageChange {
    /// The stage reached.
    pub stage: ClaimStage,
    /// When.
    pub at: DateTime<Utc>,
    /// Who moved it (token subject, or `platform`).
    pub by: String,
    /// Free-text note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A bank's claim on a demand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Claim {
    /// The demand.
    pub demand_id: DemandId,
    /// The claiming bank.
    pub bank_id: BankId,
    /// Current stage.
    pub stage: ClaimStage,
    /// Approved amount (set at approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_amount: Option<Fen>,
    /// Approved annual rate (set at approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annual_rate_bp: Option<Bp>,
    /// Why it was released, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released: Option<ReleaseReason>,
    /// When the bank claimed it.
    pub claimed_at: DateTime<Utc>,
    /// When the stage last changed.
    pub updated_at: DateTime<Utc>,
    /// When the no-progress reminder went out, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminded_at: Option<DateTime<Utc>>,
    /// Every stage reached, oldest first.
    pub history: Vec<StageChange>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

/// A loan officer's progress report on a claim.
#[derive(Debug, Clone, PartialEq, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgressUpdate {
    /// The stage reached (`contacted`, `under_review`, `approved`, `declined`, `disbursed`).
    pub stage: ClaimStage,
    /// Approved amount: required with `approved`, refused otherwise.
    #[serde(default)]
    pub approved_amount: Option<Fen>,
    /// Approved annual rate: required with `approved`, refused otherwise.
    #[serde(default)]
    pub annual_rate_bp: Option<Bp>,
    /// Note for the record (e.g. the decline reason).
    #[serde(default)]
    #[validate(length(min = 1, max = 500, message = "must be 1–500 characters"))]
    pub note: Option<String>,
}

impl ProgressUpdate {
    /// Every rule the update breaks (stage order is checked against the claim separately).
    pub fn check(&self) -> Result<(), Error> {
        let mut f = Findings::default();
        if let Err(errors) = self.validate() {
            crate::error::from_validator(&errors)
                .into_iter()
                .for_each(|e| f.push(e));
        }
        match self.stage {
            ClaimStage::Claimed | ClaimStage::Released => f.push(FieldError::new(
                "stage",
                "not_a_progress_stage",
                "claim and release have their own routes",
            )),
            ClaimStage::Approved => {
                match self.approved_amount {
                    None => f.push(FieldError::new(
                        "approved_amount",
                        "required",
                        "required when approving",
                    )),
                    Some(a) if a < Fen(1) || a > crate::product::MAX_AMOUNT => {
                        f.push(FieldError::new(
                            "approved_amount",
                            "out_of_range",
                            format!("must be 1–{} fen", crate::product::MAX_AMOUNT.0),
                        ))
                    }
                    Some(_) => {}
                }
                match self.annual_rate_bp {
                    None => f.push(FieldError::new(
                        "annual_rate_bp",
                        "required",
                        "required when approving",
                    )),
                    Some(r) if r < Bp(1) || r > MAX_RATE => f.push(FieldError::new(
                        "annual_rate_bp",
                        "out_of_range",
                        format!("must be 1–{} bp", MAX_RATE.0),
                    )),
                    Some(_) => {}
                }
            }
            _ => {
                for (field, present) in [
                    ("approved_amount", self.approved_amount.is_some()),
                    ("annual_rate_bp", self.annual_rate_bp.is_some()),
                ] {
                    if present {
                        f.push(FieldError::new(
                            field,
                            "not_allowed",
                            "only given when approving",
                        ));
                    }
                }
            }
        }
        f.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scenes_follow_wechat_rules() {
        assert!(LoanCodeId::parse("nbcb-yz_2026.Q4~!").is_ok());
        assert!(LoanCodeId::parse(&"a".repeat(32)).is_ok());
        assert!(LoanCodeId::parse(&"a".repeat(33)).is_err());
        assert!(LoanCodeId::parse("").is_err());
        assert_eq!(
            LoanCodeId::parse("ab c"),
            Err(IdError::Character {
                position: 2,
                found: ' '
            })
        );
        assert!(LoanCodeId::parse("贷款码").is_err());
        assert!(LoanCodeId::parse("a%20").is_err(), "% is not allowed");
    }

    fn submission() -> Submission {
        serde_json::from_value(json!({
            "loan_code": "nbcb-yz", "uscc": "91350100M000100Y43", "firm_name": "宁波甬江机械有限公司",
            "applicant_role": "legal_representative", "amount": 50_000_000, "term_months": 12,
            "purpose": "采购原材料", "collateral": false,
            "consent": {"accepted": true, "text_version": "auth-v3", "accepted_at": "2026-11-23T01:00:00Z"}
        }))
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2026-11-23T01:01:00Z".parse().unwrap()
    }

    #[test]
    fn a_good_submission_passes_and_each_bad_field_is_named() {
        let cap = Fen::yuan(10_000_000);
        assert!(submission().check(cap, now()).is_ok());
        type Breaks = fn(&mut Submission);
        let cases: [(&str, Breaks); 6] = [
            ("amount", |s| s.amount = Fen(0)),
            ("amount", |s| s.amount = Fen::yuan(10_000_001)),
            ("term_months", |s| s.term_months = 0),
            ("consent.accepted", |s| s.consent.accepted = false),
            ("purpose", |s| s.purpose = String::new()),
            ("consent.accepted_at", |s| {
                s.consent.accepted_at = "2026-11-24T00:00:00Z".parse().unwrap()
            }),
        ];
        for (field, breaks) in cases {
            let mut s = submission();
            breaks(&mut s);
            let Err(Error::Validation(errors)) = s.check(cap, now()) else {
                panic!("{field} should be refused")
            };
            assert!(
                errors.iter().any(|e| e.field == field),
                "{field} not named in {errors:?}"
            );
        }
    }

    #[test]
    fn a_bad_uscc_or_unknown_field_does_not_deserialize() {
        let mut v = serde_json::to_value(submission()).unwrap();
        v["uscc"] = json!("91350100M000100Y44");
        assert!(serde_json::from_value::<Submission>(v).is_err());
        let mut v = serde_json::to_value(submission()).unwrap();
        v["phone"] = json!("13812345678");
        assert!(
            serde_json::from_value::<Submission>(v).is_err(),
            "a typed-in phone is refused"
        );
    }

    #[test]
    fn claim_stages_move_forward_only() {
        use ClaimStage::*;
        assert!(Claimed.transition(Contacted).is_ok());
        assert!(Contacted.transition(UnderReview).is_ok());
        assert!(UnderReview.transition(Approved).is_ok());
        assert!(Approved.transition(Disbursed).is_ok());
        assert!(Claimed.transition(Declined).is_ok());
        assert!(Claimed.transition(Approved).is_err(), "no skipping review");
        assert!(
            Approved.transition(Released).is_err(),
            "decided claims stay"
        );
        assert!(Disbursed.transition(Declined).is_err());
        assert!(Released.transition(Contacted).is_err());
        assert!(!Released.holds_slot() && Declined.holds_slot());
    }

    #[test]
    fn approval_needs_amount_and_rate() {
        let up = |v| serde_json::from_value::<ProgressUpdate>(v).unwrap();
        assert!(
            up(json!({"stage": "approved", "approved_amount": 100, "annual_rate_bp": 420}))
                .check()
                .is_ok()
        );
        assert!(up(json!({"stage": "approved"})).check().is_err());
        assert!(
            up(json!({"stage": "contacted", "annual_rate_bp": 420}))
                .check()
                .is_err()
        );
        assert!(up(json!({"stage": "released"})).check().is_err());
        assert!(
            up(json!({"stage": "approved", "approved_amount": 100, "annual_rate_bp": 9000}))
                .check()
                .is_err()
        );
    }
}
