//! The daily data-quality job: the catalogue's daily rules run over what the ingest stored, a
//! report written to the blob store and the table, and a platform alert for each rule whose
//! failures jumped.
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | one day's report | `DQ#<date>` | `REPORT` | `report`, `blob_key` |
//! | one platform alert | `DQ#<date>` | `ALERT#<rule>` | `rule_id`, `source`, `failed`, `previous` |
//!
//! The facts are read without a table scan: freshness from the ingest's per-source, per-day
//! file reports (one query per source and day, walking back from the day until a file that
//! loaded rows is found or the source's interval has passed), names from the day's loaded files
//! of each name-carrying source (re-read through the ingest engine, which yields exactly the
//! rows that loaded) against the firm's registration profile (one point read per firm).
//!
//! A rerun for a day overwrites the day's report with the same content and raises no alert
//! twice: an alert is put only if absent, in one transaction with its notification's outbox
//! entry.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate};
use puhui_domain::sources::{DailyRuleKind, Source, SourceCatalogue};
use puhui_domain::{Error, Principal, Role, Uscc};
use puhui_engines::ingest::{self as ingest_engine, FileFormat, RowOutcome};
use puhui_engines::quality::{self as engine, DayFacts, NameFact};
pub use puhui_engines::quality::{DailyReport, Example, RuleResult, Trend};
use puhui_ports::{Condition, Item, Key, Notification, PortError, Recipient, Table, TxOp};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

use crate::ingest::{IngestReport, IngestService};
use crate::outbox::{Destination, Envelope};
use crate::profiles;
use crate::storage::StoragePorts;

/// Prefix of the reports in the blob store: `quality/<date>/report.json`.
pub const REPORTS: &str = "quality/";

/// What one run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityRun {
    /// The day reported on.
    pub date: NaiveDate,
    /// Where the report was written.
    pub blob_key: String,
    /// Failures over all rules.
    pub failures: u64,
    /// Alerts raised by this run.
    pub alerts_raised: Vec<String>,
    /// Alerts an earlier run for the day had raised already.
    pub alerts_already_raised: Vec<String>,
}

/// Runs the daily rules and answers for their reports.
#[derive(Clone)]
pub struct DataQualityService {
    ports: StoragePorts,
    ingest: IngestService,
    catalogue: Arc<SourceCatalogue>,
}

fn report_key(date: NaiveDate) -> Key {
    Key::new(format!("DQ#{date}"), "REPORT")
}

fn alert_key(date: NaiveDate, rule_id: &str) -> Key {
    Key::new(format!("DQ#{date}"), format!("ALERT#{rule_id}"))
}

/// The report for `date` (a table read only), for platform administrators.
pub async fn report(
    table: &dyn Table,
    who: &Principal,
    date: NaiveDate,
) -> Result<DailyReport, Error> {
    if !who.has(Role::PlatformAdmin) {
        return Err(Error::Forbidden(
            "data-quality reports are for platform administrators".into(),
        ));
    }
    stored(table, date)
        .await?
        .ok_or_else(|| Error::NotFound(format!("data-quality report for {date}")))
}

async fn stored(table: &dyn Table, date: NaiveDate) -> Result<Option<DailyReport>, Error> {
    let Some(item) = table.get(&report_key(date)).await? else {
        return Ok(None);
    };
    serde_json::from_value(item.attrs.get("report").cloned().unwrap_or(Value::Null))
        .map(Some)
        .map_err(|e| Error::Internal(format!("data-quality report {date}: {e}")))
}

/// The blob key of a day's report.
pub fn blob_key(date: NaiveDate) -> String {
    format!("{REPORTS}{date}/report.json")
}

impl DataQualityService {
    /// The service over the built-in catalogue; alerts go out through `ports`' outbox to the
    /// notification queue.
    pub fn new(ports: StoragePorts) -> Self {
        Self::with_catalogue(ports, Arc::new(SourceCatalogue::builtin().clone()))
    }

    /// The service over another catalogue.
    pub fn with_catalogue(ports: StoragePorts, catalogue: Arc<SourceCatalogue>) -> Self {
        let ingest = IngestService::with_catalogue(
            ports.table.clone(),
            ports.blobs.clone(),
            ports.clock.clone(),
            catalogue.clone(),
        );
        DataQualityService {
            ports,
            ingest,
            catalogue,
        }
    }

