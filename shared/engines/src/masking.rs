//! The masking engine: one data interface over one firm's profile → the view a bank may see.
//! Shown fields as stored, masked fields masked for display, banded amounts as their range,
//! model-only fields withheld; every field with its source and as-of date. Pure: the caller
//! reads the profile and the catalogue.
//!
//! Masks fail closed: a value that does not look like what its mask expects (a name that is a
//! number, an ID number of the wrong length) is starred out entirely rather than guessed at.

use chrono::NaiveDate;
use puhui_domain::interfaces::{
    Bands, DataInterface, FirmProfile, MaskKind, ProfileCategory, RuleName, Sensitivity, Treatment,
};
use puhui_domain::{IdNumber, Phone};
use serde::Serialize;
use serde_json::{Value, json};

/// Compound surnames (复姓) kept whole by the name mask: `欧阳娜娜` → `欧阳**`.
const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
    "夏侯", "轩辕", "令狐", "端木", "西门", "南宫", "独孤", "呼延", "闻人", "澹台", "公冶", "宗政",
    "濮阳", "太叔", "申屠", "钟离", "百里", "东郭", "万俟", "拓跋", "司空", "单于", "赫连", "左丘",
];

/// What became of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldStatus {
    /// The value (as its rule allows) is in `value`.
    Present,
    /// The profile has no such field (not ingested yet).
    Missing,
    /// A model-only field: never returned.
    Withheld,
    /// The stored value does not fit its rule (a banded field that is not a number): withheld.
    Unusable,
}

/// One field of a masked view.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MaskedField {
    /// Profile category.
    pub category: ProfileCategory,
    /// Field name.
    pub field: String,
    /// Sensitivity class.
    pub sensitivity: Sensitivity,
    /// The rule applied.
    pub rule: RuleName,
    /// What became of it.
    pub status: FieldStatus,
    /// The value as the rule allows: as stored (shown), a masked string (masked), or
    /// `{"lower", "upper", "unit"}` (banded; `lower` inclusive, `upper` exclusive, either absent
    /// at the ends). Absent unless `status` is `present`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub value: Option<Value>,
    /// The department the value came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The date the value is as of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<NaiveDate>,
}

/// One interface of one firm, as a bank may see it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MaskedView {
    /// Interface id.
    pub interface: String,
    /// Interface version.
    pub version: u32,
    /// The oldest as-of date of the fields present: the view is at least this fresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_as_of: Option<NaiveDate>,
    /// The newest as-of date of the fields present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest_as_of: Option<NaiveDate>,
    /// The fields, in catalogue order.
    pub fields: Vec<MaskedField>,
}

/// The view of `interface` over `profile`.
pub fn mask_view(interface: &DataInterface, profile: &FirmProfile) -> MaskedView {
    let fields: Vec<MaskedField> = interface
        .fields
        .iter()
        .map(|f| {
            let stored = profile.get(&f.category).and_then(|c| c.get(&f.field));
            let (status, value) = match (stored, &f.treatment) {
                (None, _) => (FieldStatus::Missing, None),
                (Some(_), Treatment::ModelOnly) => (FieldStatus::Withheld, None),
                (Some(s), _) if s.value.is_null() => (FieldStatus::Missing, None),
                (Some(s), Treatment::Shown) => (FieldStatus::Present, Some(s.value.clone())),
                (Some(s), Treatment::Masked(kind)) => (
                    FieldStatus::Present,
                    Some(Value::String(mask_value(*kind, &s.value))),
                ),
                (Some(s), Treatment::Banded(bands)) => match band(bands, &s.value) {
                    Some(b) => (FieldStatus::Present, Some(b)),
                    None => (FieldStatus::Unusable, None),
                },
            };
            MaskedField {
                category: f.category,
                field: f.field.clone(),
                sensitivity: f.sensitivity,
                rule: f.treatment.name(),
                status,
                value,
                source: stored.map(|s| s.source.clone()),
                as_of: stored.map(|s| s.as_of),
            }
        })
        .collect();
    let present = fields
        .iter()
        .filter(|f| f.status == FieldStatus::Present)
        .filter_map(|f| f.as_of);
    let oldest_as_of = present.clone().min();
    let newest_as_of = present.max();
    MaskedView {
        interface: interface.id.clone(),
        version: interface.version,
        oldest_as_of,
        newest_as_of,
        fields,
    }
}

