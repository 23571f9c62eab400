//! Every log line a test process writes, kept in memory so a scenario can scan them for personal
//! data ("usable, not visible" holds for logs too). One global subscriber at `debug`, JSON
//! lines with span fields, installed by the first [`capture`] and shared by every test of the
//! process (scenarios run in parallel threads: a scan covers all of them, which only widens it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::fmt::MakeWriter;

/// The captured bytes of this process's log lines.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Panics naming the lines if any log line so far contains one of `raw`, or any other raw
    /// personal value the shared scanner knows ([`puhui_samplekit::pii`]: the sample data's,
    /// ID-number and phone shapes), or if there are no lines at all, so an empty capture cannot
    /// pass for a clean one.
    pub fn assert_none_contain(&self, raw: &[String]) {
        let scanner = puhui_samplekit::pii::Scanner::sample().planting(raw.iter().cloned());
        if let Err(leaks) = scanner.check_log("this test process", &self.lines().join("\n")) {
            panic!("{leaks}");
        }
    }
}

/// A writer appending to the capture.
pub struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = CaptureWriter;

    fn make_writer(&'a self) -> CaptureWriter {
        CaptureWriter(self.0.clone())
    }
}

/// The process's capture, installing the subscriber on first use.
pub fn capture() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            tracing_subscriber::fmt()
                .json()
                .with_current_span(true)
                .with_span_list(true)
                .with_max_level(tracing::Level::DEBUG)
                .with_writer(captured.clone())
                .try_init()
                .expect("no other global subscriber in a test process");
            captured
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan can fail: a planted value, or a phone nobody planted, in a log line is caught.
    /// (The only test of this binary: a leak in the shared capture would fail any other.)
    #[test]
    fn a_raw_value_in_a_log_line_fails_the_scan() {
        let logs = capture();
        tracing::info!(firm = "91330203MA2H3B4C5D", "clean line");
        logs.assert_none_contain(&["王小二".to_owned()]);
        tracing::info!(name = "王小二", "leaked name");
        let planted = std::panic::catch_unwind(|| logs.assert_none_contain(&["王小二".to_owned()]));
        assert!(planted.is_err(), "a planted name must fail the scan");
        tracing::info!(to = "13912345678", "leaked phone");
        let shaped = std::panic::catch_unwind(|| logs.assert_none_contain(&[]));
        assert!(shaped.is_err(), "an unplanted phone must fail the scan");
    }
}
