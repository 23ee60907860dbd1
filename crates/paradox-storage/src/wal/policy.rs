//! When the write-ahead log asks the operating system to put bytes on the disk.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How often the write-ahead log is fsynced, and therefore what a crash can cost.
///
/// Every policy writes each record to the file (`write(2)`) before
/// [`Wal::append`](crate::Wal::append) returns, so **a process crash never loses an
/// acknowledged record**. The policies differ in what a power loss or kernel crash can cost:
///
/// | policy        | `wait_durable` returns         | lost on power loss                     |
/// |---------------|--------------------------------|----------------------------------------|
/// | `Always`      | after an fsync covering it     | nothing that `wait_durable` confirmed  |
/// | `Interval(t)` | at once; a thread fsyncs every `t` | up to `t` (plus one fsync) of writes |
/// | `Never`       | at once; fsync only on `sync`/`rotate` | whatever the OS had not written back |
///
/// The text form (used in configs) is `always`, `never`, `interval` (50 ms), `interval:50ms`,
/// or a bare duration such as `50ms`, `1s`, `250us`; [`Display`](fmt::Display) prints a form
/// that [`parse`](FsyncPolicy::parse) reads back.
///
/// ```
/// use paradox_storage::FsyncPolicy;
/// use std::time::Duration;
/// assert_eq!(FsyncPolicy::parse("10ms"), Some(FsyncPolicy::Interval(Duration::from_millis(10))));
/// assert_eq!(FsyncPolicy::default().to_string(), "interval:50ms");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FsyncPolicy {
    /// Group commit: `wait_durable` returns once an fsync covers the record.
    Always,
    /// A background thread fsyncs at this period while there is unsynced data.
    /// A zero period is treated as 1 ms.
    Interval(Duration),
    /// Only [`Wal::sync`](crate::Wal::sync) and [`Wal::rotate`](crate::Wal::rotate) fsync.
    Never,
}

/// The period of [`FsyncPolicy::default`] and of a bare `interval`.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_millis(50);

impl Default for FsyncPolicy {
    fn default() -> Self {
        FsyncPolicy::Interval(DEFAULT_SYNC_INTERVAL)
    }
}

impl FsyncPolicy {
    /// Parses the text form (case-insensitive, surrounding spaces ignored). Returns `None` for
    /// anything else, including a zero interval.
    pub fn parse(text: &str) -> Option<FsyncPolicy> {
        let text = text.trim().to_ascii_lowercase();
        match text.as_str() {
            "always" => return Some(FsyncPolicy::Always),
            "never" => return Some(FsyncPolicy::Never),
            "interval" => return Some(FsyncPolicy::default()),
            _ => {}
        }
        let duration = text.strip_prefix("interval:").unwrap_or(&text);
        parse_duration(duration.trim())
            .filter(|d| !d.is_zero())
            .map(FsyncPolicy::Interval)
    }
}

impl FromStr for FsyncPolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        FsyncPolicy::parse(text).ok_or_else(|| {
            format!(
                "invalid fsync policy {text:?}: expected \"always\", \"never\", \"interval\", \
                 \"interval:<duration>\" or a duration such as \"50ms\" or \"1s\""
            )
        })
    }
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsyncPolicy::Always => f.write_str("always"),
            FsyncPolicy::Never => f.write_str("never"),
            FsyncPolicy::Interval(period) => write!(f, "interval:{}", format_duration(*period)),
        }
    }
}

/// `<integer><unit>` with unit `ns`, `us`, `ms` or `s`.
fn parse_duration(text: &str) -> Option<Duration> {
    let digits_end = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number.parse().ok()?;
    match unit.trim() {
        "ns" => Some(Duration::from_nanos(number)),
        "us" => Some(Duration::from_micros(number)),
        "ms" => Some(Duration::from_millis(number)),
        "s" => Some(Duration::from_secs(number)),
        _ => None,
    }
}

/// The largest unit that represents `period` exactly, so that parsing gives it back.
fn format_duration(period: Duration) -> String {
    let nanos = period.as_nanos();
    if nanos.is_multiple_of(1_000_000_000) {
        format!("{}s", nanos / 1_000_000_000)
    } else if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!("{}us", nanos / 1_000)
    } else {
        format!("{nanos}ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        let ms = Duration::from_millis;
        let cases = [
            ("always", Some(FsyncPolicy::Always)),
            (" NEVER ", Some(FsyncPolicy::Never)),
            ("interval", Some(FsyncPolicy::Interval(ms(50)))),
            ("interval:50ms", Some(FsyncPolicy::Interval(ms(50)))),
            ("interval: 2s", Some(FsyncPolicy::Interval(ms(2000)))),
            ("50ms", Some(FsyncPolicy::Interval(ms(50)))),
            ("1s", Some(FsyncPolicy::Interval(ms(1000)))),
            (
                "250us",
                Some(FsyncPolicy::Interval(Duration::from_micros(250))),
            ),
            ("0ms", None),
            ("interval:", None),
            ("fast", None),
            ("50", None),
            ("ms", None),
            ("-5ms", None),
            ("5 minutes", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(FsyncPolicy::parse(text), expected, "parsing {text:?}");
        }
        assert!("bogus"
            .parse::<FsyncPolicy>()
            .unwrap_err()
            .contains("bogus"));
    }

    #[test]
    fn display_round_trips_through_parse() {
        let policies = [
            FsyncPolicy::Always,
            FsyncPolicy::Never,
            FsyncPolicy::default(),
            FsyncPolicy::Interval(Duration::from_secs(3)),
            FsyncPolicy::Interval(Duration::from_micros(1500)),
            FsyncPolicy::Interval(Duration::from_nanos(7)),
        ];
        for policy in policies {
            let text = policy.to_string();
            assert_eq!(
                FsyncPolicy::parse(&text),
                Some(policy),
                "round trip of {text}"
            );
        }
        assert_eq!(FsyncPolicy::default().to_string(), "interval:50ms");
        assert_eq!(
            FsyncPolicy::Interval(Duration::from_secs(1)).to_string(),
            "interval:1s"
        );
    }
}