    /// Runs the daily rules for `date`, stores the report and raises the alerts not raised yet.
    pub async fn run(&self, date: NaiveDate) -> Result<QualityRun, Error> {
        let previous = self.stored(date - Duration::days(1)).await?;
        let facts = self.facts(date).await?;
        let report = engine::daily_report(&self.catalogue, date, &facts, previous.as_ref());
        let blob_key = blob_key(date);
        let json =
            serde_json::to_vec_pretty(&report).map_err(|e| Error::Internal(e.to_string()))?;
        self.ports
            .blobs
            .put(&blob_key, json, "application/json")
            .await?;
        let mut attrs = Map::new();
        attrs.insert(
            "report".into(),
            serde_json::to_value(&report).map_err(|e| Error::Internal(e.to_string()))?,
        );
        attrs.insert("blob_key".into(), json!(blob_key));
        // Overwritten by a rerun: the same facts give the same report.
        self.ports
            .table
            .put(Item::new(report_key(date), attrs), None)
            .await?;
        let mut run = QualityRun {
            date,
            blob_key,
            failures: report.rules.iter().map(|r| r.failed).sum(),
            alerts_raised: Vec::new(),
            alerts_already_raised: Vec::new(),
        };
        for rule_id in &report.alerts {
            if self.raise(&report, rule_id).await? {
                run.alerts_raised.push(rule_id.to_owned());
            } else {
                run.alerts_already_raised.push(rule_id.to_owned());
            }
        }
        Ok(run)
    }

    /// The report for `date`, for platform administrators.
    pub async fn report(&self, who: &Principal, date: NaiveDate) -> Result<DailyReport, Error> {
        report(self.ports.table.as_ref(), who, date).await
    }

    async fn stored(&self, date: NaiveDate) -> Result<Option<DailyReport>, Error> {
        stored(self.ports.table.as_ref(), date).await
    }

