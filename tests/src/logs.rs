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

    /// Panics naming the line if any log line so far contains one of `raw` (after checking
    /// there are lines at all, so an empty capture cannot pass for a clean one).
    pub fn assert_none_contain(&self, raw: &[String]) {
        let lines = self.lines();
        assert!(!lines.is_empty(), "no log line was captured");
        for line in &lines {
            for r in raw {
                assert!(!line.contains(r.as_str()), "raw {r} logged: {line}");
            }
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
