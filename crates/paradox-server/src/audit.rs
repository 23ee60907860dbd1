//! The audit log: one JSON object per line for every mutating call (creates, deletes,
//! upserts, index changes, snapshots), allowed or not (refusals for a missing or unknown
//! key (401) and for a role or scope that does not allow the call (403) included): who,
//! what, when, outcome.
//!
//! ```json
//! {"time":"2026-01-02T03:04:05.678Z","request_id":"…","transport":"rest","principal":"ops",
//!  "role":"admin","operation":"upsert","collection":"docs","outcome":"ok","status":"ok"}
//! ```
//!
//! Each record is written with one `write` call on a file opened for appending, so lines
//! from concurrent calls never interleave; a failure to write is logged, never fatal.

use parking_lot::Mutex;
use serde::Serialize;
use std::io::Write;
use std::path::Path;

/// One audit record.
#[derive(Debug, Serialize)]
pub struct AuditRecord<'a> {
    /// UTC, RFC 3339 with milliseconds.
    pub time: String,
    /// The request id (also in the `x-request-id` response header).
    pub request_id: &'a str,
    /// `rest`, `grpc` or `legacy`.
    pub transport: &'a str,
    /// The key's name, or `anonymous` (auth off, or no valid key presented: then `role`
    /// is absent and `status` is `unauthenticated`).
    pub principal: &'a str,
    /// The key's role, when known.
    pub role: Option<&'a str>,
    /// The operation (`upsert`, `create_collection`...).
    pub operation: &'a str,
    /// The collection, when the call names one.
    pub collection: Option<&'a str>,
    /// `ok` or `error`.
    pub outcome: &'a str,
    /// `ok` or the error code.
    pub status: &'a str,
    /// The error message, on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Appends audit records to a file, or drops them when no file is configured.
#[derive(Debug, Default)]
pub struct AuditLog {
    file: Option<Mutex<std::fs::File>>,
}

impl AuditLog {
    /// An audit log appending to `path` (created if missing), or a disabled one.
    pub fn open(path: Option<&Path>) -> std::io::Result<AuditLog> {
        let file = match path {
            Some(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)?;
                }
                Some(Mutex::new(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)?,
                ))
            }
            None => None,
        };
        Ok(AuditLog { file })
    }

    /// Writes one record.
    pub fn record(&self, record: &AuditRecord<'_>) {
        let Some(file) = &self.file else { return };
        let mut line = serde_json::to_vec(record).expect("audit record serialises");
        line.push(b'\n');
        if let Err(e) = file.lock().write_all(&line) {
            tracing::error!(error = %e, "cannot write the audit log");
        }
    }
}

/// Now as RFC 3339 UTC with milliseconds (`2026-01-02T03:04:05.678Z`).
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(Some(&path)).unwrap();
        for op in ["upsert", "delete_collection"] {
            log.record(&AuditRecord {
                time: now_rfc3339(),
                request_id: "r1",
                transport: "rest",
                principal: "ops",
                role: Some("admin"),
                operation: op,
                collection: Some("docs"),
                outcome: "ok",
                status: "ok",
                message: None,
            });
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["operation"], "delete_collection");
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    }
}
