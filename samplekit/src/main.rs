//! `samplekit`: synthetic data, development tokens and the demo.
//!
//! ```text
//! samplekit demo  [--runner PATH]                 start a runner, seed, walk through, stop
//! samplekit seed  --url URL [--seed N]             seed sample products into a running Puhui
//! samplekit token --bank ID --roles a,b [--ttl S]  print a development bank token
//! samplekit firms [--count N] [--seed N]           print synthetic firms (CSV)
//! samplekit snapshot --out DIR [--firms N] [--seed S] [--shards K] [--period YYYY-MM]
//!                                                  write a synthetic indicator snapshot
//! samplekit snapshot-inputs --dir DIR [--firms N] [--seed S] [--period YYYY-MM]
//!                                                  a month's indicator inputs and earlier
//!                                                  snapshots in a local blob directory
//! samplekit snapshot-build --dir DIR --period YYYY-MM
//!                                                  build and publish the month's snapshot there
//! samplekit screening-bench --dir DIR [--case NAME | --filters JSON] [--runs N]
//!                                                  time a screening's first page over the
//!                                                  newest snapshot published there
//! samplekit rules [--count N] [--seed S] [--out F] random selective risk rules (JSON)
//! samplekit scan --rules F --snapshot PATH [--out alerts.csv] [--counts counts.json] [--threads T]
//!                                                  backtest a rule set over a snapshot
//! samplekit score --model FILE --input rows.csv [--out scores.csv] [--policy policy.json]
//!                                                  score rows offline as the platform does
//! samplekit load --url http://127.0.0.1:PORT/... [--token T] [--rps N] [--seconds S]
//!                [--seed-data-dir DIR --seed-uscc U --seed-bank B]
//!                                                  open-loop constant-rate GET load (loopback only)
//! samplekit scan-logs FILE... [--plant VALUE]...   fail if a log is empty or holds raw personal
//!                                                  data (the sample data's, planted, ID/phone-shaped)
//! ```

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use puhui_samplekit::data::{self, Rng};
use puhui_samplekit::demo::{self, Api};
use puhui_samplekit::tokens::DevIssuer;
use puhui_samplekit::{ingest_story, risk_story, scoring_story};
use tokio::io::{AsyncBufReadExt, BufReader};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn dev_keys() -> PathBuf {
    std::env::var("PUHUI_DEV_KEYS").map_or_else(|_| PathBuf::from(".puhui/dev-keys"), PathBuf::from)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("demo") => run_demo(&args).await,
        Some("seed") => seed(&args).await,
        Some("token") => token(&args),
        Some("firms") => firms(&args),
        Some("snapshot") => snapshot(&args),
        Some("snapshot-inputs") => snapshot_inputs(&args).await,
        Some("snapshot-build") => snapshot_build(&args).await,
        Some("screening-bench") => screening_bench(&args).await,
        Some("rules") => rules(&args),
        Some("scan") => scan(&args),
        Some("score") => score(&args),
        Some("load") => load(&args).await,
        Some("govfile") => govfile(&args),
        Some("ingest-file") => ingest_file(&args).await,
        Some("scan-logs") => scan_logs(&args),
        _ => Err(
            "usage: samplekit demo|seed|token|firms|snapshot|snapshot-inputs|snapshot-build|screening-bench|rules|scan|score|load|govfile|ingest-file|scan-logs (see the crate docs)"
                .into(),
        ),
    };
    if let Err(e) = outcome {
        eprintln!("samplekit: {e}");
        std::process::exit(1);
    }
}

