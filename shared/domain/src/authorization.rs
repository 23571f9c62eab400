//! A firm's authorization (主体授权) of one bank: which data interfaces, for which purposes,
//! from when until when, on what evidence, and whether it was revoked. Every query of a firm's
//! data and every score is allowed only under a live authorization; the check is here, once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{BankId, Uscc};

crate::ids::ulid_id!(
    /// Id of an authorization (a ULID).
    AuthorizationId
);

/// The data interface that covers credit scoring (a model score is a view of the firm's data).
pub const CREDIT_EVALUATION: &str = "credit_evaluation";

/// What a firm authorizes a bank for when the bank claims its financing demand: the consent
/// the applicant gave on submitting covers the data a loan decision needs, for the life of a
/// loan (before, during and after): the score and every data interface of the catalogue.
pub const CLAIM_SCOPE: &[&str] = &[
    CREDIT_EVALUATION,
    crate::interfaces::BASIC_REGISTRATION,
    crate::interfaces::PROPERTY_SUMMARY,
    crate::interfaces::TAX_SUMMARY,
    crate::interfaces::SOCIAL_INSURANCE_SUMMARY,
    crate::interfaces::UTILITIES_TREND,
    crate::interfaces::LITIGATION_AND_PENALTIES,
];
/// Purposes of a claim's authorization.
pub const CLAIM_PURPOSES: &[Purpose] = &[Purpose::PreLoan, Purpose::InLoan, Purpose::PostLoan];
/// How long a claim's authorization lasts.
pub const CLAIM_VALIDITY_DAYS: i64 = 365;

/// Why a bank asks: the stage of the loan, or customer acquisition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Before granting (application, pre-approval).
    PreLoan,
    /// During the loan (monitoring).
    InLoan,
    /// After the loan (collection, review).
    PostLoan,
    /// Customer acquisition.
    Marketing,
}

/// How and when the firm consented: kept as evidence, never shown to other banks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentEvidence {
    /// Who consented: the applicant's or legal representative's platform id (never a name).
    pub consented_by: String,
    /// How: `loan_code_scan`, `mini_program`, `counter` …
    pub method: String,
    /// The version of the consent text shown.
    pub text_version: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// One firm's authorization of one bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Authorization {
    /// Id.
    pub id: AuthorizationId,
    /// The firm.
    #[schema(value_type = String)]
    pub uscc: Uscc,
    /// The bank authorized.
    #[schema(value_type = String)]
    pub bank_id: BankId,
    /// Data interfaces covered (catalogue ids).
    pub scope: Vec<String>,
    /// Purposes covered.
    pub purposes: Vec<Purpose>,
    /// Valid from (inclusive).
    pub valid_from: DateTime<Utc>,
    /// Valid until (exclusive).
    pub valid_until: DateTime<Utc>,
    /// The consent.
    pub evidence: ConsentEvidence,
    /// When the firm revoked it; queries are refused from that instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Why an authorization does not allow a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, thiserror::Error, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizationRefusal {
    /// The firm has not authorized this bank at all.
    #[error("the firm has not authorized this bank")]
    None,
    /// Not valid yet.
    #[error("the firm's authorization is not valid yet")]
    NotYetValid,
    /// Past its end.
    #[error("the firm's authorization has expired")]
    Expired,
    /// Revoked by the firm.
    #[error("the firm revoked its authorization")]
    Revoked,
    /// Does not cover the interface.
    #[error("the firm's authorization does not cover this data interface")]
    OutOfScope,
    /// Does not cover the stated purpose.
    #[error("the firm's authorization does not cover this purpose")]
    PurposeNotCovered,
}

impl Authorization {
    /// The authorization a bank receives when it claims a demand, on the consent the
    /// applicant gave with it: valid from the claim for [`CLAIM_VALIDITY_DAYS`].
    pub fn for_claim(
        id: AuthorizationId,
        demand: &crate::FinancingDemand,
        bank: &BankId,
        now: DateTime<Utc>,
    ) -> Authorization {
        Authorization {
            id,
            uscc: demand.uscc.clone(),
            bank_id: bank.clone(),
            scope: CLAIM_SCOPE.iter().map(|s| (*s).to_owned()).collect(),
            purposes: CLAIM_PURPOSES.to_vec(),
            valid_from: now,
            valid_until: now + chrono::Duration::days(CLAIM_VALIDITY_DAYS),
            evidence: ConsentEvidence {
                consented_by: demand.consent.applicant.to_string(),
                method: "loan_code_scan".into(),
                text_version: demand.consent.text_version.clone(),
                at: demand.consent.accepted_at,
            },
            revoked_at: None,
        }
    }

