//! Applicants: who they are comes from the WeChat login exchange, their phone from WeChat's
//! phone-number exchange — never from what a client types.

use std::sync::Arc;

use puhui_domain::{ApplicantId, Error, FieldError, Phone};
use puhui_ports::{Key, Update, WeChatError, WeChatIdentity};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::FinancingPorts;

/// The applicant use cases.
pub struct ApplicantService {
    ports: FinancingPorts,
    wechat: Arc<dyn WeChatIdentity>,
}

/// The result of a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicantLogin {
    /// Who logged in.
    pub applicant: ApplicantId,
    /// Their verified phone, if one is on record.
    pub phone: Option<Phone>,
}

pub(crate) fn applicant_key(id: &ApplicantId) -> Key {
    Key::new(format!("APPLICANT#{id}"), "PROFILE")
}

/// The verified phone recorded on an applicant item, if any.
fn recorded_phone(item: &puhui_ports::Item) -> Option<Phone> {
    item.attrs
        .get("phone")
        .and_then(|v| v.as_str())
        .and_then(|s| Phone::parse(s).ok())
}

/// The applicant id of an openid: a one-way hash, so openids stay out of keys, tokens and logs.
pub fn applicant_id(openid: &str) -> ApplicantId {
    let digest = Sha256::digest(format!("puhui-applicant\n{openid}"));
    ApplicantId(hex::encode(&digest[..16]))
}

/// Maps the exchange's errors to what the caller can act on; `field` names the code sent.
fn wechat_error(field: &str, e: WeChatError) -> Error {
    match e {
        WeChatError::InvalidCode => Error::field(
            field,
            "invalid_code",
            "the WeChat code is invalid, expired or already used; get a new one",
        ),
        WeChatError::WrongApp => Error::field(
            field,
            "wrong_app",
            "the code was issued for another mini-program",
        ),
        WeChatError::HighRiskUser => {
            Error::Forbidden("WeChat refused this account as high-risk (40226)".into())
        }
        WeChatError::RateLimited => {
            Error::Unavailable("WeChat rate limit reached (45011); retry shortly".into())
        }
        WeChatError::Unavailable(m) => Error::Unavailable(format!("WeChat: {m}")),
        WeChatError::Other { code, message } => {
            tracing::warn!(code, message = %message, "unexpected WeChat error");
            Error::Unavailable(format!("WeChat error {code}"))
        }
    }
}

impl ApplicantService {
    /// The service over the shared ports and the WeChat exchange.
    pub fn new(ports: FinancingPorts, wechat: Arc<dyn WeChatIdentity>) -> Self {
        ApplicantService { ports, wechat }
    }

    /// Exchanges a `wx.login` code (and optionally a phone-number code) and records the
    /// applicant.
    pub async fn login(
        &self,
        code: &str,
        phone_code: Option<&str>,
    ) -> Result<ApplicantLogin, Error> {
        let session = self
            .wechat
            .login(code)
            .await
            .map_err(|e| wechat_error("code", e))?;
        let applicant = applicant_id(&session.openid);
        let now = self.ports.clock.now();
        let mut set = serde_json::Map::new();
        set.insert("openid".into(), json!(session.openid));
        set.insert("last_login_at".into(), json!(now));
        if let Some(u) = session.unionid {
            set.insert("unionid".into(), json!(u));
        }
        let phone = match phone_code {
            Some(c) => {
                let phone = self.exchange_phone(c).await?;
                set.insert("phone".into(), json!(phone));
                set.insert("phone_verified_at".into(), json!(now));
                Some(phone)
            }
            None => None,
        };
        let stored = self
            .ports
            .table
            .update(
                &applicant_key(&applicant),
                Update {
                    set,
                    ..Update::default()
                },
                None,
            )
            .await?;
        let phone = phone.or_else(|| recorded_phone(&stored));
        Ok(ApplicantLogin { applicant, phone })
    }

    /// Verifies and records the applicant's phone through WeChat's phone-number exchange.
    pub async fn verify_phone(&self, applicant: &ApplicantId, code: &str) -> Result<Phone, Error> {
        let phone = self.exchange_phone(code).await?;
        let mut set = serde_json::Map::new();
        set.insert("phone".into(), json!(phone));
        set.insert("phone_verified_at".into(), json!(self.ports.clock.now()));
        self.ports
            .table
            .update(
                &applicant_key(applicant),
                Update {
                    set,
                    ..Update::default()
                },
                Some(puhui_ports::Condition::Exists),
            )
            .await
            .map_err(|e| match e {
                puhui_ports::PortError::ConditionFailed(_) => {
                    Error::Unauthenticated("log in again".into())
                }
                other => other.into(),
            })?;
        Ok(phone)
    }

    async fn exchange_phone(&self, code: &str) -> Result<Phone, Error> {
        let verified = self
            .wechat
            .phone_number(code)
            .await
            .map_err(|e| wechat_error("phone_code", e))?;
        if verified.country_code != "86" {
            return Err(Error::Validation(vec![FieldError::new(
                "phone_code",
                "non_mainland_phone",
                "a mainland China mobile number (+86) is required",
            )]));
        }
        Phone::parse(&verified.number)
            .map_err(|e| Error::Validation(vec![FieldError::from(e).under("phone_code")]))
    }

    /// The applicant's verified phone, if any.
    pub async fn phone(&self, applicant: &ApplicantId) -> Result<Option<Phone>, Error> {
        verified_phone(&self.ports, applicant).await
    }
}

/// The applicant's verified phone, if any (read by submissions too).
pub(crate) async fn verified_phone(
    ports: &FinancingPorts,
    applicant: &ApplicantId,
) -> Result<Option<Phone>, Error> {
    verified_phone_in(ports.table.as_ref(), applicant).await
}

/// The applicant's verified phone in `table`, if any (for services without the financing
/// ports: a direct authorization checks it against the firm's registration).
pub(crate) async fn verified_phone_in(
    table: &dyn puhui_ports::Table,
    applicant: &ApplicantId,
) -> Result<Option<Phone>, Error> {
    Ok(table
        .get(&applicant_key(applicant))
        .await?
        .as_ref()
        .and_then(recorded_phone))
}