async fn run_demo(args: &[String]) -> Result<()> {
    let runner = arg(args, "--runner").unwrap_or_else(|| "target/debug/puhui-local".into());
    let data_dir = std::env::temp_dir().join(format!("puhui-demo-{}", std::process::id()));
    let keys = dev_keys();
    let issuer = DevIssuer::load_or_create(&keys)?;
    println!(
        "Puhui demo: product listing and the financing flow, over real HTTP, on the embedded backend (SQLite + local directory)"
    );
    let mut child = tokio::process::Command::new(&runner)
        .env("PUHUI_ADDR", "127.0.0.1:0")
        .env("PUHUI_DATA_DIR", &data_dir)
        .env("PUHUI_DEV_KEYS", &keys)
        .env("PUHUI_RISK_SCAN_INTERVAL_SECS", "1")
        .env("PUHUI_INGEST_INTERVAL_SECS", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the runner {runner}: {e}"))?;
    let stdout = child.stdout.take().ok_or("runner has no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("PUHUI_READY ") {
                return Some(url.to_owned());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or("the runner did not come up within 30 s")?;
    // Keep draining the runner's stdout so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    demo::step(1, &format!("Local runner started at {base}"));
    demo::say(&format!("data: {}", data_dir.display()));
    let api = Api::new(&base);
    demo::step(2, "Seed: four Ningbo banks list three products each");
    let n = demo::seed(&api, &issuer, 2026).await?;
    demo::say(&format!("{n} products created and listed"));
    demo::walkthrough(&api, &issuer).await?;
    println!("\n— The financing flow: loan code → scan → submit → dispatch → claims → progress —");
    let qr_dir = PathBuf::from(".puhui/demo/loan-codes");
    let outbox = data_dir.join("notifications.jsonl");
    let story = demo::StoryPaths {
        outbox: Some(&outbox),
        qr_dir: Some(&qr_dir),
    };
    let mut result = demo::financing_story(&api, &issuer, 11, story).await;
    if let Ok(next) = result {
        println!(
            "\n— Risk monitoring: snapshot → rules and watch list → scheduled scan → alerts —"
        );
        result = risk_demo(&api, &issuer, next, &base, &data_dir, &outbox).await;
    }
    if let Ok(next) = result {
        println!(
            "\n— Credit scoring: model upload → profile → score under authorization → challenger → pre-approval job —"
        );
        result = scoring_demo(&api, &issuer, next, &data_dir).await;
    }
    if let Ok(next) = result {
        println!(
            "\n— Government data: batch files → data-ingest → profiles, quarantine and reports —"
        );
        result = match ingest_demo(next, &base, &data_dir).await {
            Ok((next, renamed)) => {
                println!("\n— Data quality: stored data → the daily report → platform alert —");
                quality_demo(&api, &issuer, next, renamed, &base, &data_dir).await
            }
            Err(e) => Err(e),
        };
    }
    if let Ok(next) = result {
        println!(
            "\n— Data queries: masked view under authorization → refusal → screening → portfolio export —"
        );
        result = data_demo(&api, &issuer, next, &base, &data_dir).await;
    }
    child.kill().await.ok();
    std::fs::remove_dir_all(&data_dir).ok();
    result?;
    println!("\nDemo complete: runner stopped, every step behaved as expected.");
    println!("Loan-code QR images: {}", qr_dir.display());
    println!("Keep a runner up to explore the API yourself: make serve");
    Ok(())
}

/// Publishes the demo snapshot into the runner's blob store (the embedded adapter's folder) and
/// runs the risk story.
async fn risk_demo(
    api: &Api,
    issuer: &DevIssuer,
    first_step: u32,
    base: &str,
    data_dir: &std::path::Path,
    outbox: &std::path::Path,
) -> std::result::Result<u32, puhui_samplekit::Failure> {
    demo::step(
        first_step,
        "samplekit writes the 2026-10 indicator snapshot and publishes it",
    );
    let dir = data_dir.join("snapshot-2026-10");
    let usccs = risk_story::write_snapshot(&dir)?;
    let blobs = puhui_embedded::LocalBlobStore::new(
        data_dir.join("blobs"),
        base.to_owned(),
        Vec::new(), // only writes here; the runner signs its own URLs
        std::sync::Arc::new(puhui_ports::SystemClock),
    );
    let m = puhui_services::risk::SnapshotStore::new(std::sync::Arc::new(blobs))
        .publish(&dir)
        .await
        .map_err(|e| puhui_samplekit::Failure(e.to_string()))?;
    demo::say(&format!(
        "{} firms × {} indicators in {} Parquet shards",
        m.total_rows,
        puhui_domain::indicators::CATALOGUE.len(),
        m.shards.len()
    ));
    risk_story::risk_story(api, issuer, first_step + 1, &usccs, Some(outbox)).await
}

/// The scoring story, with the firm's profile written into the runner's table as the ingest
/// would (another connection to the same SQLite file).
async fn scoring_demo(
    api: &Api,
    issuer: &DevIssuer,
    first_step: u32,
    data_dir: &std::path::Path,
) -> std::result::Result<u32, puhui_samplekit::Failure> {
    let db = data_dir.join("puhui.db");
    let write_profile = async |uscc: &str, attrs: serde_json::Map<String, serde_json::Value>| {
        use puhui_ports::Table;
        let fail = |e: &dyn std::fmt::Display| puhui_samplekit::Failure(e.to_string());
        let table = puhui_embedded::SqliteTable::open(&db).map_err(|e| fail(&e))?;
        let uscc = puhui_domain::Uscc::parse(uscc).map_err(|e| fail(&e))?;
        let key = puhui_services::profiles::indicators_key(&uscc);
        table
            .put(puhui_ports::Item::new(key, attrs), None)
            .await
            .map_err(|e| fail(&e))
    };
    scoring_story::scoring_story(api, issuer, first_step, write_profile).await
}

/// The data-query story: the department's file delivered into the runner's blob store (its
/// folder), everything else over HTTP.
async fn data_demo(
    api: &Api,
    issuer: &DevIssuer,
    first_step: u32,
    base: &str,
    data_dir: &std::path::Path,
) -> std::result::Result<u32, puhui_samplekit::Failure> {
    let (blobs, _) = runner_storage(base, data_dir)?;
    puhui_samplekit::data_story::data_story(api, issuer, first_step, blobs).await
}

/// The runner's blob store and table, as the stories reach them.
type RunnerStorage = (
    std::sync::Arc<dyn puhui_ports::BlobStore>,
    std::sync::Arc<dyn puhui_ports::Table>,
);

/// The runner's blob store (its folder) and table (another connection to the same SQLite file).
fn runner_storage(
    base: &str,
    data_dir: &std::path::Path,
) -> std::result::Result<RunnerStorage, puhui_samplekit::Failure> {
    let table = puhui_embedded::SqliteTable::open(data_dir.join("puhui.db"))
        .map_err(|e| puhui_samplekit::Failure(e.to_string()))?;
    let blobs = puhui_embedded::LocalBlobStore::new(
        data_dir.join("blobs"),
        base.to_owned(),
        Vec::new(), // only writes and reads here; the runner signs its own URLs
        std::sync::Arc::new(puhui_ports::SystemClock),
    );
    Ok((std::sync::Arc::new(blobs), std::sync::Arc::new(table)))
}

/// The ingest story: files written into the runner's blob store (its folder), reports read
/// from its table (another connection to the same SQLite file).
async fn ingest_demo(
    first_step: u32,
    base: &str,
    data_dir: &std::path::Path,
) -> std::result::Result<(u32, u64), puhui_samplekit::Failure> {
    let (blobs, table) = runner_storage(base, data_dir)?;
    ingest_story::ingest_story(first_step, blobs, table).await
}

/// The data-quality story over the runner's table and blob store, its report read over HTTP.
async fn quality_demo(
    api: &Api,
    issuer: &DevIssuer,
    first_step: u32,
    planted: u64,
    base: &str,
    data_dir: &std::path::Path,
) -> std::result::Result<u32, puhui_samplekit::Failure> {
    let (blobs, table) = runner_storage(base, data_dir)?;
    ingest_story::quality_story(first_step, planted, api, issuer, blobs, table).await
}

async fn seed(args: &[String]) -> Result<()> {
    let url = arg(args, "--url").ok_or("--url is required")?;
    let seed = arg(args, "--seed").map_or(Ok(2026), |s| s.parse())?;
    let issuer = DevIssuer::load_or_create(&dev_keys())?;
    let n = demo::seed(&Api::new(&url), &issuer, seed).await?;
    println!("seeded {n} products");
    Ok(())
}

fn token(args: &[String]) -> Result<()> {
    let bank = arg(args, "--bank").unwrap_or_else(|| "nbcb".into());
    let roles = arg(args, "--roles").unwrap_or_else(|| "product_admin".into());
    let ttl = arg(args, "--ttl").map_or(Ok(3600), |s| s.parse())?;
    let roles: Vec<&str> = roles.split(',').collect();
    let issuer = DevIssuer::load_or_create(&dev_keys())?;
    println!(
        "{}",
        issuer.bank_token(&format!("{bank}-user"), &bank, &roles, ttl)?
    );
    Ok(())
}

fn firms(args: &[String]) -> Result<()> {
    let count: usize = arg(args, "--count").map_or(Ok(10), |s| s.parse())?;
    let mut rng = Rng::new(arg(args, "--seed").map_or(Ok(2026), |s| s.parse())?);
    println!("uscc,division,industry");
    for _ in 0..count {
        let division = *rng.pick(data::NINGBO_DISTRICTS);
        let industry = *rng.pick(&["C1311", "C3311", "F5123", "I6510", "M7320"]);
        println!("{},{division},{industry}", data::uscc(&mut rng, division));
    }
    Ok(())
}

/// One generated government file (`--out X.csv` or `X.parquet`) for the ingest benchmark.
fn govfile(args: &[String]) -> Result<()> {
    let source = arg(args, "--source").unwrap_or_else(|| "tax_operating".into());
    let firms: usize = arg(args, "--firms").map_or(Ok(1_380_000), |s| s.parse())?;
    let out = PathBuf::from(arg(args, "--out").ok_or("--out FILE is required")?);
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 10, 31).ok_or("bad date")?;
    let started = std::time::Instant::now();
    let rows = puhui_samplekit::ingest_bench::write_file(&source, firms, as_of, &out)?;
    println!(
        "{source}: {rows} rows written to {} ({:.1} s)",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Scans out-of-process logs (files) for raw personal data; any leak or empty log fails.
fn scan_logs(args: &[String]) -> Result<()> {
    let mut files = Vec::new();
    let mut planted = Vec::new();
    let mut rest = args.iter().skip(1);
    while let Some(a) = rest.next() {
        if a == "--plant" {
            planted.push(rest.next().ok_or("--plant needs a value")?.clone());
        } else {
            files.push(PathBuf::from(a));
        }
    }
    if files.is_empty() {
        return Err("scan-logs FILE... [--plant VALUE]...".into());
    }
    let scanner = puhui_samplekit::pii::Scanner::sample().planting(planted);
    for file in files {
        let text = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let lines =
            scanner.check_log(&file.display().to_string(), &String::from_utf8_lossy(&text))?;
        println!(
            "{}: {lines} lines, no raw personal data ({} planted values and ID/phone shapes looked for)",
            file.display(),
            scanner.planted().len()
        );
    }
    Ok(())
}

/// Ingests one file into an embedded backend under `--data-dir`, timed (issue 6's benchmark).
async fn ingest_file(args: &[String]) -> Result<()> {
    let data_dir = PathBuf::from(arg(args, "--data-dir").ok_or("--data-dir DIR is required")?);
    let source = arg(args, "--source").unwrap_or_else(|| "tax_operating".into());
    let file = PathBuf::from(arg(args, "--file").ok_or("--file FILE is required")?);
    let run = puhui_samplekit::ingest_bench::ingest_file(&data_dir, &source, &file).await?;
    println!(
        "{source}: read {} loaded {} quarantined {} profiles written {} in {:.1} s = {:.0} rows/s; peak RSS {}",
        run.rows_read,
        run.loaded,
        run.quarantined,
        run.profiles_written,
        run.seconds,
        run.rows_read as f64 / run.seconds,
        run.peak_rss_mib
            .map_or_else(|| "unknown".into(), |m| format!("{m:.0} MiB"))
    );
    Ok(())
}

fn snapshot(args: &[String]) -> Result<()> {
    let out = arg(args, "--out").ok_or("--out DIR is required")?;
    let firms: usize = arg(args, "--firms").map_or(Ok(10_000), |s| s.parse())?;
    let seed: u64 = arg(args, "--seed").map_or(Ok(2026), |s| s.parse())?;
    let shards: usize = arg(args, "--shards").map_or(Ok(1), |s| s.parse())?;
    let period = arg(args, "--period").unwrap_or_else(|| "2026-10".into());
    let started = std::time::Instant::now();
    let m = puhui_samplekit::snapshot::write(&PathBuf::from(&out), firms, seed, shards, &period)?;
    println!(
        "snapshot {} written to {out}: {} firms in {} shard(s), schema v{} ({:.1} s)",
        m.period,
        m.total_rows,
        m.shards.len(),
        m.schema_version,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn snapshot_inputs(args: &[String]) -> Result<()> {
    let dir = arg(args, "--dir").ok_or("--dir DIR is required")?;
    let firms: usize = arg(args, "--firms").map_or(Ok(1_380_000), |s| s.parse())?;
    let seed: u64 = arg(args, "--seed").map_or(Ok(2026), |s| s.parse())?;
    let period = puhui_domain::risk::Period::parse(
        &arg(args, "--period").unwrap_or_else(|| "2026-10".into()),
    )
    .map_err(|e| e.message)?;
    let started = std::time::Instant::now();
    let scratch = std::env::temp_dir().join(format!("samplekit-inputs-{}", std::process::id()));
    let g = puhui_samplekit::snapshot_inputs::generate(
        local_blobs(&dir),
        &scratch,
        firms,
        seed,
        period,
    )
    .await?;
    println!(
        "inputs of {period} put in {dir}: {} firms in the previous snapshot, {} input rows in {} files ({:.1} s)",
        g.firms,
        g.rows,
        g.files,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The embedded backend's blob store at `dir` (the runner's is `<PUHUI_DATA_DIR>/blobs`).
fn local_blobs(dir: &str) -> std::sync::Arc<dyn puhui_ports::BlobStore> {
    std::sync::Arc::new(puhui_embedded::LocalBlobStore::new(
        PathBuf::from(dir),
        "http://127.0.0.1/blobs".into(),
        b"samplekit".to_vec(),
        std::sync::Arc::new(puhui_ports::SystemClock),
    ))
}

/// Builds a period's snapshot on the embedded backend's blob directory, as the runner would.
async fn snapshot_build(args: &[String]) -> Result<()> {
    let dir = arg(args, "--dir").ok_or("--dir DIR is required")?;
    let period = puhui_domain::risk::Period::parse(
        &arg(args, "--period").ok_or("--period YYYY-MM is required")?,
    )
    .map_err(|e| e.message)?;
    let blobs = local_blobs(&dir);
    let started = std::time::Instant::now();
    let r = puhui_services::risk::SnapshotBuilder::new(blobs)
        .build(period)
        .await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "snapshot {period} built: {} firms in {} shards from {} input rows ({} objects), \
         {} values from inputs, {} changes computed, previous {:?}, bases {:?}; \
         {secs:.2} s, {:.0} firms/s",
        r.firms,
        r.shards,
        r.input_rows,
        r.input_objects,
        r.from_inputs,
        r.computed,
        r.previous.map(|p| p.to_string()),
        r.bases.iter().map(ToString::to_string).collect::<Vec<_>>(),
        r.firms as f64 / secs
    );
    Ok(())
}

/// Times screenings' first (cold) and second pages over the newest snapshot of the embedded
/// backend's blob directory: one named case of [`puhui_samplekit::screening_bench::CASES`],
/// the given filters, or every case.
async fn screening_bench(args: &[String]) -> Result<()> {
    use puhui_samplekit::screening_bench::{CASES, run};
    let dir = arg(args, "--dir").ok_or("--dir DIR is required")?;
    let runs: usize = arg(args, "--runs").map_or(Ok(3), |s| s.parse())?;
    let cases: Vec<(String, String)> = match (arg(args, "--case"), arg(args, "--filters")) {
        (_, Some(f)) => vec![("custom".into(), f)],
        (Some(name), None) => CASES
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(n, f)| ((*n).to_owned(), (*f).to_owned()))
            .collect(),
        (None, None) => CASES
            .iter()
            .map(|(n, f)| ((*n).to_owned(), (*f).to_owned()))
            .collect(),
    };
    if cases.is_empty() {
        return Err("no such case (see screening_bench::CASES)".into());
    }
    let scratch = std::env::temp_dir().join(format!("samplekit-screening-{}", std::process::id()));
    for (name, filters) in cases {
        for t in run(local_blobs(&dir), &scratch, &name, &filters, runs).await? {
            println!(
                "screening {:<22} snapshot {}: first page {:>8.1} ms, next page {}, {} matched{}",
                t.case,
                t.period,
                t.first_ms,
                t.next_ms
                    .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1} ms")),
                t.total,
                if t.capped { " (capped)" } else { "" }
            );
        }
    }
    std::fs::remove_dir_all(&scratch).ok();
    Ok(())
}

fn rules(args: &[String]) -> Result<()> {
    let count: usize = arg(args, "--count").map_or(Ok(100), |s| s.parse())?;
    let seed: u64 = arg(args, "--seed").map_or(Ok(2026), |s| s.parse())?;
    let json = serde_json::to_string_pretty(&puhui_samplekit::scan::random_rules(count, seed))?;
    match arg(args, "--out") {
        Some(path) => std::fs::write(&path, json + "\n")?,
        None => println!("{json}"),
    }
    Ok(())
}

fn score(args: &[String]) -> Result<()> {
    let read = |flag: &str| -> Result<Option<Vec<u8>>> {
        match arg(args, flag) {
            Some(p) => Ok(Some(std::fs::read(&p).map_err(|e| format!("{p}: {e}"))?)),
            None => Ok(None),
        }
    };
    let model = read("--model")?.ok_or("--model FILE is required")?;
    let input = read("--input")?.ok_or("--input rows.csv is required")?;
    let input = String::from_utf8(input).map_err(|_| "--input must be UTF-8 CSV")?;
    let policy = match read("--policy")? {
        Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| format!("--policy: {e}"))?),
        None => None,
    };
    let (csv, summary) = puhui_samplekit::score::score_csv(&model, policy.as_ref(), &input)?;
    match arg(args, "--out") {
        Some(p) => std::fs::write(&p, csv).map_err(|e| format!("{p}: {e}"))?,
        None => print!("{csv}"),
    }
    eprintln!("{summary}");
    Ok(())
}

fn scan(args: &[String]) -> Result<()> {
    use puhui_samplekit::scan;
    let rules_path = arg(args, "--rules").ok_or("--rules rules.json is required")?;
    let snapshot = arg(args, "--snapshot").ok_or("--snapshot PATH is required")?;
    let threads: usize = arg(args, "--threads").map_or_else(
        || Ok(std::thread::available_parallelism().map_or(2, |n| n.get())),
        |s| s.parse(),
    )?;
    let rules = scan::load_rules(&PathBuf::from(&rules_path))?;
    let mut alerts = match arg(args, "--out") {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(&p).map_err(|e| format!("{p}: {e}"))?,
        )),
        None => None,
    };
    let report = scan::scan(
        &rules,
        &PathBuf::from(&snapshot),
        threads,
        alerts.as_mut().map(|w| w as &mut dyn std::io::Write),
    )?;
    if let Some(p) = arg(args, "--counts") {
        std::fs::write(
            &p,
            serde_json::to_string_pretty(&scan::counts_json(&report.tallies))? + "\n",
        )?;
    }
    println!("{:<24} {:>10} {:>12}", "rule", "hits", "missing");
    for t in &report.tallies {
        println!("{:<24} {:>10} {:>12}", t.rule_id, t.hits, t.missing);
    }
    let total = report.open + report.scan;
    println!(
        "{} firms x {} rules: {:.3} s (open {:.3} s, read + evaluate {:.3} s, {threads} threads)",
        report.rows,
        rules.len(),
        total.as_secs_f64(),
        report.open.as_secs_f64(),
        report.scan.as_secs_f64(),
    );
    Ok(())
}

async fn load(args: &[String]) -> Result<()> {
    use puhui_samplekit::load;
    if let Some(dir) = arg(args, "--seed-data-dir") {
        let uscc =
            arg(args, "--seed-uscc").ok_or("--seed-uscc is required with --seed-data-dir")?;
        let bank = arg(args, "--seed-bank").unwrap_or_else(|| "nbcb".into());
        load::seed_data_query(&PathBuf::from(&dir), &uscc, &bank).await?;
        eprintln!("seeded authorization and profile of {uscc} for {bank} into {dir}/puhui.db");
    }
    let plan = load::LoadPlan {
        url: arg(args, "--url").ok_or("--url http://127.0.0.1:PORT/... is required")?,
        bearer: arg(args, "--token"),
        rps: arg(args, "--rps").map_or(Ok(1000), |s| s.parse())?,
        seconds: arg(args, "--seconds").map_or(Ok(60), |s| s.parse())?,
    };
    plan.check()?;
    let report = load::run(&plan).await?;
    println!("{}", report.render(&plan));
    Ok(())
}
