//! Opening a log directory: find the segments, check every record, cut a torn tail.
//!
//! The rules, and why they are safe:
//!
//! * Records are only ever appended to the **last** segment, and a segment is fsynced before the
//!   next one is created ([`Wal::rotate`](crate::Wal::rotate)). So an interrupted write can only
//!   damage the end of the last segment. There, the first record that is incomplete or fails its
//!   checksum, and everything after it, is cut off (the file is truncated and fsynced) and
//!   reported in [`WalRecovery`]. Nothing cut this way was ever confirmed durable: a record
//!   confirmed by an fsync lies before the damage, because fsync covers every earlier byte.
//! * Damage anywhere else (in a sealed segment, or a header) cannot come from a torn write, and
//!   dropping it could drop records that later records depend on. It is an error.
//! * Sequence numbers must run without gaps within and across segments; a missing segment or a
//!   record with a valid checksum but an unexpected seq is an error.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use super::segment::{
    create_segment, is_segment_temp_name, parse_segment_name, SegmentReader, Step, HEADER_LEN,
};
use crate::error::{corrupt, io_at, Result};

/// What [`Wal::open`](crate::Wal::open) found and repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecovery {
    /// The seq of the last valid record, or `None` if the log holds no records.
    pub last_seq: Option<u64>,
    /// Number of valid records found across all segments.
    pub records: u64,
    /// Bytes cut from the end of the last segment because they were a torn or damaged tail.
    pub truncated_bytes: u64,
    /// The segment that was truncated, if any.
    pub truncated_file: Option<PathBuf>,
}

/// A sealed or current segment as the log tracks it.
#[derive(Debug)]
pub(crate) struct SegmentInfo {
    pub(crate) first_seq: u64,
    pub(crate) path: PathBuf,
    /// File length in bytes, header included.
    pub(crate) len: u64,
}

/// The state of a directory after recovery.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// All segments in seq order; the last one is the one to append to.
    pub(crate) segments: Vec<SegmentInfo>,
    /// The seq the next appended record gets.
    pub(crate) next_seq: u64,
    pub(crate) report: WalRecovery,
}

/// Scans, validates and repairs the log in `dir` (which must exist). Creates the first segment
/// (starting at seq 1) when the directory holds none.
pub(crate) fn recover(dir: &Path) -> Result<Recovered> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_at(dir))? {
        let entry = entry.map_err(io_at(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(first_seq) = parse_segment_name(name) {
            found.push((first_seq, entry.path()));
        } else if is_segment_temp_name(name) {
            // A segment whose creation was interrupted before its rename: never part of the log.
            fs::remove_file(entry.path()).map_err(io_at(&entry.path()))?;
        }
    }
    found.sort();

    let mut report = WalRecovery {
        last_seq: None,
        records: 0,
        truncated_bytes: 0,
        truncated_file: None,
    };
    let mut segments = Vec::with_capacity(found.len());
    let mut next_seq: Option<u64> = None;
    let count = found.len();
    for (index, (name_seq, path)) in found.into_iter().enumerate() {
        let is_last = index + 1 == count;
        if let Some(expected) = next_seq {
            if name_seq != expected {
                return Err(corrupt(
                    &path,
                    0,
                    format!(
                        "WAL segment starts at seq {name_seq}, but the previous segment ends at \
                         seq {}; a segment is missing or was damaged, and replaying past the \
                         gap would lose records",
                        expected - 1
                    ),
                ));
            }
        }
        let scanned = scan_segment(&path, is_last)?;
        report.records += scanned.records;
        if scanned.records > 0 {
            report.last_seq = Some(name_seq + scanned.records - 1);
        }
        if scanned.valid_len < scanned.file_len {
            truncate(&path, scanned.valid_len)?;
            report.truncated_bytes = scanned.file_len - scanned.valid_len;
            report.truncated_file = Some(path.clone());
        }
        next_seq = Some(name_seq + scanned.records);
        segments.push(SegmentInfo {
            first_seq: name_seq,
            path,
            len: scanned.valid_len,
        });
    }

    let next_seq = match next_seq {
        Some(seq) => seq,
        None => {
            let (_, path) = create_segment(dir, 1)?;
            segments.push(SegmentInfo {
                first_seq: 1,
                path,
                len: HEADER_LEN,
            });
            1
        }
    };
    Ok(Recovered {
        segments,
        next_seq,
        report,
    })
}

/// The outcome of checking one segment.
struct Scanned {
    records: u64,
    /// Length of the header plus all valid records.
    valid_len: u64,
    file_len: u64,
}

/// Checks every record of one segment. A torn tail is accepted (and measured) only when
/// `is_last`; anywhere else it is an error.
fn scan_segment(path: &Path, is_last: bool) -> Result<Scanned> {
    let file = fs::File::open(path).map_err(io_at(path))?;
    let file_len = file.metadata().map_err(io_at(path))?.len();
    let mut reader = SegmentReader::new(path, file, file_len)?;
    let mut expected_seq = reader.first_seq();
    let mut records = 0;
    loop {
        match reader.next_step()? {
            Step::Record { seq, offset, .. } => {
                if seq != expected_seq {
                    return Err(corrupt(
                        path,
                        offset,
                        format!(
                            "record has a valid checksum but seq {seq} where seq \
                             {expected_seq} was expected"
                        ),
                    ));
                }
                expected_seq += 1;
                records += 1;
            }
            Step::End => {
                return Ok(Scanned {
                    records,
                    valid_len: file_len,
                    file_len,
                })
            }
            Step::Torn { offset, .. } if is_last => {
                return Ok(Scanned {
                    records,
                    valid_len: offset,
                    file_len,
                });
            }
            Step::Torn { offset, reason } => {
                return Err(corrupt(
                    path,
                    offset,
                    format!(
                        "{reason}, in a WAL segment that is not the last one; only the end of \
                         the last segment can be torn by a crash, so this is damage that \
                         recovery must not paper over (later segments depend on these records)"
                    ),
                ))
            }
        }
    }
}

/// Cuts `path` to `len` bytes and makes the cut durable.
fn truncate(path: &Path, len: u64) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_at(path))?;
    file.set_len(len).map_err(io_at(path))?;
    file.sync_all().map_err(io_at(path))
}