    /// Puts the alert with its notification unless the day has it already; true if put now.
    async fn raise(&self, report: &DailyReport, rule_id: &str) -> Result<bool, Error> {
        let Some(r) = report.rule(rule_id) else {
            return Err(Error::Internal(format!("alert for unknown rule {rule_id}")));
        };
        let mut attrs = Map::new();
        attrs.insert("rule_id".into(), json!(r.rule_id));
        attrs.insert("source".into(), json!(r.source));
        attrs.insert("failed".into(), json!(r.failed));
        attrs.insert("previous".into(), json!(r.trend.previous));
        let item = Item::new(alert_key(report.date, rule_id), attrs);
        let text = format!(
            "【普惠金融】数据质量告警：{} 数据源 {} 规则「{}」失败 {} 条（前一日 {}），请查看 {} 数据质量日报。",
            report.date,
            r.source,
            r.rule_id,
            r.failed,
            r.trend
                .previous
                .map_or_else(|| "无记录".to_owned(), |p| p.to_string()),
            report.date,
        );
        let params = json!({
            "date": report.date, "rule_id": r.rule_id, "source": r.source, "kind": r.kind,
            "failed": r.failed, "previous": r.trend.previous,
            "report": blob_key(report.date),
        });
        let notification = Notification {
            key: format!("data-quality:{}:{}", report.date, r.rule_id),
            recipient: Recipient::PlatformOps,
            template: "data_quality_alert".into(),
            params: params.as_object().cloned().unwrap_or_default(),
            text,
        };
        let op = TxOp::Put {
            item,
            condition: Some(Condition::NotExists),
        };
        let message = Envelope::json(Destination::Notifications, &notification)?;
        match self.ports.outbox.commit(vec![op], vec![message]).await {
            Ok(()) => {
                tracing::warn!(date = %report.date, rule = %r.rule_id, failed = r.failed, "data-quality alert raised");
                Ok(true)
            }
            // The alert (op 0) exists: an earlier run for the day raised it.
            Err(PortError::TransactionCancelled { reasons })
                if reasons.first().is_some_and(Option::is_some) =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The facts the day's rules need.
    async fn facts(&self, date: NaiveDate) -> Result<DayFacts, Error> {
        let mut facts = DayFacts::default();
        let mut registered = HashMap::new();
        for source in &self.catalogue.sources {
            for rule in &source.daily_rules {
                match &rule.kind {
                    DailyRuleKind::Freshness => {
                        if let Some(d) = self.last_update(source, date).await? {
                            facts.last_update.insert(source.id.clone(), d);
                        }
                    }
                    DailyRuleKind::NameMatchesRegistration {
                        field,
                        registration_source,
                        registration_field,
                    } => {
                        let (Some(target), Some(registry)) = (
                            source.field(field).and_then(|f| f.target.clone()),
                            self.catalogue.get(registration_source),
                        ) else {
                            // The catalogue was validated on load: this cannot be reached.
                            continue;
                        };
                        let reg_target = registry
                            .field(registration_field)
                            .and_then(|f| f.target.clone())
                            .unwrap_or_default();
                        for report in self.loaded_files(source, date).await? {
                            for (line, uscc, name) in self.names(source, &report, &target).await? {
                                let key = (registry.id.clone(), uscc.to_string());
                                if !registered.contains_key(&key) {
                                    let name =
                                        self.registered(registry, &reg_target, &uscc).await?;
                                    registered.insert(key.clone(), name);
                                }
                                facts.names.push(NameFact {
                                    rule_id: rule.id.clone(),
                                    file: report.file.clone(),
                                    line,
                                    uscc: uscc.to_string(),
                                    name,
                                    registered: registered.get(&key).cloned().flatten(),
                                });
                            }
                        }
                    }
                }
            }
        }
        Ok(facts)
    }

    /// The day's files of `source` that loaded rows.
    async fn loaded_files(
        &self,
        source: &Source,
        date: NaiveDate,
    ) -> Result<Vec<IngestReport>, Error> {
        Ok(self
            .ingest
            .reports(&source.id, date)
            .await?
            .into_iter()
            .filter(|r| r.rejection.is_none() && r.loaded > 0)
            .collect())
    }

    /// The delivery date of the newest file of `source` that loaded rows, on `date` or within
    /// the source's interval before it; `None` when there is none that recent.
    async fn last_update(
        &self,
        source: &Source,
        date: NaiveDate,
    ) -> Result<Option<NaiveDate>, Error> {
        for back in 0..=i64::from(source.update_interval_days) {
            let day = date - Duration::days(back);
            if !self.loaded_files(source, day).await?.is_empty() {
                return Ok(Some(day));
            }
        }
        Ok(None)
    }

    /// The loaded rows of one ingested file that carry a name in `target`: line, firm, name.
    /// A file whose content changed since its report was made is skipped (the new content has
    /// its own report).
    async fn names(
        &self,
        source: &Source,
        report: &IngestReport,
        target: &str,
    ) -> Result<Vec<(u64, Uscc, String)>, Error> {
        let Some(bytes) = self.ports.blobs.get(&report.blob_key).await? else {
            return Ok(Vec::new());
        };
        if hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)) != report.sha256 {
            return Ok(Vec::new());
        }
        let Some(format) = FileFormat::from_name(&report.file) else {
            return Ok(Vec::new());
        };
        let unreadable =
            |e: ingest_engine::FileRejection| Error::Internal(format!("{}: {e}", report.blob_key));
        let mut out = Vec::new();
        for outcome in ingest_engine::rows(source, format, bytes.as_slice()).map_err(unreadable)? {
            if let RowOutcome::Loaded(row) = outcome.map_err(unreadable)?
                && let Some(name) = row.values.get(target).and_then(Value::as_str)
            {
                out.push((row.line, row.uscc, name.to_owned()));
            }
        }
        Ok(out)
    }

    /// The name the registration source stored for the firm (`None` without one).
    async fn registered(
        &self,
        registry: &Source,
        target: &str,
        uscc: &Uscc,
    ) -> Result<Option<String>, Error> {
        let key = profiles::category_key(uscc, registry.category);
        let Some(item) = self.ports.table.get(&key).await? else {
            return Ok(None);
        };
        let field = item
            .attrs
            .get("fields")
            .and_then(|f| f.get(target))
            .filter(|f| f.get("source").and_then(Value::as_str) == Some(&registry.department));
        Ok(field
            .and_then(|f| f.get("value"))
            .and_then(Value::as_str)
            .map(str::to_owned))
    }
}
