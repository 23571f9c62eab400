//! Alert notifications: pure functions from an alert and the bank's settings to messages, with
//! keys deterministic per (alert, recipient) so a rerun task sends nothing twice.

use puhui_domain::risk::{RiskAlert, RiskSettings};
use puhui_domain::rules::Severity;
use puhui_ports::{Notification, Recipient};
use serde_json::json;
use sha2::{Digest, Sha256};

fn severity_zh(s: Severity) -> &'static str {
    match s {
        Severity::Info => "提示",
        Severity::Warning => "关注",
        Severity::Critical => "严重",
    }
}

/// The messages for a new alert: the bank's webhook (if enabled) and an SMS to each risk
/// manager.
pub fn alert_raised(a: &RiskAlert, settings: &RiskSettings) -> Vec<Notification> {
    let text = format!(
        "【普惠金融】风险预警（{}）：企业{}在{}触发规则「{}」，请登录风险工作台核实。",
        severity_zh(a.severity),
        a.uscc,
        a.period,
        a.rule_name
    );
    let params = json!({
        "alert_id": a.id, "uscc": a.uscc, "period": a.period, "rule_id": a.rule_id,
        "rule_name": a.rule_name, "severity": a.severity, "facts": a.facts,
        "rule_set_version": a.rule_set_version,
    });
    let params = params.as_object().cloned().unwrap_or_default();
    let mut out = Vec::new();
    if settings.webhook {
        out.push(Notification {
            key: format!("risk-alert:{}:{}:webhook", a.bank_id, a.id),
            recipient: Recipient::BankWebhook {
                bank_id: a.bank_id.clone(),
            },
            template: "risk_alert".into(),
            params: params.clone(),
            text: text.clone(),
        });
    }
    for phone in &settings.sms {
        // Keyed by a hash of the number: stable whatever the list's order, and no number in keys.
        let tag = &hex::encode(Sha256::digest(phone.expose().as_bytes()))[..16];
        out.push(Notification {
            key: format!("risk-alert:{}:{}:sms:{tag}", a.bank_id, a.id),
            recipient: Recipient::Sms {
                phone: phone.clone(),
            },
            template: "risk_alert".into(),
            params: params.clone(),
            text: text.clone(),
        });
    }
    out
}
