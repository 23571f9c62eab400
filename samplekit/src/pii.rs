//! Finding raw personal data in text that leaves the platform's processes: log lines above all.
//! One scanner for every out-of-process log (the local runner's under API fuzzing, the Lambdas'
//! under `cargo lambda watch`): it flags the raw personal values the sample data plants (names,
//! ID numbers, phones, e-mails, accounts), any further values a scenario plants, and anything
//! shaped like a resident ID number or a mainland mobile number, planted or not. Masked forms
//! (`138****5678`, `330203********1234`) do not match: the masking breaks the token.

use std::fmt;

/// Profile fields whose sample values ([`crate::load`]) are a person's raw data.
pub const PERSONAL_FIELDS: [&str; 5] = [
    "legal_rep_name",
    "legal_rep_id_number",
    "legal_rep_phone",
    "contact_email",
    "settlement_account",
];

/// Phones the sample stories use (the demo applicant's, the risk story's SMS subscriber).
const STORY_PHONES: [&str; 2] = ["13812345678", "13800138000"];

/// One raw personal value found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// 1-based line number in the scanned text.
    pub line: usize,
    /// What it is: `planted`, `id_number` or `mobile`.
    pub kind: &'static str,
    /// The value as found.
    pub value: String,
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {} {}", self.line, self.kind, self.value)
    }
}

/// Scans text for raw personal data.
#[derive(Debug, Clone, Default)]
pub struct Scanner {
    planted: Vec<String>,
}

impl Scanner {
    /// A scanner for the sample data's own raw values and the shapes of ID numbers and phones.
    pub fn sample() -> Self {
        let mut planted: Vec<String> = PERSONAL_FIELDS
            .iter()
            .filter_map(|f| crate::load::sample_value(f).as_str().map(str::to_owned))
            .collect();
        planted.extend(STORY_PHONES.iter().map(|p| (*p).to_owned()));
        Scanner::default().planting(planted)
    }

    /// Adds raw values a scenario planted (empty values are ignored: they match everything).
    pub fn planting(mut self, raw: impl IntoIterator<Item = String>) -> Self {
        self.planted
            .extend(raw.into_iter().filter(|r| !r.trim().is_empty()));
        self.planted.sort();
        self.planted.dedup();
        self
    }

    /// The planted values it looks for.
    pub fn planted(&self) -> &[String] {
        &self.planted
    }

    /// Every raw personal value in `text`, line by line.
    pub fn scan(&self, text: &str) -> Vec<Leak> {
        let mut leaks = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let leak = |kind, value: &str| Leak {
                line: n + 1,
                kind,
                value: value.to_owned(),
            };
            for raw in &self.planted {
                if line.contains(raw.as_str()) {
                    leaks.push(leak("planted", raw));
                }
            }
            // Tokens are runs of ASCII letters and digits, so an ID number or phone inside a
            // longer code (a ULID, a USCC, a timestamp) is not one.
            for token in line.split(|c: char| !c.is_ascii_alphanumeric()) {
                if is_resident_id_number(token) {
                    leaks.push(leak("id_number", token));
                } else if is_mobile_number(token) {
                    leaks.push(leak("mobile", token));
                }
            }
        }
        leaks
    }

    /// Checks a whole log named `what`: it must hold at least one line (an empty log cannot
    /// pass for a clean one) and no raw personal value. The number of lines scanned, or what
    /// was found, with the offending lines.
    pub fn check_log(&self, what: &str, text: &str) -> Result<usize, String> {
        let lines: Vec<&str> = text.lines().collect();
        if lines.iter().all(|l| l.trim().is_empty()) {
            return Err(format!("{what}: no log line to scan"));
        }
        let leaks = self.scan(text);
        if leaks.is_empty() {
            return Ok(lines.len());
        }
        let mut report = format!("{what}: {} raw personal value(s) logged", leaks.len());
        for leak in leaks.iter().take(20) {
            let line: String = lines[leak.line - 1].chars().take(400).collect();
            report.push_str(&format!("\n  {leak}: {line}"));
        }
        Err(report)
    }
}

/// True for an 18-character resident ID number: a region code, a plausible birth date, a
/// sequence and a check character (not verified, so a mistyped number is still caught).
pub fn is_resident_id_number(token: &str) -> bool {
    let b = token.as_bytes();
    if b.len() != 18
        || !b[..17].iter().all(u8::is_ascii_digit)
        || !(b[17].is_ascii_digit() || b[17] == b'X' || b[17] == b'x')
    {
        return false;
    }
    let number = |r: std::ops::Range<usize>| token[r].parse::<u32>().unwrap_or(0);
    // Province codes run 11–82; birth years 1900–2099.
    (11..=82).contains(&number(0..2))
        && (1900..=2099).contains(&number(6..10))
        && (1..=12).contains(&number(10..12))
        && (1..=31).contains(&number(12..14))
}

/// True for an 11-digit mainland mobile number (`1[3-9]` and nine digits).
pub fn is_mobile_number(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() == 11
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && b.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_values_and_shapes_are_found() {
        let s = Scanner::sample().planting(["王小二".to_owned(), String::new()]);
        assert!(s.planted().iter().any(|p| p == "张三丰"));
        assert!(!s.planted().iter().any(String::is_empty));
        let text = "ok\n{\"msg\":\"login\",\"name\":\"王小二\"}\nphone=13912345678;id 11010519491231002X\n";
        let found: Vec<(usize, &str)> = s.scan(text).iter().map(|l| (l.line, l.kind)).collect();
        assert_eq!(found, vec![(2, "planted"), (3, "mobile"), (3, "id_number")]);
        let sample = format!(
            "a {} b",
            crate::load::sample_value("legal_rep_id_number")
                .as_str()
                .unwrap_or_default()
        );
        assert_eq!(
            s.scan(&sample).len(),
            2,
            "planted and shaped: {:?}",
            s.scan(&sample)
        );
    }

    #[test]
    fn a_log_must_be_non_empty_and_clean() {
        let s = Scanner::sample();
        assert_eq!(s.check_log("runner", "{\"msg\":\"request done\"}\n"), Ok(1));
        assert!(s.check_log("runner", "\n \n").is_err());
        let leaked = s
            .check_log("runner", "{\"msg\":\"sms sent\",\"to\":\"13812345678\"}\n")
            .unwrap_err();
        assert!(leaked.contains("line 1: planted 13812345678"), "{leaked}");
    }

    #[test]
    fn masks_codes_and_timestamps_are_not_personal_data() {
        let s = Scanner::sample();
        for clean in [
            "phone 138****5678, id 330203********1234",
            "uscc 91330203MA2H3B4C5D and 913302031234567890",
            "ulid 01M97ZTQ13512345678VY7PKDG and request 01M97ZJWBB02Y8QTEGVTK7MWP7",
            "at 2026-12-07T10:12:14.811808815Z, 1765102334123 ms, amount 300000000",
            "a 12-digit 135123456789 and a 10-digit 1351234567",
            "all zeros 000000000000000000",
        ] {
            assert_eq!(s.scan(clean), vec![], "{clean}");
        }
    }
}
