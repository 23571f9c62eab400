//! Risk monitoring after the loan: a bank's versioned rule set, its watch list of borrowers,
//! the alerts scans raise on them and how staff work an alert (acknowledge, verify, close).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, FieldError};
use crate::ids::{BankId, Phone, Uscc};
use crate::rules::{Severity, WatchRuleDraft};

/// A snapshot period: a month, `YYYY-MM` (month 01–12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    year: u16,
    month: u8,
}

impl Period {
    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Result<Period, FieldError> {
        let bad = || FieldError::new("", "invalid_period", "must be a month, YYYY-MM");
        let b = s.as_bytes();
        if b.len() != 7 || b[4] != b'-' || !b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit) {
            return Err(bad());
        }
        let year: u16 = s[..4].parse().map_err(|_| bad())?;
        let month: u8 = s[5..].parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || year < 1970 {
            return Err(bad());
        }
        Ok(Period { year, month })
    }

    /// The last day of the month: the as-of date of the period's snapshot.
    pub fn last_day(self) -> chrono::NaiveDate {
        let (y, m) = if self.month == 12 {
            (i32::from(self.year) + 1, 1)
        } else {
            (i32::from(self.year), u32::from(self.month) + 1)
        };
        // Month 1–12 and year ≥ 1970 (checked when parsed): the first of a month always exists.
        chrono::NaiveDate::from_ymd_opt(y, m, 1)
            .and_then(|d| d.pred_opt())
            .unwrap_or_default()
    }

    /// The period `n` months earlier.
    pub fn minus(self, n: u16) -> Period {
        let index = i32::from(self.year) * 12 + i32::from(self.month) - 1 - i32::from(n);
        Period {
            year: (index / 12) as u16,
            month: (index % 12 + 1) as u8,
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl std::str::FromStr for Period {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Period::parse(s).map_err(|e| e.message)
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Period::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// A bank's rule set as saved: every save is a new version; scans use the newest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleSet {
    /// The bank.
    pub bank_id: BankId,
    /// 1 for the first save, then +1 per save.
    pub version: u64,
    /// The rules as written (checked when saved).
    pub rules: Vec<WatchRuleDraft>,
    /// When it was saved.
    pub saved_at: DateTime<Utc>,
    /// Who saved it (token subject).
    pub saved_by: String,
}

/// How a firm came onto a watch list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WatchSource {
    /// Added by staff, one firm.
    Manual,
    /// Added by a bulk upload.
    Bulk,
    /// Added when the bank approved the firm's financing demand.
    Financing,
}

/// One firm on a bank's watch list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WatchEntry {
    /// The firm.
    pub uscc: Uscc,
    /// How it got here.
    pub source: WatchSource,
    /// When it was (last) added.
    pub added_at: DateTime<Utc>,
    /// Who added it (token subject).
    pub added_by: String,
}

/// A bank's alerting settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskSettings {
    /// Risk managers' mobile numbers: each alert is sent to each by SMS (at most 10).
    #[schema(value_type = Vec<String>)]
    #[serde(default)]
    pub sms: Vec<Phone>,
    /// Also send each alert to the bank's webhook (default true).
    #[serde(default = "yes")]
    pub webhook: bool,
}

fn yes() -> bool {
    true
}

impl Default for RiskSettings {
    /// No SMS recipients; alerts go to the bank's webhook.
    fn default() -> Self {
        RiskSettings {
            sms: Vec::new(),
            webhook: true,
        }
    }
}

impl RiskSettings {
    /// Most SMS recipients.
    pub const MAX_SMS: usize = 10;

    /// Checks the settings' limits.
    pub fn check(&self) -> Result<(), Error> {
        if self.sms.len() > Self::MAX_SMS {
            return Err(Error::field(
                "sms",
                "too_many",
                format!("at most {} numbers", Self::MAX_SMS),
            ));
        }
        Ok(())
    }
}

/// An alert's id, unique within its bank: `<period>.<uscc>.<rule id>` (deterministic, so a
/// scan that runs twice finds the alert it wrote the first time).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlertId {
    /// The period scanned.
    pub period: Period,
    /// The firm.
    pub uscc: Uscc,
    /// The rule.
    pub rule_id: String,
}

