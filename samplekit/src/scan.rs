//! The backtest: a rule set (json-rules-engine conditions over catalogue indicators) evaluated
//! over a whole snapshot with the columnar evaluator, row group by row group on a few threads;
//! per-rule hits and missing values met, optionally every hit as `uscc,rule_id`. Also random
//! selective rule sets for the benchmark.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use puhui_domain::Error;
use puhui_domain::indicators::{CATALOGUE, IndicatorType};
use puhui_domain::rules::{WatchRule, WatchRuleDraft, check_rule_set};
use puhui_engines::columnar::CompiledRules;
use puhui_snapshot::Snapshot;
use serde_json::{Value, json};

use crate::Failure;
use crate::data::Rng;

/// Reads and checks `rules.json`: every problem is reported with its path, as the API's 422.
pub fn load_rules(path: &Path) -> Result<Vec<WatchRule>, Failure> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Failure(format!("{}: {e}", path.display())))?;
    parse_rules(&text).map_err(|e| Failure(format!("{}: {}", path.display(), e.0)))
}

/// Parses and checks a rule set given as JSON text.
pub fn parse_rules(text: &str) -> Result<Vec<WatchRule>, Failure> {
    let raw: Value = serde_json::from_str(text).map_err(|e| Failure(format!("not JSON: {e}")))?;
    let items = raw
        .as_array()
        .ok_or_else(|| Failure("422 rules: must be a JSON array of rules".into()))?;
    let mut drafts = Vec::with_capacity(items.len());
    let mut shape = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match serde_json::from_value::<WatchRuleDraft>(item.clone()) {
            Ok(d) => drafts.push(d),
            Err(e) => shape.push(format!("  rules[{i}]: {e}")),
        }
    }
    if !shape.is_empty() {
        return Err(Failure(format!("422 invalid rules\n{}", shape.join("\n"))));
    }
    check_rule_set(&drafts).map_err(|e| match e {
        Error::Validation(errors) => Failure(format!(
            "422 invalid rules\n{}",
            errors
                .iter()
                .map(|f| format!("  {} ({}): {}", f.field, f.code, f.message))
                .collect::<Vec<_>>()
                .join("\n")
        )),
        other => Failure(other.to_string()),
    })
}

/// One rule's totals over a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Rule id.
    pub rule_id: String,
    /// Firms it fires on.
    pub hits: u64,
    /// Missing indicator values its leaves met (summed over firms and leaves).
    pub missing: u64,
}

/// What a scan found, and how long it took.
#[derive(Debug, Clone)]
pub struct Report {
    /// Firms scanned.
    pub rows: u64,
    /// Per rule, in rule-set order.
    pub tallies: Vec<Tally>,
    /// Opening the snapshot (footers and schemas).
    pub open: Duration,
    /// Reading and evaluating.
    pub scan: Duration,
}

/// One part's results.
struct PartResult {
    hits: Vec<u64>,
    missing: Vec<u64>,
    alerts: String,
}

