//! Deterministic synthetic indicator snapshots: the same seed gives the same firms and values
//! on every machine. Values follow plausible shapes and move together the way they do in real
//! data: tax paid is lognormal in firm size; tax change follows invoiced-sales change; utilities
//! follow sales; court cases, enforcement, the dishonest-debtor list, arrears and a poor tax
//! grade cluster in distressed firms and are rare overall; every indicator is missing for 5–10%
//! of firms. Each firm's registration columns (industry, establishment date) come from its own
//! code ([`registration`]), so adding them left every indicator value as it was.

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::DataType;
use puhui_domain::indicators::CATALOGUE;
use puhui_snapshot::{Manifest, Writer, schema};

use crate::Failure;
use crate::data::{self, Rng};

/// Rows per batch handed to the Parquet writer.
const BATCH_ROWS: usize = 64 * 1024;

/// One indicator value of a synthetic firm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell {
    /// Money (fen) or a count.
    Int(i64),
    /// A ratio.
    Ratio(f64),
    /// Yes / no.
    Bool(bool),
    /// A category label.
    Label(&'static str),
}

/// A uniform number in `[0, 1)`.
fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A standard normal number (Box–Muller).
fn normal(rng: &mut Rng) -> f64 {
    let u1 = unit(rng).max(f64::MIN_POSITIVE);
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn chance(rng: &mut Rng, p: f64) -> bool {
    unit(rng) < p
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A Poisson count (Knuth; rates here are small), capped at 50.
fn poisson(rng: &mut Rng, lambda: f64) -> i64 {
    let limit = (-lambda.min(30.0)).exp();
    let mut p = 1.0;
    let mut k = 0;
    loop {
        p *= unit(rng);
        if p <= limit || k >= 50 {
            return k;
        }
        k += 1;
    }
}

/// A ratio rounded to 4 places, never below −1 (a drop of more than 100% is impossible).
fn ratio(x: f64) -> f64 {
    (x.clamp(-1.0, 5.0) * 10_000.0).round() / 10_000.0
}

/// One synthetic firm's indicators, by catalogue id (an id it does not know is missing).
pub fn firm(rng: &mut Rng) -> Vec<(&'static str, Cell)> {
    use Cell::*;
    let size = normal(rng);
    let health = normal(rng);
    let distress = -health;

    let invoice_sales_yoy = ratio(0.06 + 0.18 * health + 0.12 * normal(rng));
    let tax_paid_yoy = ratio(0.9 * invoice_sales_yoy + 0.1 * normal(rng));
    let tax_paid_12m = (15.9 + 1.5 * size).exp().round() as i64;
    let headcount = (1.8 + 0.8 * size + 0.3 * normal(rng)).exp().round() as i64;
    let social_change = ratio(0.02 + 0.1 * health + 0.08 * normal(rng));
    let housing_headcount = if chance(rng, 0.4) {
        0
    } else {
        (headcount as f64 * (0.3 + 0.7 * unit(rng))).round() as i64
    };
    let arrears_months = |rng: &mut Rng, bias: f64| {
        if chance(rng, sigmoid(-4.0 + 1.1 * distress + bias)) {
            1 + rng.below(6) as i64
        } else {
            0
        }
    };
    let social_arrears = arrears_months(rng, 0.0);
    let housing_arrears = arrears_months(rng, -0.3);
    let utility = |rng: &mut Rng, weight: f64, noise: f64| {
        ratio(0.02 + weight * (invoice_sales_yoy - 0.06) + noise * normal(rng))
    };
    let electricity_yoy = utility(rng, 0.6, 0.1);
    let water_yoy = utility(rng, 0.3, 0.15);
    let gas_yoy = utility(rng, 0.4, 0.2);
    let utility_arrears = chance(rng, sigmoid(-4.2 + 1.0 * distress));

    let court = poisson(rng, (-2.3 + 0.9 * distress + 0.3 * size).exp());
    let p_enforce = (0.25 + 0.1 * distress).clamp(0.05, 0.9);
    let enforcement = (0..court).filter(|_| chance(rng, p_enforce)).count() as i64;
    let enforcement_amount = if enforcement > 0 {
        (13.0 + 1.2 * normal(rng)).exp().round() as i64 * enforcement
    } else {
        0
    };
    let enforced = enforcement > 0;
    let dishonest = (enforced && chance(rng, 0.25)) || chance(rng, 0.002);
    let restricted = (dishonest && chance(rng, 0.7)) || chance(rng, 0.001);
    let seized = (enforced && chance(rng, 0.2)) || chance(rng, 0.003);
    let frozen = (enforced && chance(rng, 0.15)) || chance(rng, 0.002);
    let tax_arrears = chance(rng, sigmoid(-4.5 + 1.2 * distress + 0.4 * court as f64));
    let penalties = poisson(rng, (-2.5 + 0.3 * size + 0.4 * distress).exp());
    let abnormal = chance(rng, sigmoid(-4.5 + 1.0 * distress));
    let serious = (abnormal && chance(rng, 0.1)) || chance(rng, 0.001);
    let legal_rep = chance(rng, 0.04 + 0.02 * distress.max(0.0));
    let capital_reduced = chance(rng, sigmoid(-4.0 + 0.8 * distress));
    let environmental = chance(rng, 0.01 + 0.01 * penalties.min(3) as f64);

    let score = 80.0 + 10.0 * health + 4.0 * normal(rng)
        - if tax_arrears { 15.0 } else { 0.0 }
        - if dishonest { 20.0 } else { 0.0 };
    let grade = if chance(rng, 0.08) {
        "M"
    } else if score >= 90.0 {
        "A"
    } else if score >= 70.0 {
        "B"
    } else if score >= 40.0 {
        "C"
    } else {
        "D"
    };

    vec![
        ("tax_paid_12m", Int(tax_paid_12m)),
        ("tax_paid_yoy", Ratio(tax_paid_yoy)),
        ("invoice_sales_yoy", Ratio(invoice_sales_yoy)),
        ("tax_credit_grade", Label(grade)),
        ("tax_arrears", Bool(tax_arrears)),
        ("social_insured_headcount", Int(headcount)),
        ("social_insured_change_6m", Ratio(social_change)),
        ("social_insurance_arrears_months", Int(social_arrears)),
        ("housing_fund_headcount", Int(housing_headcount)),
        ("housing_fund_arrears_months", Int(housing_arrears)),
        ("electricity_yoy", Ratio(electricity_yoy)),
        ("water_yoy", Ratio(water_yoy)),
        ("gas_yoy", Ratio(gas_yoy)),
        ("utility_arrears", Bool(utility_arrears)),
        ("court_cases_defendant_12m", Int(court)),
        ("enforcement_cases_active", Int(enforcement)),
        ("enforcement_amount", Int(enforcement_amount)),
        ("dishonest_debtor", Bool(dishonest)),
        ("consumption_restricted", Bool(restricted)),
        ("property_seized", Bool(seized)),
        ("equity_frozen", Bool(frozen)),
        ("penalties_12m", Int(penalties)),
        ("abnormal_operation", Bool(abnormal)),
        ("serious_violation", Bool(serious)),
        ("legal_rep_changed_6m", Bool(legal_rep)),
        ("capital_reduced_12m", Bool(capital_reduced)),
        ("environmental_penalty_12m", Bool(environmental)),
    ]
}

/// Industry classes (GB/T 4754-2017) of the synthetic firms, weighted roughly as a coastal
/// manufacturing city's registrations: manufacturing and trade first.
pub const INDUSTRIES: &[(&str, u64)] = &[
    ("C1311", 2),
    ("C1713", 3),
    ("C1810", 3),
    ("C2438", 2),
    ("C2929", 3),
    ("C3311", 4),
    ("C3331", 2),
    ("C3432", 3),
    ("C3484", 2),
    ("C3824", 3),
    ("C3979", 2),
    ("C4090", 1),
    ("E4710", 3),
    ("F5123", 6),
    ("F5137", 4),
    ("F5191", 6),
    ("F5212", 5),
    ("F5261", 3),
    ("G5430", 3),
    ("H6210", 3),
    ("I6510", 4),
    ("K7010", 2),
    ("L7212", 4),
    ("M7320", 3),
    ("M7520", 3),
    ("O8011", 2),
];

/// A firm's registration columns, derived from its code alone: a weighted industry class
/// (a few firms registered to the division only, 3% unknown) and an establishment date between
/// 1992 and `period` — years back exponential with mean 8, as young firms outnumber old ones
/// (2% unknown).
pub fn registration(
    uscc: &str,
    period_end: chrono::NaiveDate,
) -> (Option<String>, Option<chrono::NaiveDate>) {
    // FNV-1a of the code: a seed of its own, independent of the indicator stream.
    let seed = uscc.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut rng = Rng::new(seed);
    let total: u64 = INDUSTRIES.iter().map(|(_, w)| w).sum();
    let mut at = rng.below(total);
    let mut class = INDUSTRIES[0].0;
    for (code, w) in INDUSTRIES {
        if at < *w {
            class = code;
            break;
        }
        at -= w;
    }
    let industry = match rng.below(100) {
        0..3 => None,
        3..8 => Some(class[..3].to_owned()),
        _ => Some(class.to_owned()),
    };
    let years_back = -8.0 * (1.0 - unit(&mut rng)).ln();
    let days = (years_back * 365.25) as i64;
    let earliest = chrono::NaiveDate::from_ymd_opt(1992, 1, 1).unwrap_or_default();
    let established = (period_end - chrono::Duration::days(days)).max(earliest);
    let established = (rng.below(50) != 0).then_some(established);
    (industry, established)
}

/// Share of firms missing indicator number `c` (5–10%, varying by column).
fn null_rate(c: usize) -> f64 {
    0.05 + 0.01 * (c % 6) as f64
}

fn epoch() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

/// Column builders in catalogue order.
enum Col {
    Int(Int64Builder),
    Ratio(Float64Builder),
    Bool(BooleanBuilder),
    Label(StringBuilder),
}

/// `n` firms as one batch with the snapshot schema, as of `period_end`.
fn batch(rng: &mut Rng, n: usize, period_end: chrono::NaiveDate) -> Result<RecordBatch, Failure> {
    let s = schema();
    let mut uscc = StringBuilder::with_capacity(n, n * 18);
    let mut industry = StringBuilder::with_capacity(n, n * 5);
    let mut established = Date32Builder::with_capacity(n);
    let mut cols: Vec<Col> = s.fields()[1..=CATALOGUE.len()]
        .iter()
        .map(|f| match f.data_type() {
            DataType::Int64 => Col::Int(Int64Builder::with_capacity(n)),
            DataType::Float64 => Col::Ratio(Float64Builder::with_capacity(n)),
            DataType::Boolean => Col::Bool(BooleanBuilder::with_capacity(n)),
            _ => Col::Label(StringBuilder::with_capacity(n, n)),
        })
        .collect();
    // Catalogue position → position in `firm`'s output (fixed order, looked up once).
    let probe = firm(&mut rng.clone());
    let slot: Vec<Option<usize>> = CATALOGUE
        .iter()
        .map(|i| probe.iter().position(|(id, _)| *id == i.id))
        .collect();
    for _ in 0..n {
        let division = *rng.pick(data::NINGBO_DISTRICTS);
        let code = data::uscc(rng, division);
        let (class, since) = registration(&code, period_end);
        industry.append_option(class);
        established.append_option(since.map(|d| (d - epoch()).num_days() as i32));
        uscc.append_value(code);
        let values = firm(rng);
        for (c, col) in cols.iter_mut().enumerate() {
            let missing = chance(rng, null_rate(c));
            let v = slot[c].filter(|_| !missing).map(|i| values[i].1);
            match (col, v) {
                (Col::Int(b), Some(Cell::Int(x))) => b.append_value(x),
                (Col::Ratio(b), Some(Cell::Ratio(x))) => b.append_value(x),
                (Col::Bool(b), Some(Cell::Bool(x))) => b.append_value(x),
                (Col::Label(b), Some(Cell::Label(x))) => b.append_value(x),
                (Col::Int(b), _) => b.append_null(),
                (Col::Ratio(b), _) => b.append_null(),
                (Col::Bool(b), _) => b.append_null(),
                (Col::Label(b), _) => b.append_null(),
            }
        }
    }
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(uscc.finish())];
    arrays.extend(cols.into_iter().map(|c| -> ArrayRef {
        match c {
            Col::Int(mut b) => Arc::new(b.finish()),
            Col::Ratio(mut b) => Arc::new(b.finish()),
            Col::Bool(mut b) => Arc::new(b.finish()),
            Col::Label(mut b) => Arc::new(b.finish()),
        }
    }));
    arrays.push(Arc::new(industry.finish()));
    arrays.push(Arc::new(established.finish()));
    RecordBatch::try_new(s, arrays).map_err(|e| Failure(format!("building a batch: {e}")))
}

/// Writes a snapshot of `firms` synthetic firms in `shards` shards to `dir`, for `period`.
pub fn write(
    dir: &Path,
    firms: usize,
    seed: u64,
    shards: usize,
    period: &str,
) -> Result<Manifest, Failure> {
    let fail = |e: puhui_snapshot::SnapshotError| Failure(e.to_string());
    let period_end = puhui_domain::risk::Period::parse(period)
        .map_err(|e| Failure(format!("period {period}: {}", e.message)))?
        .last_day();
    let shards = shards.clamp(1, firms.max(1));
    let mut rng = Rng::new(seed);
    let mut writer = Writer::create(dir, period).map_err(fail)?;
    for s in 0..shards {
        let rows = firms / shards + usize::from(s < firms % shards);
        let mut batches = Vec::new();
        let mut left = rows;
        while left > 0 {
            let n = left.min(BATCH_ROWS);
            batches.push(batch(&mut rng, n, period_end)?);
            left -= n;
        }
        writer.write_shard(&batches).map_err(fail)?;
    }
    writer.finish().map_err(fail)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use chrono::Datelike;
    use puhui_domain::Uscc;
    use puhui_snapshot::Snapshot;

    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("samplekit-snap-{}-{name}", std::process::id()));
        std::fs::remove_dir_all(&d).ok();
        d
    }

    fn corr(xs: &[f64], ys: &[f64]) -> f64 {
        let n = xs.len() as f64;
        let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
        let cov: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
        let vx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
        let vy: f64 = ys.iter().map(|y| (y - my).powi(2)).sum();
        cov / (vx * vy).sqrt()
    }

    #[test]
    fn firms_cover_the_catalogue_with_plausible_correlated_values() {
        let mut rng = Rng::new(1);
        let firms: Vec<Vec<(&str, Cell)>> = (0..20_000).map(|_| firm(&mut rng)).collect();
        let ids: Vec<&str> = firms[0].iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, CATALOGUE.iter().map(|i| i.id).collect::<Vec<_>>());
        let get = |f: &Vec<(&str, Cell)>, id: &str| f.iter().find(|(i, _)| *i == id).unwrap().1;
        let num = |id: &str| -> Vec<f64> {
            firms
                .iter()
                .map(|f| match get(f, id) {
                    Cell::Int(x) => x as f64,
                    Cell::Ratio(x) => x,
                    Cell::Bool(b) => f64::from(u8::from(b)),
                    Cell::Label(_) => panic!("{id} is a label"),
                })
                .collect()
        };
        let tax_yoy = num("tax_paid_yoy");
        let sales_yoy = num("invoice_sales_yoy");
        assert!(corr(&tax_yoy, &sales_yoy) > 0.7, "tax follows sales");
        assert!(tax_yoy.iter().all(|r| *r >= -1.0));
        // Lognormal tax paid: positive, median far below the mean.
        let mut tax = num("tax_paid_12m");
        assert!(tax.iter().all(|t| *t > 0.0));
        tax.sort_by(f64::total_cmp);
        let mean = tax.iter().sum::<f64>() / tax.len() as f64;
        assert!(mean > 2.0 * tax[tax.len() / 2]);
        // Rare adverse flags, concentrated in firms with court cases.
        let court = num("court_cases_defendant_12m");
        let dishonest = num("dishonest_debtor");
        let rate = |with: bool| {
            let sel: Vec<f64> = dishonest
                .iter()
                .zip(&court)
                .filter(|(_, c)| (**c > 0.0) == with)
                .map(|(d, _)| *d)
                .collect();
            sel.iter().sum::<f64>() / sel.len() as f64
        };
        let overall = dishonest.iter().sum::<f64>() / dishonest.len() as f64;
        assert!(
            overall > 0.001 && overall < 0.05,
            "dishonest rate {overall}"
        );
        assert!(
            rate(true) > 10.0 * rate(false),
            "{} vs {}",
            rate(true),
            rate(false)
        );
        let arrears = num("tax_arrears").iter().sum::<f64>() / 20_000.0;
        assert!(arrears > 0.005 && arrears < 0.1, "arrears rate {arrears}");
    }

    #[test]
    fn snapshots_are_deterministic_valid_and_have_some_nulls() {
        let (a, b, c) = (tmp("a"), tmp("b"), tmp("c"));
        let m = write(&a, 3000, 7, 2, "2026-10").unwrap();
        write(&b, 3000, 7, 2, "2026-10").unwrap();
        write(&c, 3000, 8, 2, "2026-10").unwrap();
        assert_eq!(m.total_rows, 3000);
        assert_eq!(
            m.shards.iter().map(|s| s.rows).collect::<Vec<_>>(),
            [1500, 1500]
        );
        let bytes = |d: &Path| std::fs::read(d.join("part-00001.parquet")).unwrap();
        assert_eq!(bytes(&a), bytes(&b), "same seed, same file");
        assert_ne!(bytes(&a), bytes(&c), "other seed, other firms");

        let snap = Snapshot::open(&a).unwrap();
        assert_eq!(snap.columns.len(), CATALOGUE.len() + 2);
        let batches = snap.read_all().unwrap();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 3000);
        for b in &batches {
            let uscc = b.column(0).as_string::<i32>();
            assert_eq!(uscc.null_count(), 0);
            for code in uscc.iter().flatten() {
                Uscc::parse(code).unwrap();
            }
        }
        for (c, ind) in CATALOGUE.iter().enumerate() {
            let nulls: usize = batches.iter().map(|b| b.column(c + 1).null_count()).sum();
            let share = nulls as f64 / 3000.0;
            assert!((0.03..0.13).contains(&share), "{}: {share}", ind.id);
        }
        // Registration columns: mostly known, valid classes, dates up to the period's end.
        let end = chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
        let mut classes = 0;
        let mut young = 0;
        for b in &batches {
            let industry = b.column_by_name("industry").unwrap().as_string::<i32>();
            let since = b
                .column_by_name("established_on")
                .unwrap()
                .as_primitive::<arrow_array::types::Date32Type>();
            for i in 0..b.num_rows() {
                if industry.is_valid(i) {
                    puhui_domain::IndustryCode::parse(industry.value(i)).unwrap();
                    classes += usize::from(industry.value(i).len() == 5);
                }
                if let Some(d) = since.value_as_date(i).filter(|_| since.is_valid(i)) {
                    assert!(d <= end && d.year() >= 1992, "{d}");
                    young += usize::from(end - d < chrono::Duration::days(3 * 365));
                }
            }
        }
        assert!((2_600..2_850).contains(&classes), "{classes}");
        assert!(
            (600..1_200).contains(&young),
            "about a third under 3 years: {young}"
        );
        for d in [a, b, c] {
            std::fs::remove_dir_all(d).ok();
        }
    }
}