    /// Whether this authorization allows `interface` for `purpose` at `now`, and if not, why.
    pub fn allows(
        &self,
        interface: &str,
        purpose: Purpose,
        now: DateTime<Utc>,
    ) -> Result<(), AuthorizationRefusal> {
        if self.revoked_at.is_some_and(|r| r <= now) {
            return Err(AuthorizationRefusal::Revoked);
        }
        if now < self.valid_from {
            return Err(AuthorizationRefusal::NotYetValid);
        }
        if now >= self.valid_until {
            return Err(AuthorizationRefusal::Expired);
        }
        if !self.scope.iter().any(|s| s == interface) {
            return Err(AuthorizationRefusal::OutOfScope);
        }
        if !self.purposes.contains(&purpose) {
            return Err(AuthorizationRefusal::PurposeNotCovered);
        }
        Ok(())
    }
}

/// The first of a firm's authorizations of a bank that allows the request; otherwise the
/// refusal of the one that came closest (a revoked or expired one says more than "none").
pub fn live<'a>(
    held: &'a [Authorization],
    interface: &str,
    purpose: Purpose,
    now: DateTime<Utc>,
) -> Result<&'a Authorization, AuthorizationRefusal> {
    let mut best = AuthorizationRefusal::None;
    for a in held {
        match a.allows(interface, purpose, now) {
            Ok(()) => return Ok(a),
            Err(r) => best = best.max_by_detail(r),
        }
    }
    Err(best)
}

impl AuthorizationRefusal {
    /// Of two refusals, the one telling the caller more (scope and purpose mean a live
    /// authorization exists; then revoked, expired, not yet valid; "none" least).
    fn max_by_detail(self, other: AuthorizationRefusal) -> AuthorizationRefusal {
        fn rank(r: AuthorizationRefusal) -> u8 {
            match r {
                AuthorizationRefusal::None => 0,
                AuthorizationRefusal::NotYetValid => 1,
                AuthorizationRefusal::Expired => 2,
                AuthorizationRefusal::Revoked => 3,
                AuthorizationRefusal::OutOfScope => 4,
                AuthorizationRefusal::PurposeNotCovered => 5,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, h, 0, 0)
            .single()
            .expect("valid")
    }

    fn auth() -> Authorization {
        Authorization {
            id: AuthorizationId(ulid::Ulid::from_parts(1, 1)),
            uscc: Uscc::parse("91350100M000100Y43").expect("valid"),
            bank_id: BankId::parse("nbcb").expect("valid"),
            scope: vec![CREDIT_EVALUATION.into()],
            purposes: vec![Purpose::PreLoan],
            valid_from: at(8),
            valid_until: at(18),
            evidence: ConsentEvidence {
                consented_by: "app-1".into(),
                method: "loan_code_scan".into(),
                text_version: "v3".into(),
                at: at(8),
            },
            revoked_at: None,
        }
    }

    #[test]
    fn window_scope_purpose_and_revocation_each_refuse() {
        let a = auth();
        assert_eq!(a.allows(CREDIT_EVALUATION, Purpose::PreLoan, at(9)), Ok(()));
        assert_eq!(
            a.allows(CREDIT_EVALUATION, Purpose::PreLoan, at(7)),
            Err(AuthorizationRefusal::NotYetValid)
        );
        assert_eq!(
            a.allows(CREDIT_EVALUATION, Purpose::PreLoan, at(18)),
            Err(AuthorizationRefusal::Expired)
        );
        assert_eq!(
            a.allows("tax_summary", Purpose::PreLoan, at(9)),
            Err(AuthorizationRefusal::OutOfScope)
        );
        assert_eq!(
            a.allows(CREDIT_EVALUATION, Purpose::Marketing, at(9)),
            Err(AuthorizationRefusal::PurposeNotCovered)
        );
        let revoked = Authorization {
            revoked_at: Some(at(10)),
            ..auth()
        };
        assert_eq!(
            revoked.allows(CREDIT_EVALUATION, Purpose::PreLoan, at(9)),
            Ok(())
        );
        assert_eq!(
            revoked.allows(CREDIT_EVALUATION, Purpose::PreLoan, at(10)),
            Err(AuthorizationRefusal::Revoked)
        );
    }

    #[test]
    fn live_picks_an_allowing_one_or_the_most_telling_refusal() {
        let expired = Authorization {
            valid_until: at(9),
            ..auth()
        };
        assert_eq!(
            live(&[], CREDIT_EVALUATION, Purpose::PreLoan, at(10)),
            Err(AuthorizationRefusal::None)
        );
        assert_eq!(
            live(
                std::slice::from_ref(&expired),
                CREDIT_EVALUATION,
                Purpose::PreLoan,
                at(10)
            ),
            Err(AuthorizationRefusal::Expired)
        );
        let both = [expired, auth()];
        assert_eq!(
            live(&both, CREDIT_EVALUATION, Purpose::PreLoan, at(10)).map(|a| a.valid_until),
            Ok(at(18))
        );
    }
}
