//! The daily data-quality report: the catalogue's daily rules (freshness, a firm name matching
//! the registration source) applied to one day's facts gathered from stored data, with counts
//! per rule and source, a few masked examples per rule, the trend against the previous day's
//! report, and the rules whose failures jumped past their threshold (each raises a platform
//! alert).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use puhui_domain::sources::{DailyRuleKind, JumpThreshold, Severity, SourceCatalogue};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::masking;

/// Examples kept per rule: enough to find the pattern, few enough to stay a summary.
pub const EXAMPLES_PER_RULE: usize = 5;

/// One loaded row carrying a firm name, checked against the registration source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameFact {
    /// The daily rule checking it.
    pub rule_id: String,
    /// The file it was loaded from.
    pub file: String,
    /// Its line in the file.
    pub line: u64,
    /// The firm.
    pub uscc: String,
    /// The name the row carries.
    pub name: String,
    /// The name the registration source holds for the firm, if any.
    pub registered: Option<String>,
}

/// What the daily rules are applied to, gathered from stored data for one day.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DayFacts {
    /// Source id → delivery date of its newest file that loaded rows, on or before the day (the
    /// gatherer may look back one interval only: the previous report carries older dates).
    pub last_update: BTreeMap<String, NaiveDate>,
    /// The day's loaded rows carrying a firm name.
    pub names: Vec<NameFact>,
}

/// A failing row, values masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Example {
    /// The firm (public).
    pub uscc: String,
    /// The file.
    pub file: String,
    /// The line in the file.
    pub line: u64,
    /// The name the row carries, masked.
    pub name: String,
    /// The registered name, masked.
    pub registered: String,
}

/// A rule's failures against the previous day's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Trend {
    /// Failures the previous day (absent without a report for it, or the rule in it).
    pub previous: Option<u64>,
    /// Today's minus the previous day's.
    pub delta: Option<i64>,
    /// Today's over the previous day's (absent when the previous day had none).
    pub ratio: Option<f64>,
}

/// One daily rule's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuleResult {
    /// The rule.
    pub rule_id: String,
    /// Its source.
    pub source: String,
    /// `freshness` or `name_matches_registration`.
    pub kind: String,
    /// Its severity.
    #[schema(value_type = String)]
    pub severity: Severity,
    /// What was checked: rows with a name and a registered name; 1 for freshness.
    pub checked: u64,
    /// How many failed.
    pub failed: u64,
    /// Rows not checked: the firm has no registered name.
    pub unchecked: u64,
    /// Freshness: delivery date of the newest file that loaded rows (when one is known).
    pub last_update: Option<NaiveDate>,
    /// Freshness: days expected between deliveries.
    pub interval_days: Option<u32>,
    /// Against the previous day.
    pub trend: Trend,
    /// Whether the failures jumped past the rule's threshold (a platform alert).
    pub jumped: bool,
    /// The first failures, values masked.
    pub examples: Vec<Example>,
}

/// The daily report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DailyReport {
    /// The day.
    pub date: NaiveDate,
    /// One result per daily rule of the catalogue, in catalogue order.
    pub rules: Vec<RuleResult>,
    /// Ids of the rules that jumped.
    pub alerts: Vec<String>,
}

impl DailyReport {
    /// One rule's result.
    pub fn rule(&self, id: &str) -> Option<&RuleResult> {
        self.rules.iter().find(|r| r.rule_id == id)
    }
}

/// A name compared as written by different systems: whitespace dropped and full-width forms
/// (`（`, `Ａ`) read as their ASCII ones.
pub fn normalize_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c => c,
        })
        .collect()
}

/// True when failures jumped: more than the previous day's, at least `min_failures`, and at
/// least `ratio` times the previous day's (any number is a jump from none).
pub fn jumped(t: &JumpThreshold, failed: u64, previous: u64) -> bool {
    failed > previous
        && failed >= t.min_failures
        && (previous == 0 || failed as f64 >= t.ratio * previous as f64)
}