impl AlertId {
    /// Parses `<period>.<uscc>.<rule id>`.
    pub fn parse(s: &str) -> Result<AlertId, FieldError> {
        let bad = || {
            FieldError::new(
                "",
                "invalid_alert_id",
                "must be <period>.<uscc>.<rule id>, e.g. 2026-10.91350100M000100Y43.tax-drop",
            )
        };
        let mut parts = s.splitn(3, '.');
        let (Some(p), Some(u), Some(r)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let rule_ok = !r.is_empty()
            && r.len() <= 64
            && r.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !rule_ok {
            return Err(bad());
        }
        Ok(AlertId {
            period: Period::parse(p).map_err(|_| bad())?,
            uscc: Uscc::parse(u).map_err(|_| bad())?,
            rule_id: r.to_owned(),
        })
    }
}

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.period, self.uscc, self.rule_id)
    }
}

impl std::str::FromStr for AlertId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AlertId::parse(s).map_err(|e| e.message)
    }
}

impl Serialize for AlertId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AlertId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        AlertId::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Raised, nobody looked yet.
    Open,
    /// Someone is on it.
    Acknowledged,
    /// Checked: confirmed risk or false alarm (see the verdict).
    Verified,
    /// Done.
    Closed,
}

impl AlertStatus {
    /// The status's name as in the API.
    pub fn name(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Verified => "verified",
            AlertStatus::Closed => "closed",
        }
    }
}

/// The outcome of checking an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The risk is real.
    ConfirmedRisk,
    /// The rule fired but nothing is wrong.
    FalseAlarm,
}

/// What staff do to an alert.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum AlertAction {
    /// Take it on (from open).
    Acknowledge {
        /// Optional note.
        #[serde(default)]
        note: Option<String>,
    },
    /// Record the verdict (from open or acknowledged); a note is required.
    Verify {
        /// Confirmed risk or false alarm.
        verdict: Verdict,
        /// Why (1–500 characters).
        note: String,
    },
    /// Close it (from acknowledged or verified).
    Close {
        /// Optional note.
        #[serde(default)]
        note: Option<String>,
    },
}

impl AlertAction {
    /// The status the action leads to from `from`, or a conflict naming the move.
    pub fn apply(&self, from: AlertStatus) -> Result<AlertStatus, Error> {
        use AlertStatus::*;
        let to = match self {
            AlertAction::Acknowledge { .. } => Acknowledged,
            AlertAction::Verify { .. } => Verified,
            AlertAction::Close { .. } => Closed,
        };
        let allowed = matches!(
            (from, to),
            (Open, Acknowledged)
                | (Open | Acknowledged, Verified)
                | (Acknowledged | Verified, Closed)
        );
        if !allowed {
            return Err(Error::Conflict(format!(
                "an alert cannot go from {} to {}",
                from.name(),
                to.name()
            )));
        }
        Ok(to)
    }

    /// Checks the note's length (verify needs one).
    pub fn check(&self) -> Result<(), Error> {
        let note = match self {
            AlertAction::Verify { note, .. } => Some(note),
            AlertAction::Acknowledge { note } | AlertAction::Close { note } => note.as_ref(),
        };
        match note {
            Some(n) if n.trim().is_empty() || n.chars().count() > 500 => Err(Error::field(
                "note",
                "invalid_length",
                "must be 1–500 characters",
            )),
            _ => Ok(()),
        }
    }

    /// The note given, if any.
    pub fn note(&self) -> Option<&str> {
        match self {
            AlertAction::Verify { note, .. } => Some(note),
            AlertAction::Acknowledge { note } | AlertAction::Close { note } => note.as_deref(),
        }
    }
}

/// One step in an alert's life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertChange {
    /// The status reached.
    pub status: AlertStatus,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (token subject).
    pub by: String,
    /// Their note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A rule that fired on a watched firm in a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RiskAlert {
    /// `<period>.<uscc>.<rule id>`.
    #[schema(value_type = String, example = "2026-10.91350100M000100Y43.tax-drop")]
    pub id: AlertId,
    /// The bank it belongs to.
    pub bank_id: BankId,
    /// The firm.
    pub uscc: Uscc,
    /// The snapshot period (`YYYY-MM`).
    #[schema(value_type = String, example = "2026-10")]
    pub period: Period,
    /// The rule.
    pub rule_id: String,
    /// The rule's name when it fired.
    pub rule_name: String,
    /// Its severity.
    pub severity: Severity,
    /// The rule-set version that fired.
    pub rule_set_version: u64,
    /// The scan that raised it.
    pub scan_id: String,
    /// The firm's values of the indicators the rule reads (null: missing).
    #[schema(value_type = Object)]
    pub facts: Map<String, Value>,
    /// Where it stands.
    pub status: AlertStatus,
    /// The verdict, once verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// When it was raised.
    pub raised_at: DateTime<Utc>,
    /// Staff actions, oldest first.
    #[serde(default)]
    pub history: Vec<AlertChange>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