/// A stored value masked by `kind`. Non-string values are masked as their JSON text, so a
/// number stored where a string was expected still never leaves raw.
pub fn mask_value(kind: MaskKind, value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        other => other.to_string(),
    };
    match kind {
        MaskKind::PersonName => person_name(&text),
        MaskKind::IdNumber => match IdNumber::parse(&text) {
            Ok(id) => id.masked(),
            Err(_) => keep_ends(&text, 1, 1),
        },
        MaskKind::Phone => match Phone::parse(&text) {
            Ok(p) => p.masked(),
            Err(_) => keep_ends(&text, 3, 4),
        },
        MaskKind::Address => address(&text),
        MaskKind::BankAccount => {
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            keep_ends(&compact, 6, 4)
        }
        MaskKind::Email => email(&text),
    }
}

/// A firm name for reports: the first two characters (usually the place) and the last four
/// (the legal form) kept, the rest starred; a short name — often a sole trader's, that is a
/// person's — starred entirely.
pub fn firm_name(name: &str) -> String {
    keep_ends(name.trim(), 2, 4)
}

/// Fewest characters a partial mask must hide; shorter values are starred out entirely.
const MIN_HIDDEN: usize = 4;

/// `head` leading and `tail` trailing characters kept, the rest starred; all starred when that
/// would hide fewer than [`MIN_HIDDEN`] characters.
fn keep_ends(s: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    if n < head + tail + MIN_HIDDEN {
        return "*".repeat(n.max(1));
    }
    let mut out: String = chars[..head].iter().collect();
    out.push_str(&"*".repeat(n - head - tail));
    out.extend(&chars[n - tail..]);
    out
}

/// The surname kept, every other character starred.
fn person_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let n = chars.len();
    let surname = COMPOUND_SURNAMES
        .iter()
        .find(|s| name.starts_with(**s) && s.chars().count() < n)
        .map_or(1, |s| s.chars().count());
    if n <= 1 {
        return "*".into();
    }
    let mut out: String = chars[..surname].iter().collect();
    out.push_str(&"*".repeat(n - surname));
    out
}

/// Down to the district: everything up to the first county-level suffix (区, 县, 旗, or a
/// county-level 市 after a prefecture 市), then `****`. Without a recognisable district the
/// whole address is starred: a guess could keep a street.
fn address(addr: &str) -> String {
    let chars: Vec<char> = addr.chars().collect();
    let mut cities = 0;
    let mut cut = None;
    for (i, &c) in chars.iter().enumerate() {
        let before = |k: usize| i.checked_sub(k).and_then(|j| chars.get(j)).copied();
        match c {
            // 自治区 is a province, not a district.
            '区' if !(before(1) == Some('治') && before(2) == Some('自')) => {
                cut = Some(i + 1);
                break;
            }
            '县' | '旗' => {
                cut = Some(i + 1);
                break;
            }
            '市' => {
                cities += 1;
                // Municipalities (北京市…) are followed by districts; a second 市 is a
                // county-level city (宁波市余姚市).
                if cities == 2 {
                    cut = Some(i + 1);
                    break;
                }
            }
            _ => {}
        }
    }
    match cut {
        Some(k) if k < chars.len() => {
            let mut out: String = chars[..k].iter().collect();
            out.push_str("****");
            out
        }
        // The address is no finer than a district: nothing to hide beyond it.
        Some(_) => addr.to_owned(),
        None => "*".repeat(chars.len().clamp(1, 8)),
    }
}

/// The first letter of the local part and the domain: `z***@example.com`.
fn email(addr: &str) -> String {
    match addr.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        _ => "*".repeat(addr.chars().count().clamp(1, 8)),
    }
}