/// Applies the catalogue's daily rules to the day's facts; `previous` is the previous day's
/// report, when there is one.
pub fn daily_report(
    catalogue: &SourceCatalogue,
    date: NaiveDate,
    facts: &DayFacts,
    previous: Option<&DailyReport>,
) -> DailyReport {
    let mut rules = Vec::new();
    for source in &catalogue.sources {
        for rule in &source.daily_rules {
            let mut r = RuleResult {
                rule_id: rule.id.clone(),
                source: source.id.clone(),
                kind: rule.kind.name().to_owned(),
                severity: rule.severity,
                checked: 0,
                failed: 0,
                unchecked: 0,
                last_update: None,
                interval_days: None,
                trend: Trend {
                    previous: None,
                    delta: None,
                    ratio: None,
                },
                jumped: false,
                examples: Vec::new(),
            };
            match &rule.kind {
                DailyRuleKind::Freshness => {
                    // The facts look back one interval only; an older delivery is still known
                    // from the previous day's report.
                    let last = facts.last_update.get(&source.id).copied().or_else(|| {
                        previous
                            .and_then(|p| p.rule(&rule.id))
                            .and_then(|p| p.last_update)
                    });
                    r.checked = 1;
                    r.interval_days = Some(source.update_interval_days);
                    r.last_update = last;
                    let fresh = last.is_some_and(|d| {
                        (date - d).num_days() <= i64::from(source.update_interval_days)
                    });
                    r.failed = u64::from(!fresh);
                }
                DailyRuleKind::NameMatchesRegistration { .. } => {
                    for fact in facts.names.iter().filter(|f| f.rule_id == rule.id) {
                        let Some(registered) = &fact.registered else {
                            r.unchecked += 1;
                            continue;
                        };
                        r.checked += 1;
                        if normalize_name(&fact.name) != normalize_name(registered) {
                            r.failed += 1;
                            if r.examples.len() < EXAMPLES_PER_RULE {
                                r.examples.push(Example {
                                    uscc: fact.uscc.clone(),
                                    file: fact.file.clone(),
                                    line: fact.line,
                                    name: masking::firm_name(&fact.name),
                                    registered: masking::firm_name(registered),
                                });
                            }
                        }
                    }
                }
            }
            let before = previous.and_then(|p| p.rule(&rule.id)).map(|p| p.failed);
            r.trend = Trend {
                previous: before,
                delta: before.map(|b| r.failed as i64 - b as i64),
                ratio: before
                    .filter(|b| *b > 0)
                    .map(|b| r.failed as f64 / b as f64),
            };
            let threshold = rule.alert.unwrap_or(catalogue.alert);
            r.jumped = jumped(&threshold, r.failed, before.unwrap_or(0));
            rules.push(r);
        }
    }
    let alerts = rules
        .iter()
        .filter(|r| r.jumped)
        .map(|r| r.rule_id.clone())
        .collect();
    DailyReport {
        date,
        rules,
        alerts,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CREDIT_NAME: &str = "tax_credit.taxpayer_name.matches_registration";
    const REGISTERED: &str = "宁波甬江伟科技有限公司";

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn fact(n: u64, name: &str, registered: Option<&str>) -> NameFact {
        NameFact {
            rule_id: CREDIT_NAME.into(),
            file: "tax_credit.csv".into(),
            line: n + 2,
            uscc: format!("91330205MA2{n:05}X"),
            name: name.into(),
            registered: registered.map(str::to_owned),
        }
    }

    /// `bad` mismatching rows, `good` matching ones, `missing` without a registration.
    fn names(bad: u64, good: u64, missing: u64) -> Vec<NameFact> {
        let mut out = Vec::new();
        for n in 0..bad {
            out.push(fact(n, "宁波某某贸易商行", Some(REGISTERED)));
        }
        for n in bad..bad + good {
            out.push(fact(n, REGISTERED, Some(REGISTERED)));
        }
        for n in bad + good..bad + good + missing {
            out.push(fact(n, REGISTERED, None));
        }
        out
    }

    fn report(date: &str, facts: &DayFacts, previous: Option<&DailyReport>) -> DailyReport {
        daily_report(SourceCatalogue::builtin(), day(date), facts, previous)
    }

    #[test]
    fn counts_per_rule_with_masked_examples() {
        let facts = DayFacts {
            last_update: BTreeMap::new(),
            names: names(7, 20, 3),
        };
        let r = report("2026-11-23", &facts, None);
        let ids: Vec<&str> = r.rules.iter().map(|r| r.rule_id.as_str()).collect();
        let declared: Vec<&str> = SourceCatalogue::builtin()
            .sources
            .iter()
            .flat_map(|s| s.daily_rules.iter().map(|r| r.id.as_str()))
            .collect();
        assert_eq!(ids, declared);
        let credit = r.rule(CREDIT_NAME).unwrap();
        assert_eq!(
            (credit.checked, credit.failed, credit.unchecked),
            (27, 7, 3)
        );
        assert_eq!(credit.source, "tax_credit");
        assert_eq!(credit.examples.len(), EXAMPLES_PER_RULE);
        let e = &credit.examples[0];
        assert_eq!(e.line, 2);
        assert_eq!(e.registered, "宁波*****有限公司");
        assert_eq!(e.name, "********", "a short name is starred whole");
        let raw = serde_json::to_string(&r).unwrap();
        assert!(!raw.contains(REGISTERED) && !raw.contains("某某"));
        let courts = r
            .rule("courts_negative.party_name.matches_registration")
            .unwrap();
        assert_eq!((courts.checked, courts.failed), (0, 0));
    }

    #[test]
    fn names_differing_only_in_width_or_spaces_match() {
        let facts = DayFacts {
            last_update: BTreeMap::new(),
            names: vec![
                fact(
                    0,
                    "宁波甬江（集团）有限公司 ",
                    Some("宁波甬江(集团)有限公司"),
                ),
                fact(1, "宁波ＡＢＣ有限公司", Some("宁波ABC有限公司")),
                fact(2, "宁波ABD有限公司", Some("宁波ABC有限公司")),
            ],
        };
        let credit = report("2026-11-23", &facts, None);
        let credit = credit.rule(CREDIT_NAME).unwrap();
        assert_eq!((credit.checked, credit.failed), (3, 1));
    }

    #[test]
    fn freshness_fails_past_the_interval_or_without_any_delivery() {
        // Registration: every day; courts: weekly; social insurance never delivered.
        let facts = DayFacts {
            last_update: BTreeMap::from([
                ("market_regulation_registration".into(), day("2026-11-22")),
                ("courts_negative".into(), day("2026-11-16")),
                ("tax_operating".into(), day("2026-10-24")),
            ]),
            names: Vec::new(),
        };
        let r = report("2026-11-23", &facts, None);
        let failed = |id: &str| r.rule(id).unwrap().failed;
        assert_eq!(failed("market_regulation_registration.freshness"), 0);
        assert_eq!(failed("courts_negative.freshness"), 0);
        assert_eq!(failed("tax_operating.freshness"), 0);
        assert_eq!(failed("social_insurance.freshness"), 1);
        let r = report("2026-11-24", &facts, None);
        let failed = |id: &str| r.rule(id).unwrap().failed;
        assert_eq!(failed("market_regulation_registration.freshness"), 1);
        assert_eq!(failed("courts_negative.freshness"), 1);
        assert_eq!(failed("tax_operating.freshness"), 0);
        let courts = r.rule("courts_negative.freshness").unwrap();
        assert_eq!(courts.last_update, Some(day("2026-11-16")));
        assert_eq!(courts.interval_days, Some(7));
        // A day later the facts no longer reach back that far: the date comes from the report.
        let none = DayFacts::default();
        let next = report("2026-11-25", &none, Some(&r));
        let courts = next.rule("courts_negative.freshness").unwrap();
        assert_eq!(
            (courts.failed, courts.last_update),
            (1, Some(day("2026-11-16")))
        );
        let social = next.rule("social_insurance.freshness").unwrap();
        assert_eq!((social.failed, social.last_update), (1, None));
    }

    #[test]
    fn trend_and_jumps_against_the_previous_day() {
        // Every source delivered on the day itself: only the name rule can fail.
        let on = |bad: u64, date: &str| DayFacts {
            last_update: SourceCatalogue::builtin()
                .sources
                .iter()
                .map(|s| (s.id.clone(), day(date)))
                .collect(),
            names: names(bad, 50, 0),
        };
        // Day 1 has no previous report: 4 failures stay below the minimum of 10.
        let d1 = report("2026-11-23", &on(4, "2026-11-23"), None);
        assert!(d1.alerts.is_empty(), "{:?}", d1.alerts);
        assert_eq!(d1.rule(CREDIT_NAME).unwrap().trend.previous, None);
        // 12 is 3 times 4 and at least 10: one alert, for that rule.
        let d2 = report("2026-11-24", &on(12, "2026-11-24"), Some(&d1));
        assert_eq!(d2.alerts, [CREDIT_NAME]);
        let t = &d2.rule(CREDIT_NAME).unwrap().trend;
        assert_eq!(
            (t.previous, t.delta, t.ratio),
            (Some(4), Some(8), Some(3.0))
        );
        // 20 after 12 is less than double: no alert; 24 is exactly double: alert.
        assert!(
            report("2026-11-25", &on(20, "2026-11-25"), Some(&d2))
                .alerts
                .is_empty()
        );
        assert_eq!(
            report("2026-11-25", &on(24, "2026-11-25"), Some(&d2)).alerts,
            [CREDIT_NAME]
        );
        // From none, exactly the minimum jumps, one less does not.
        let d0 = report("2026-11-23", &on(0, "2026-11-23"), None);
        let d1 = report("2026-11-24", &on(10, "2026-11-24"), Some(&d0));
        let t = &d1.rule(CREDIT_NAME).unwrap().trend;
        assert_eq!((t.delta, t.ratio), (Some(10), None));
        assert_eq!(
            report("2026-11-24", &on(10, "2026-11-24"), Some(&d0)).alerts,
            [CREDIT_NAME]
        );
        assert!(
            report("2026-11-24", &on(9, "2026-11-24"), Some(&d0))
                .alerts
                .is_empty()
        );
        // Nothing delivered after d0's day: a year on every source has gone stale, each
        // alerting once (threshold 1), and not again while it stays stale.
        let stale = DayFacts::default();
        let s1 = report("2027-11-25", &stale, Some(&d0));
        assert_eq!(s1.alerts.len(), SourceCatalogue::builtin().sources.len());
        assert!(s1.alerts.iter().all(|a| a.ends_with(".freshness")));
        assert!(report("2027-11-26", &stale, Some(&s1)).alerts.is_empty());
    }

    #[test]
    fn jump_edges() {
        let t = JumpThreshold {
            ratio: 2.0,
            min_failures: 10,
        };
        assert!(!jumped(&t, 0, 0));
        assert!(jumped(&t, 10, 5));
        assert!(!jumped(&t, 9, 4));
        assert!(!jumped(&t, 19, 10));
        assert!(jumped(&t, 20, 10));
        let once = JumpThreshold {
            ratio: 1.0,
            min_failures: 1,
        };
        assert!(jumped(&once, 1, 0));
        assert!(!jumped(&once, 1, 1));
    }
}
