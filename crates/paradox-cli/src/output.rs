//! Human-facing output: aligned tables, friendly numbers, progress bars.

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::fmt::Write as _;
use std::time::Duration;

/// A plain-text table with a header row; numeric-looking columns are right-aligned.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (missing cells are left blank).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Renders the table, each line indented by `indent` spaces.
    pub fn render(&self, indent: usize) -> String {
        let columns = self.headers.len();
        let cell = |row: &Vec<String>, c: usize| row.get(c).cloned().unwrap_or_default();
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| cell(r, c).chars().count())
                    .chain([self.headers[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let numeric: Vec<bool> = (0..columns)
            .map(|c| {
                !self.rows.is_empty()
                    && self.rows.iter().all(|r| {
                        let s = cell(r, c);
                        s.is_empty()
                            || s.replace([',', '.', '-', '+', 'e'], "")
                                .parse::<u64>()
                                .is_ok()
                    })
            })
            .collect();
        let pad = " ".repeat(indent);
        let mut out = String::new();
        let line = |cells: Vec<String>, out: &mut String| {
            let mut text = pad.clone();
            for (c, value) in cells.iter().enumerate() {
                let gap = widths[c] - value.chars().count();
                if c > 0 {
                    text.push_str("  ");
                }
                if numeric[c] {
                    text.push_str(&" ".repeat(gap));
                    text.push_str(value);
                } else {
                    text.push_str(value);
                    if c + 1 < columns {
                        text.push_str(&" ".repeat(gap));
                    }
                }
            }
            let _ = writeln!(out, "{}", text.trim_end());
        };
        line(self.headers.clone(), &mut out);
        line(widths.iter().map(|w| "-".repeat(*w)).collect(), &mut out);
        for row in &self.rows {
            line((0..columns).map(|c| cell(row, c)).collect(), &mut out);
        }
        out
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A byte count in binary units: `1.5 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A duration at a readable precision: `840 µs`, `12.3 ms`, `4.56 s`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 1e-3 {
        format!("{:.0} µs", secs * 1e6)
    } else if secs < 1.0 {
        format!("{:.2} ms", secs * 1e3)
    } else {
        format!("{secs:.2} s")
    }
}

/// A JSON value squeezed into at most `max` characters, for table cells.
pub fn excerpt(value: &Value, max: usize) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() <= max {
        text
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// A progress bar over `total` items (a spinner when the total is unknown), drawn on stderr
/// only when it is a terminal.
pub fn progress(total: Option<u64>, what: &str) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{spinner:.green} {msg} [{bar:32.cyan/blue}] {human_pos}/{human_len} \
                 ({per_sec}, eta {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner:.green} {msg} {human_pos} ({per_sec})")
                .expect("valid template"),
        ),
    };
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut table = Table::new(&["rank", "id", "title"]);
        table.row(vec!["1".into(), "12345".into(), "a".into()]);
        table.row(vec!["10".into(), "7".into(), "longer title".into()]);
        let text = table.render(2);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "  rank     id  title");
        assert_eq!(lines[1], "  ----  -----  ------------");
        assert_eq!(lines[2], "     1  12345  a");
        assert_eq!(lines[3], "    10      7  longer title");
    }

    #[test]
    fn numbers_are_friendly() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(100), "100");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(duration(Duration::from_micros(840)), "840 µs");
        assert_eq!(duration(Duration::from_millis(1500)), "1.50 s");
        assert_eq!(excerpt(&Value::from("abcdef"), 4), "abc…");
        assert_eq!(excerpt(&serde_json::json!({"a": 1}), 40), "{\"a\":1}");
    }
}
