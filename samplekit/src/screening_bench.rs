//! The screening benchmark: the first page of a screening over a published region-scale
//! snapshot, timed as `POST /v1/screening` serves it in process (the service, not HTTP), on the
//! embedded backend — the newest manifest listed and read, the shards fetched from the blob
//! directory and decoded (only the filter's columns), the rule evaluated, the page's names read
//! from the table, the audit record written. Each run uses a fresh service, so nothing is
//! remembered from an earlier run: every first page is a cold one. The second page is then
//! timed on the same service (its matches remembered).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use puhui_domain::{BankId, Principal, Role};
use puhui_ports::{BlobStore, SystemClock, UlidGenerator};
use puhui_services::screening::{ScreeningFilters, ScreeningRequest, ScreeningService};

use crate::Failure;

/// Named filter sets the benchmark runs by default: broad (capped) and narrow ones, each
/// using the new registration filters or not.
pub const CASES: &[(&str, &str)] = &[
    ("province", r#"{"regions": ["330000"]}"#),
    ("section", r#"{"industries": ["C"]}"#),
    (
        "district-class-years",
        r#"{"regions": ["330203"], "industries": ["C3311"], "years_in_business": {"min": 5, "max": 15}}"#,
    ),
    (
        "grade-headcount-clear",
        r#"{"tax_credit_grades": ["A"], "headcount": {"min": 50}, "clear_of": ["dishonest_debtor", "tax_arrears"]}"#,
    ),
    (
        "narrow",
        r#"{"regions": ["330203"], "industries": ["C4090"], "years_in_business": {"min": 20}, "tax_credit_grades": ["A"]}"#,
    ),
    (
        "all-filters",
        r#"{"regions": ["330200"], "industries": ["C33", "C34", "F51"], "years_in_business": {"min": 3}, "tax_credit_grades": ["A", "B"], "headcount": {"min": 10, "max": 500}, "tax_paid_12m": {"min": 1000000}, "clear_of": ["dishonest_debtor"]}"#,
    ),
];

/// One timed screening.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// The filters' name.
    pub case: String,
    /// Wall time of the first page, cold, in milliseconds.
    pub first_ms: f64,
    /// Wall time of the next page (matches remembered), in milliseconds.
    pub next_ms: Option<f64>,
    /// Firms matched (at most 1,000).
    pub total: u64,
    /// More than 1,000 matched.
    pub capped: bool,
    /// The snapshot screened.
    pub period: String,
}

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure(e.to_string())
}

/// Runs `filters` (JSON) `runs` times over the newest snapshot in `blobs`, each on a fresh
/// service whose table is a new SQLite file under `scratch`.
pub async fn run(
    blobs: Arc<dyn BlobStore>,
    scratch: &Path,
    case: &str,
    filters: &str,
    runs: usize,
) -> Result<Vec<Timing>, Failure> {
    std::fs::create_dir_all(scratch).map_err(fail)?;
    let who = Principal {
        subject: "bench-officer".into(),
        bank_id: Some(BankId::parse("nbcb").map_err(fail)?),
        roles: vec![Role::LoanOfficer],
    };
    let filters: ScreeningFilters =
        serde_json::from_str(filters).map_err(|e| Failure(format!("filters of {case}: {e}")))?;
    let mut out = Vec::new();
    for r in 0..runs {
        let db = scratch.join(format!("screening-{r}.db"));
        std::fs::remove_file(&db).ok();
        let table = puhui_embedded::SqliteTable::open(&db).map_err(fail)?;
        let service = ScreeningService::new(
            Arc::new(table),
            blobs.clone(),
            Arc::new(SystemClock),
            Arc::new(UlidGenerator::default()),
        );
        let ask = |cursor| ScreeningRequest {
            filters: filters.clone(),
            limit: Some(20),
            cursor,
        };
        let started = Instant::now();
        let first = service.screen(&who, ask(None)).await.map_err(fail)?;
        let first_ms = started.elapsed().as_secs_f64() * 1e3;
        let next_ms = match first.next_cursor.clone() {
            Some(c) => {
                let started = Instant::now();
                service.screen(&who, ask(Some(c))).await.map_err(fail)?;
                Some(started.elapsed().as_secs_f64() * 1e3)
            }
            None => None,
        };
        out.push(Timing {
            case: case.to_owned(),
            first_ms,
            next_ms,
            total: first.total,
            capped: first.capped,
            period: first.period,
        });
        std::fs::remove_file(&db).ok();
    }
    Ok(out)
}