/// The band a number falls in, or `None` for a value that is not a number.
pub fn band(bands: &Bands, value: &Value) -> Option<Value> {
    let x = value.as_f64()?;
    // Edges are integers; a fractional amount is banded by its value, not rounded first.
    let upper_index = bands.edges.iter().position(|&e| x < e as f64);
    let (lower, upper) = match upper_index {
        Some(0) => (None, bands.edges.first().copied()),
        Some(i) => (Some(bands.edges[i - 1]), Some(bands.edges[i])),
        None => (bands.edges.last().copied(), None),
    };
    let mut out = serde_json::Map::new();
    if let Some(l) = lower {
        out.insert("lower".into(), json!(l));
    }
    if let Some(u) = upper {
        out.insert("upper".into(), json!(u));
    }
    if let Some(unit) = &bands.unit {
        out.insert("unit".into(), json!(unit));
    }
    Some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use puhui_domain::interfaces::{Catalogue, InterfaceField, ProfileField};
    use std::collections::BTreeMap;

    fn date(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    fn stored(value: Value, as_of: &str) -> ProfileField {
        ProfileField {
            value,
            source: "market_regulation".into(),
            as_of: date(as_of),
        }
    }

    #[test]
    fn masks_follow_the_domain_rules() {
        let m = |k, v: &str| mask_value(k, &json!(v));
        assert_eq!(m(MaskKind::PersonName, "张三"), "张*");
        assert_eq!(m(MaskKind::PersonName, "张小明"), "张**");
        assert_eq!(m(MaskKind::PersonName, "欧阳娜娜"), "欧阳**");
        assert_eq!(m(MaskKind::PersonName, "欧阳"), "欧*");
        assert_eq!(m(MaskKind::PersonName, "张"), "*");
        assert_eq!(
            m(MaskKind::IdNumber, "11010519491231002X"),
            "1****************X"
        );
        assert_eq!(m(MaskKind::IdNumber, "12345"), "*****");
        assert_eq!(m(MaskKind::Phone, "13812345678"), "138****5678");
        assert_eq!(m(MaskKind::Phone, "+86 138-1234-5678"), "138****5678");
        assert_eq!(
            m(MaskKind::BankAccount, "6222 0212 3456 7890 123"),
            "622202*********0123"
        );
        assert_eq!(m(MaskKind::BankAccount, "12345678"), "********");
        assert_eq!(
            m(MaskKind::Email, "zhang.san@example.com"),
            "z***@example.com"
        );
        assert_eq!(m(MaskKind::Email, "no-at-sign"), "********");
        assert_eq!(
            m(MaskKind::Address, "浙江省宁波市鄞州区首南街道天童南路588号"),
            "浙江省宁波市鄞州区****"
        );
        assert_eq!(
            m(MaskKind::Address, "广西壮族自治区南宁市青秀区民族大道100号"),
            "广西壮族自治区南宁市青秀区****"
        );
        assert_eq!(
            m(MaskKind::Address, "浙江省宁波市余姚市阳明街道1号"),
            "浙江省宁波市余姚市****"
        );
        assert_eq!(m(MaskKind::Address, "北京市海淀区"), "北京市海淀区");
        assert_eq!(m(MaskKind::Address, "天童南路588号"), "********");
        // A number where a phone was expected is still masked.
        assert_eq!(
            mask_value(MaskKind::Phone, &json!(13812345678_i64)),
            "138****5678"
        );
    }

    #[test]
    fn bands_have_inclusive_lower_and_exclusive_upper_edges() {
        let b = Bands {
            edges: vec![0, 100, 500],
            unit: Some("fen".into()),
        };
        assert_eq!(
            band(&b, &json!(-5)),
            Some(json!({"upper": 0, "unit": "fen"}))
        );
        assert_eq!(
            band(&b, &json!(0)),
            Some(json!({"lower": 0, "upper": 100, "unit": "fen"}))
        );
        assert_eq!(
            band(&b, &json!(499.5)),
            Some(json!({"lower": 100, "upper": 500, "unit": "fen"}))
        );
        assert_eq!(
            band(&b, &json!(500)),
            Some(json!({"lower": 500, "unit": "fen"}))
        );
        assert_eq!(band(&b, &json!("lots")), None);
    }

    #[test]
    fn a_view_treats_each_field_by_its_rule_with_freshness() {
        let c = Catalogue::builtin();
        let iface = c.get("tax_summary").expect("tax_summary");
        let mut profile = FirmProfile::new();
        profile.insert(
            ProfileCategory::Financial,
            BTreeMap::from([(
                "revenue_12m".into(),
                stored(json!(123_456_789), "2026-10-31"),
            )]),
        );
        profile.insert(
            ProfileCategory::Operating,
            BTreeMap::from([
                ("tax_paid_yoy".into(), stored(json!(0.12), "2026-09-30")),
                ("tax_paid_12m".into(), stored(json!("n/a"), "2026-09-30")),
                (
                    "tax_paid_monthly".into(),
                    stored(json!([1, 2, 3]), "2026-09-30"),
                ),
                (
                    "settlement_account".into(),
                    stored(json!("6222021234567890123"), "2026-08-01"),
                ),
            ]),
        );
        let v = mask_view(iface, &profile);
        assert_eq!((v.interface.as_str(), v.version), ("tax_summary", 1));
        let by: BTreeMap<&str, &MaskedField> =
            v.fields.iter().map(|f| (f.field.as_str(), f)).collect();
        assert_eq!(
            by["revenue_12m"].value,
            Some(json!({"lower": 100_000_000, "upper": 500_000_000, "unit": "fen"}))
        );
        assert_eq!(by["tax_paid_yoy"].value, Some(json!(0.12)));
        assert_eq!(by["tax_paid_12m"].status, FieldStatus::Unusable);
        assert_eq!(by["tax_paid_monthly"].status, FieldStatus::Withheld);
        assert_eq!(by["tax_paid_monthly"].value, None);
        assert_eq!(by["profit_12m"].status, FieldStatus::Missing);
        assert_eq!(
            by["settlement_account"].value,
            Some(json!("622202*********0123"))
        );
        assert_eq!(
            by["settlement_account"].source.as_deref(),
            Some("market_regulation")
        );
        assert_eq!(v.oldest_as_of, Some(date("2026-08-01")));
        assert_eq!(v.newest_as_of, Some(date("2026-10-31")));
        assert_eq!(v.fields.len(), iface.fields.len());
    }

    fn kind() -> impl Strategy<Value = MaskKind> {
        prop_oneof![
            Just(MaskKind::PersonName),
            Just(MaskKind::IdNumber),
            Just(MaskKind::Phone),
            Just(MaskKind::Address),
            Just(MaskKind::BankAccount),
            Just(MaskKind::Email),
        ]
    }

    /// Raw values as they come: CJK names, digit strings, addresses with a street, emails,
    /// arbitrary text; at least two characters (a one-character value is a single star).
    fn raw(k: MaskKind) -> BoxedStrategy<String> {
        match k {
            MaskKind::PersonName => "[张王李欧阳司马][一-龥]{1,4}".boxed(),
            MaskKind::IdNumber => "[0-9]{17}[0-9X]".boxed(),
            MaskKind::Phone => "1[3-9][0-9]{9}".boxed(),
            MaskKind::BankAccount => "[0-9]{12,19}".boxed(),
            MaskKind::Address => {
                "(浙江省宁波市[鄞州海曙江北]区|北京市朝阳区|[一-龥]{0,6})[一-龥0-9]{2,12}号".boxed()
            }
            MaskKind::Email => "[a-z]{2,8}\\.[a-z]{2,8}@[a-z]{3,8}\\.com".boxed(),
        }
    }

    proptest! {
        /// No masked or model-only raw value appears anywhere in the serialized view.
        #[test]
        fn no_masked_or_model_only_raw_value_leaves(
            cases in prop::collection::vec(kind().prop_flat_map(|k| (Just(k), raw(k), any::<bool>())), 1..8),
            shown in "[a-z]{1,6}",
        ) {
            let mut fields = vec![InterfaceField {
                category: ProfileCategory::Basic,
                field: "shown_text".into(),
                sensitivity: Sensitivity::Public,
                treatment: Treatment::Shown,
            }];
            let mut values = BTreeMap::from([("shown_text".to_string(), stored(json!(shown), "2026-01-01"))]);
            for (i, (k, raw, model_only)) in cases.iter().enumerate() {
                let name = format!("f{i}");
                fields.push(InterfaceField {
                    category: ProfileCategory::Basic,
                    field: name.clone(),
                    sensitivity: Sensitivity::C2,
                    treatment: if *model_only { Treatment::ModelOnly } else { Treatment::Masked(*k) },
                });
                values.insert(name, stored(json!(raw), "2026-01-01"));
            }
            let iface = DataInterface {
                id: "x".into(), version: 1, title: "t".into(), description: "d".into(), fields,
            };
            let profile = FirmProfile::from([(ProfileCategory::Basic, values)]);
            let out = serde_json::to_string(&mask_view(&iface, &profile)).expect("serializes");
            for (_, raw, _) in &cases {
                prop_assert!(!out.contains(raw.as_str()), "{raw} leaked in {out}");
            }
        }

        /// Masking never panics on arbitrary text, never returns a value of two or more
        /// characters unchanged (an address no finer than a district aside), and the
        /// fixed-format masks hide at least four characters or all of them.
        #[test]
        fn masks_always_hide_something(k in kind(), s in "[^*]{0,40}") {
            let out = mask_value(k, &json!(s));
            let n = s.trim().chars().count();
            if k != MaskKind::Address && n >= 2 {
                prop_assert_ne!(&out, s.trim());
            }
            if matches!(k, MaskKind::IdNumber | MaskKind::Phone | MaskKind::BankAccount) {
                // Account numbers are masked without their spaces.
                let n = if k == MaskKind::BankAccount {
                    s.chars().filter(|c| !c.is_whitespace()).count()
                } else {
                    n
                };
                let stars = out.chars().filter(|c| *c == '*').count();
                prop_assert!(stars >= MIN_HIDDEN.min(n.max(1)), "{s:?} -> {out:?}");
            }
        }
    }
}