/// How a rule has done for a bank (for tuning thresholds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleStats {
    /// The rule.
    pub rule_id: String,
    /// Alerts raised.
    #[serde(default)]
    pub hits: u64,
    /// Alerts acknowledged.
    #[serde(default)]
    pub acknowledged: u64,
    /// Verified as a confirmed risk.
    #[serde(default)]
    pub confirmed: u64,
    /// Verified as a false alarm.
    #[serde(default)]
    pub false_alarm: u64,
    /// Closed.
    #[serde(default)]
    pub closed: u64,
    /// false alarms / verified, once any is verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub false_alarm_rate: Option<f64>,
}

impl RuleStats {
    /// Fills in the false-alarm rate from the counts.
    pub fn with_rate(mut self) -> Self {
        let verified = self.confirmed + self.false_alarm;
        self.false_alarm_rate = (verified > 0).then(|| self.false_alarm as f64 / verified as f64);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_end_on_their_last_day() {
        let last = |p: &str| Period::parse(p).unwrap().last_day().to_string();
        assert_eq!(last("2026-10"), "2026-10-31");
        assert_eq!(last("2026-12"), "2026-12-31");
        assert_eq!(last("2028-02"), "2028-02-29");
        assert_eq!(last("2026-02"), "2026-02-28");
    }

    #[test]
    fn periods_parse_print_and_step_back_across_years() {
        let p = Period::parse("2026-02").unwrap();
        assert_eq!(p.to_string(), "2026-02");
        assert_eq!(p.minus(1).to_string(), "2026-01");
        assert_eq!(p.minus(2).to_string(), "2025-12");
        assert_eq!(p.minus(14).to_string(), "2024-12");
        for bad in [
            "2026-13", "2026-00", "2026-1", "26-01", "2026/01", "abcd-01", "",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
        assert!(Period::parse("2025-12").unwrap() < p);
    }

    #[test]
    fn alert_ids_round_trip_and_refuse_junk() {
        let id = AlertId::parse("2026-10.91350100M000100Y43.tax-drop_2").unwrap();
        assert_eq!(id.rule_id, "tax-drop_2");
        assert_eq!(id.to_string(), "2026-10.91350100M000100Y43.tax-drop_2");
        for bad in [
            "2026-10.91350100M000100Y43",
            "2026-10.91350100M000100Y44.r",
            "2026-13.91350100M000100Y43.r",
            "2026-10.91350100M000100Y43.a.b",
            "2026-10.91350100M000100Y43.",
        ] {
            assert!(AlertId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn alerts_move_open_acknowledged_verified_closed() {
        use AlertStatus::*;
        let ack = AlertAction::Acknowledge { note: None };
        let verify = AlertAction::Verify {
            verdict: Verdict::FalseAlarm,
            note: "seasonal".into(),
        };
        let close = AlertAction::Close { note: None };
        assert_eq!(ack.apply(Open).unwrap(), Acknowledged);
        assert_eq!(verify.apply(Open).unwrap(), Verified);
        assert_eq!(verify.apply(Acknowledged).unwrap(), Verified);
        assert_eq!(close.apply(Verified).unwrap(), Closed);
        assert!(matches!(close.apply(Open), Err(Error::Conflict(_))));
        assert!(matches!(ack.apply(Verified), Err(Error::Conflict(_))));
        assert!(matches!(verify.apply(Closed), Err(Error::Conflict(_))));
        let blank = AlertAction::Verify {
            verdict: Verdict::ConfirmedRisk,
            note: "  ".into(),
        };
        assert!(matches!(blank.check(), Err(Error::Validation(_))));
    }

    #[test]
    fn false_alarm_rate_is_over_verified_alerts() {
        let s = RuleStats {
            hits: 10,
            confirmed: 3,
            false_alarm: 1,
            ..RuleStats::default()
        }
        .with_rate();
        assert_eq!(s.false_alarm_rate, Some(0.25));
        assert_eq!(RuleStats::default().with_rate().false_alarm_rate, None);
    }
}