/// Scans the snapshot at `path` with `rules` on `threads` threads; with `alerts`, writes the
/// header and one `uscc,rule_id` line per hit (in snapshot order). A malformed shard fails the
/// scan, naming the file.
pub fn scan(
    rules: &[WatchRule],
    path: &Path,
    threads: usize,
    alerts: Option<&mut dyn Write>,
) -> Result<Report, Failure> {
    let t0 = Instant::now();
    keep_freed_memory();
    let snap = Snapshot::open(path).map_err(|e| Failure(e.to_string()))?;
    let open = t0.elapsed();
    let t1 = Instant::now();
    let compiled = CompiledRules::compile(rules);
    let want_alerts = alerts.is_some();
    // Decode only the columns the rules look at (and the codes only when writing alerts).
    let mut facts: Vec<String> = rules
        .iter()
        .flat_map(|r| r.conditions.leaves())
        .map(|l| l.fact.clone())
        .collect();
    facts.sort();
    facts.dedup();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<PartResult, Failure>>>> =
        Mutex::new((0..snap.parts.len()).map(|_| None).collect());
    let progress = std::io::stderr().is_terminal() && snap.parts.len() > 1;
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, snap.parts.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(part) = snap.parts.get(i) else { break };
                    let r = snap
                        .read_columns(part, &facts, want_alerts)
                        .map_err(|e| Failure(e.to_string()))
                        .and_then(|batches| {
                            evaluate(&compiled, rules.len(), &batches, want_alerts)
                        });
                    let failed = r.is_err();
                    if let Ok(mut all) = results.lock() {
                        all[i] = Some(r);
                    }
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if progress {
                        bar(n, snap.parts.len());
                    }
                    if failed {
                        // Stop handing out work: the scan fails as a whole.
                        next.store(usize::MAX / 2, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    if progress {
        eprintln!();
    }
    let results = results
        .into_inner()
        .map_err(|_| Failure("a scan thread panicked".into()))?;
    let mut tallies: Vec<Tally> = rules
        .iter()
        .map(|r| Tally {
            rule_id: r.id.clone(),
            hits: 0,
            missing: 0,
        })
        .collect();
    let mut out = alerts;
    if let Some(w) = out.as_mut() {
        writeln!(w, "uscc,rule_id").map_err(|e| Failure(format!("writing alerts: {e}")))?;
    }
    // The first failure in snapshot order is reported; parts never reached count as failed.
    for r in results {
        let part = r.unwrap_or_else(|| Err(Failure("scan stopped after an error".into())))?;
        for (t, (h, m)) in tallies.iter_mut().zip(part.hits.iter().zip(&part.missing)) {
            t.hits += h;
            t.missing += m;
        }
        if let Some(w) = out.as_mut() {
            w.write_all(part.alerts.as_bytes())
                .map_err(|e| Failure(format!("writing alerts: {e}")))?;
        }
    }
    if let Some(w) = out.as_mut() {
        w.flush()
            .map_err(|e| Failure(format!("writing alerts: {e}")))?;
    }
    Ok(Report {
        rows: snap.rows(),
        tallies,
        open,
        scan: t1.elapsed(),
    })
}

/// Decoding allocates and frees buffers of hundreds of KiB per column and row group. glibc's
/// malloc serves such sizes with fresh `mmap`s (and trims freed heap back to the system), so
/// every part paid for zeroing new pages: a fifth of the scan's CPU time. Freeing one large
/// block raises its thresholds (to that block's size, twice that for trimming), after which
/// those buffers are reused from the heap. Elsewhere this is one untouched allocation.
fn keep_freed_memory() {
    drop(std::hint::black_box(Vec::<u8>::with_capacity(16 << 20)));
}

fn bar(done: usize, total: usize) {
    let width = 30;
    let filled = done * width / total.max(1);
    eprint!(
        "\r[{}{}] {done}/{total} row groups",
        "#".repeat(filled),
        " ".repeat(width - filled)
    );
}

fn evaluate(
    compiled: &CompiledRules,
    n_rules: usize,
    batches: &[RecordBatch],
    want_alerts: bool,
) -> Result<PartResult, Failure> {
    let mut r = PartResult {
        hits: vec![0; n_rules],
        missing: vec![0; n_rules],
        alerts: String::new(),
    };
    for batch in batches {
        let hits = compiled.evaluate(batch);
        for (k, h) in hits.iter().enumerate() {
            r.hits[k] += h.hits.count_set_bits() as u64;
            r.missing[k] += h.missing;
        }
        if want_alerts {
            let uscc = batch
                .column_by_name(puhui_snapshot::USCC)
                .ok_or_else(|| Failure("batch without uscc".into()))?;
            let code = |i: usize| -> &str {
                match uscc.as_string_opt::<i32>() {
                    Some(a) => a.value(i),
                    None => uscc.as_string::<i64>().value(i),
                }
            };
            // Firm by firm, then rule by rule, so a firm's alerts are together.
            let sets: Vec<Vec<usize>> = hits
                .iter()
                .map(|h| h.hits.set_indices().collect())
                .collect();
            let mut cursor = vec![0usize; sets.len()];
            for row in 0..batch.num_rows() {
                for (k, set) in sets.iter().enumerate() {
                    if set.get(cursor[k]) == Some(&row) {
                        cursor[k] += 1;
                        if !uscc.is_null(row) {
                            r.alerts.push_str(code(row));
                            r.alerts.push(',');
                            r.alerts.push_str(&hits[k].rule_id);
                            r.alerts.push('\n');
                        }
                    }
                }
            }
        }
    }
    Ok(r)
}

/// The counts as `{"rule_id": hits, …}` in rule-set order.
pub fn counts_json(tallies: &[Tally]) -> Value {
    Value::Object(
        tallies
            .iter()
            .map(|t| (t.rule_id.clone(), json!(t.hits)))
            .collect(),
    )
}

/// A random leaf that few firms meet, for the indicator types of the catalogue.
fn selective_leaf(rng: &mut Rng) -> Value {
    let ind = rng.pick(CATALOGUE);
    let pick_f = |rng: &mut Rng, xs: &[f64]| xs[rng.below(xs.len() as u64) as usize];
    let pick_i = |rng: &mut Rng, xs: &[i64]| xs[rng.below(xs.len() as u64) as usize];
    match ind.kind {
        IndicatorType::Ratio => {
            if rng.below(3) == 0 {
                json!({"fact": ind.id, "operator": "greaterThan", "value": pick_f(rng, &[0.5, 0.6, 0.8])})
            } else {
                let op = *rng.pick(&["lessThan", "lessThanInclusive"]);
                json!({"fact": ind.id, "operator": op, "value": pick_f(rng, &[-0.5, -0.4, -0.3, -0.25])})
            }
        }
        IndicatorType::Fen if ind.id == "tax_paid_12m" => {
            json!({"fact": ind.id, "operator": "lessThan", "value": pick_i(rng, &[200_000, 500_000, 1_000_000])})
        }
        IndicatorType::Fen => {
            json!({"fact": ind.id, "operator": "greaterThan", "value": pick_i(rng, &[100_000, 1_000_000, 10_000_000])})
        }
        IndicatorType::Integer if ind.id.ends_with("headcount") => {
            json!({"fact": ind.id, "operator": "lessThanInclusive", "value": pick_i(rng, &[0, 1, 2])})
        }
        IndicatorType::Integer => {
            let op = *rng.pick(&["greaterThanInclusive", "greaterThan"]);
            json!({"fact": ind.id, "operator": op, "value": pick_i(rng, &[1, 2, 3])})
        }
        IndicatorType::Boolean => {
            if rng.below(4) == 0 {
                json!({"fact": ind.id, "operator": "notEqual", "value": false})
            } else {
                json!({"fact": ind.id, "operator": "equal", "value": true})
            }
        }
        IndicatorType::Category(_) => match rng.below(3) {
            0 => json!({"fact": ind.id, "operator": "equal", "value": "D"}),
            1 => json!({"fact": ind.id, "operator": "in", "value": ["C", "D"]}),
            _ => json!({"fact": ind.id, "operator": "notIn", "value": ["A", "B", "M"]}),
        },
    }
}

/// A random condition tree of selective leaves.
fn condition(rng: &mut Rng) -> Value {
    match rng.below(5) {
        0 => json!({"all": [selective_leaf(rng), selective_leaf(rng)]}),
        1 => json!({"any": [selective_leaf(rng), selective_leaf(rng), selective_leaf(rng)]}),
        2 => json!({"all": [selective_leaf(rng), {"not": selective_leaf(rng)}]}),
        3 => json!({"all": [
            selective_leaf(rng),
            {"any": [selective_leaf(rng), selective_leaf(rng)]}
        ]}),
        _ => {
            json!({"all": [selective_leaf(rng), selective_leaf(rng), {"not": {"any": [selective_leaf(rng), selective_leaf(rng)]}}]})
        }
    }
}

/// `count` random, valid and selective rules (ids `r000`, `r001`, …).
pub fn random_rules(count: usize, seed: u64) -> Value {
    let mut rng = Rng::new(seed);
    Value::Array(
        (0..count)
            .map(|i| {
                json!({
                    "id": format!("r{i:03}"),
                    "name": format!("random rule {i}"),
                    "severity": *rng.pick(&["info", "warning", "critical"]),
                    "conditions": condition(&mut rng),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use puhui_engines::rules::evaluate_row;
    use serde_json::Map;

    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("samplekit-scan-{}-{name}", std::process::id()));
        std::fs::remove_dir_all(&d).ok();
        d
    }

    /// Every firm of a snapshot as a JSON row (null values left out), with its code.
    fn rows(path: &Path) -> Vec<(String, Map<String, Value>)> {
        let snap = Snapshot::open(path).unwrap();
        snap.read_all()
            .unwrap()
            .iter()
            .flat_map(puhui_snapshot::rows_as_json)
            .collect()
    }

    #[test]
    fn random_rules_are_valid_rule_sets() {
        let rules = random_rules(150, 3);
        let parsed = parse_rules(&rules.to_string()).unwrap();
        assert_eq!(parsed.len(), 150);
        assert_eq!(random_rules(150, 3), rules, "deterministic");
    }

    #[test]
    fn invalid_rules_are_reported_with_their_path() {
        let text = r#"[
            {"id": "ok", "name": "fine", "severity": "info",
             "conditions": {"all": [{"fact": "tax_arrears", "operator": "equal", "value": true}]}},
            {"id": "bad", "name": "broken", "severity": "info",
             "conditions": {"any": [{"fact": "tax_arrears", "operator": "lessThan", "value": 1},
                                    {"all": []}]}}
        ]"#;
        let e = parse_rules(text).unwrap_err().0;
        assert!(e.starts_with("422"), "{e}");
        assert!(e.contains("rules[1].conditions.any[0].operator"), "{e}");
        assert!(e.contains("rules[1].conditions.any[1].all"), "{e}");
        let e = parse_rules(r#"[{"id": "x", "name": "y"}]"#).unwrap_err().0;
        assert!(e.contains("rules[0]") && e.contains("severity"), "{e}");
        assert!(parse_rules("{").unwrap_err().0.contains("not JSON"));
    }

    #[test]
    fn scan_agrees_with_the_row_wise_evaluator_on_counts_missing_and_alerts() {
        let dir = tmp("agree");
        crate::snapshot::write(&dir, 4000, 11, 3, "2026-10").unwrap();
        let rules = parse_rules(&random_rules(40, 5).to_string()).unwrap();
        let mut csv = Vec::new();
        let report = scan(&rules, &dir, 2, Some(&mut csv)).unwrap();
        assert_eq!(report.rows, 4000);

        let firms = rows(&dir);
        let mut want_alerts = vec!["uscc,rule_id".to_owned()];
        let mut want: HashMap<&str, (u64, u64)> = HashMap::new();
        for (code, row) in &firms {
            for r in &rules {
                let o = evaluate_row(&r.conditions, row);
                let e = want.entry(r.id.as_str()).or_default();
                e.0 += u64::from(o.hit);
                e.1 += u64::from(o.missing);
                if o.hit {
                    want_alerts.push(format!("{code},{}", r.id));
                }
            }
        }
        for t in &report.tallies {
            assert_eq!(
                (t.hits, t.missing),
                want[t.rule_id.as_str()],
                "rule {}",
                t.rule_id
            );
        }
        assert!(report.tallies.iter().any(|t| t.hits > 0));
        assert!(report.tallies.iter().all(|t| t.missing > 0));
        let got = String::from_utf8(csv).unwrap();
        assert_eq!(got.lines().collect::<Vec<_>>(), want_alerts);

        // Thread count changes nothing.
        let one = scan(&rules, &dir, 1, None).unwrap();
        assert_eq!(one.tallies, report.tallies);
        let counts = counts_json(&report.tallies);
        assert_eq!(counts[&rules[0].id], json!(report.tallies[0].hits));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_malformed_shard_fails_the_scan_naming_it() {
        let dir = tmp("malformed");
        crate::snapshot::write(&dir, 300, 1, 2, "2026-10").unwrap();
        std::fs::write(dir.join("part-00001.parquet"), b"PAR1 garbage").unwrap();
        let rules = parse_rules(&random_rules(3, 1).to_string()).unwrap();
        let e = scan(&rules, &dir, 2, None).unwrap_err().0;
        assert!(e.contains("part-00001.parquet"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
