//! The authenticated caller, as established by the edge from a verified token. Services take a
//! `Principal` and are the only place that decides who may do what.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::BankId;

/// A role a token may grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Maintains the bank's loan products.
    ProductAdmin,
    /// Works financing demands and queries firm data.
    LoanOfficer,
    /// Maintains risk rules and watch lists.
    RiskAdmin,
    /// Operates the platform (all tenants, read-mostly).
    PlatformAdmin,
}

impl Role {
    /// Parses a role name from a token; unknown names yield `None` and are ignored.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "product_admin" => Some(Role::ProductAdmin),
            "loan_officer" => Some(Role::LoanOfficer),
            "risk_admin" => Some(Role::RiskAdmin),
            "platform_admin" => Some(Role::PlatformAdmin),
            _ => None,
        }
    }
}

/// Who is calling: the token subject, the bank (tenant) it acts for, and its roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token subject (a user id at the bank); never personal data.
    pub subject: String,
    /// The tenant; `None` only for platform staff.
    pub bank_id: Option<BankId>,
    /// Granted roles.
    pub roles: Vec<Role>,
}

impl Principal {
    /// True if the principal holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The caller's bank if it holds `role` there; otherwise a `Forbidden` error naming the role.
    pub fn bank_with_role(&self, role: Role) -> Result<&BankId, Error> {
        if !self.has(role) {
            return Err(Error::Forbidden(format!(
                "this action needs the {} role",
                role_name(role)
            )));
        }
        self.bank_id.as_ref().ok_or_else(|| {
            Error::Forbidden("this action needs a token issued for a bank (bank_id claim)".into())
        })
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::ProductAdmin => "product_admin",
        Role::LoanOfficer => "loan_officer",
        Role::RiskAdmin => "risk_admin",
        Role::PlatformAdmin => "platform_admin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_gate_bank_access() {
        let p = Principal {
            subject: "u1".into(),
            bank_id: Some(BankId::parse("nbcb").unwrap()),
            roles: vec![Role::LoanOfficer],
        };
        assert!(matches!(
            p.bank_with_role(Role::ProductAdmin),
            Err(Error::Forbidden(_))
        ));
        assert_eq!(
            p.bank_with_role(Role::LoanOfficer).unwrap().as_str(),
            "nbcb"
        );
        let staff = Principal {
            subject: "ops".into(),
            bank_id: None,
            roles: vec![Role::ProductAdmin],
        };
        assert!(matches!(
            staff.bank_with_role(Role::ProductAdmin),
            Err(Error::Forbidden(_))
        ));
        assert_eq!(Role::parse("risk_admin"), Some(Role::RiskAdmin));
        assert_eq!(Role::parse("root"), None);
    }
}
