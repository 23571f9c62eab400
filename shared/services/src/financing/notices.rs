//! The financing flow's notification templates: pure functions from an event to the message.
//! Keys are deterministic per event, so a redelivered event yields the same key and is sent once.

use puhui_domain::{BankId, Claim, ClaimStage, Fen, FinancingDemand};
use puhui_ports::{Notification, Recipient};
use serde_json::{Map, Value, json};

use super::FinancingConfig;
use puhui_engines::BankOffer;

fn params(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn yuan(f: Fen) -> String {
    let s = f.to_string();
    s.strip_suffix(".00").map(str::to_owned).unwrap_or(s)
}

fn stage_zh(s: ClaimStage) -> &'static str {
    match s {
        ClaimStage::Claimed => "已受理",
        ClaimStage::Contacted => "已联系",
        ClaimStage::UnderReview => "审批中",
        ClaimStage::Approved => "已批准",
        ClaimStage::Declined => "未通过",
        ClaimStage::Disbursed => "已放款",
        ClaimStage::Released => "已退回",
    }
}

fn to_firm(d: &FinancingDemand) -> Recipient {
    Recipient::Sms {
        phone: d.phone.clone(),
    }
}

fn to_bank(bank: &BankId) -> Recipient {
    Recipient::BankWebhook {
        bank_id: bank.clone(),
    }
}

/// To the firm: the demand was received and offered to `offered` banks (or to none).
pub fn demand_received(d: &FinancingDemand, offered: usize) -> Notification {
    let text = if offered > 0 {
        format!(
            "【普惠金融】{}的融资需求（{}，{}个月）已受理，已推送给{}家银行，银行将尽快与您联系。",
            d.firm_name,
            yuan(d.amount),
            d.term_months,
            offered
        )
    } else {
        format!(
            "【普惠金融】{}的融资需求（{}，{}个月）已受理，暂无完全匹配的产品，平台将人工协助对接。",
            d.firm_name,
            yuan(d.amount),
            d.term_months
        )
    };
    Notification {
        key: format!("received:{}", d.id),
        recipient: to_firm(d),
        template: if offered > 0 {
            "demand_received"
        } else {
            "demand_unmatched"
        }
        .into(),
        params: params(
            json!({"demand_id": d.id, "firm_name": d.firm_name, "amount": d.amount,
                              "term_months": d.term_months, "offered_banks": offered}),
        ),
        text,
    }
}

/// To a bank: a demand was offered to it.
pub fn offered(d: &FinancingDemand, offer: &BankOffer) -> Notification {
    let product = offer
        .products
        .first()
        .map_or(String::new(), |p| format!("，匹配产品「{}」", p.name));
    Notification {
        key: format!("offered:{}:{}", d.id, offer.bank_id),
        recipient: to_bank(&offer.bank_id),
        template: "offered".into(),
        params: params(
            json!({"demand_id": d.id, "firm_name": d.firm_name, "amount": d.amount,
                              "term_months": d.term_months, "rank": offer.rank,
                              "products": offer.products.iter().map(|p| p.product_id).collect::<Vec<_>>()}),
        ),
        text: format!(
            "新融资需求：{}，{}，{}个月{}。请在1个工作日内接单。",
            d.firm_name,
            yuan(d.amount),
            d.term_months,
            product
        ),
    }
}

/// To the firm: a bank claimed the demand.
pub fn claimed(d: &FinancingDemand, bank: &BankId, config: &FinancingConfig) -> Notification {
    let name = config.bank_name(bank);
    Notification {
        key: format!("claimed:{}:{bank}", d.id),
        recipient: to_firm(d),
        template: "claimed".into(),
        params: params(json!({"demand_id": d.id, "bank_id": bank, "bank_name": name})),
        text: format!(
            "【普惠金融】{name}已受理{}的融资需求，客户经理将尽快与您联系。",
            d.firm_name
        ),
    }
}

/// To the firm: a claim moved to a new stage.
pub fn progress(d: &FinancingDemand, c: &Claim, config: &FinancingConfig) -> Notification {
    let name = config.bank_name(&c.bank_id);
    let detail = match (c.stage, c.approved_amount, c.annual_rate_bp) {
        (ClaimStage::Approved, Some(a), Some(r)) => {
            format!(
                "，批准额度{}，年利率{}.{:02}%",
                yuan(a),
                r.0 / 100,
                r.0 % 100
            )
        }
        _ => String::new(),
    };
    Notification {
        key: format!("progress:{}:{}:{}", d.id, c.bank_id, c.stage.name()),
        recipient: to_firm(d),
        template: "progress".into(),
        params: params(
            json!({"demand_id": d.id, "bank_id": c.bank_id, "bank_name": name,
                              "stage": c.stage, "approved_amount": c.approved_amount,
                              "annual_rate_bp": c.annual_rate_bp}),
        ),
        text: format!(
            "【普惠金融】{name}：{}的融资需求进度更新为「{}」{detail}。",
            d.firm_name,
            stage_zh(c.stage)
        ),
    }
}

/// To the firm: a bank gave the demand back (by itself or for lack of progress).
pub fn released(d: &FinancingDemand, bank: &BankId, config: &FinancingConfig) -> Notification {
    let name = config.bank_name(bank);
    Notification {
        key: format!("released:{}:{bank}", d.id),
        recipient: to_firm(d),
        template: "released".into(),
        params: params(json!({"demand_id": d.id, "bank_id": bank, "bank_name": name})),
        text: format!(
            "【普惠金融】{name}已退回{}的融资需求，其他银行可继续受理。",
            d.firm_name
        ),
    }
}

/// To a bank: its claim has had no progress; it will be released at the deadline.
pub fn reminder(d: &FinancingDemand, c: &Claim, config: &FinancingConfig) -> Notification {
    let hours = config.release_after.as_secs() / 3600;
    Notification {
        key: format!("reminder:{}:{}", d.id, c.bank_id),
        recipient: to_bank(&c.bank_id),
        template: "reminder".into(),
        params: params(json!({"demand_id": d.id, "claimed_at": c.claimed_at,
                              "release_after_hours": hours})),
        text: format!(
            "提醒：您受理的{}融资需求（{}）尚未更新进度，请尽快联系企业；受理{}小时后仍无进展将自动释放。",
            d.firm_name,
            yuan(d.amount),
            hours
        ),
    }
}

/// To a bank: its claim was released for lack of progress.
pub fn auto_released(d: &FinancingDemand, bank: &BankId) -> Notification {
    Notification {
        key: format!("auto-released:{}:{bank}", d.id),
        recipient: to_bank(bank),
        template: "auto_released".into(),
        params: params(json!({"demand_id": d.id})),
        text: format!(
            "您受理的{}融资需求长时间无进展，已自动释放，其他银行可受理。",
            d.firm_name
        ),
    }
}
