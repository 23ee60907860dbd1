//! One WAL segment file: its name, its header, its record framing, and a reader over it.
//!
//! ```text
//! header  magic "PDXWAL\0\0" | version u32 | reserved u32 (= 0) | first_seq u64     (24 bytes)
//! record  payload_len u32 | crc32c u32 over (seq LE bytes ++ payload) | seq u64 | payload
//! ```

use std::fs::{File, OpenOptions};
use std::io::{BufReader, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use crate::atomic::{rename_durably, temp_path_for};
use crate::error::{corrupt, io_at, Result, StorageError};

/// First eight bytes of every segment file.
pub(crate) const WAL_MAGIC: [u8; 8] = *b"PDXWAL\0\0";
/// The segment format this build writes and the newest it reads.
pub(crate) const WAL_VERSION: u32 = 1;
/// Bytes of the segment header.
pub(crate) const HEADER_LEN: u64 = 24;
/// Bytes of a record's framing before its payload.
pub(crate) const RECORD_HEADER_LEN: u64 = 16;
/// The largest payload one record may carry. A length field above this is damage, not data.
pub(crate) const MAX_RECORD_LEN: u64 = 1 << 30;

const NAME_PREFIX: &str = "wal-";
const NAME_SUFFIX: &str = ".log";

/// `wal-{first_seq:020}.log`: zero-padded so that lexical order is seq order.
pub(crate) fn segment_name(first_seq: u64) -> String {
    format!("{NAME_PREFIX}{first_seq:020}{NAME_SUFFIX}")
}

/// The first seq encoded in a segment file name, or `None` if `name` is not one.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(NAME_PREFIX)?.strip_suffix(NAME_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether `name` is a temporary file left by an interrupted [`create_segment`].
pub(crate) fn is_segment_temp_name(name: &str) -> bool {
    name.starts_with(&format!(".{NAME_PREFIX}")) && name.ends_with(crate::atomic::TEMP_SUFFIX)
}

/// Appends the framed record for (`seq`, `payload`) to `out`.
pub(crate) fn encode_record(out: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let seq_bytes = seq.to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&seq_bytes), payload);
    // Callers check `payload.len() <= MAX_RECORD_LEN` first, so the cast is lossless.
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&seq_bytes);
    out.extend_from_slice(payload);
}

/// Creates segment `first_seq` in `dir` with its header, durably: the header is written to a
/// temporary file and fsynced, then renamed into place and the directory fsynced. A segment
/// file therefore never exists with a partial header. Returns the file opened for appending.
pub(crate) fn create_segment(dir: &Path, first_seq: u64) -> Result<(File, PathBuf)> {
    let path = dir.join(segment_name(first_seq));
    if path.try_exists().map_err(io_at(&path))? {
        return Err(StorageError::InvalidState {
            path,
            reason: "a WAL segment with this first seq already exists; refusing to overwrite it"
                .into(),
        });
    }
    let temp = temp_path_for(&path)?;
    let outcome = (|| {
        let mut file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&temp)
            .map_err(io_at(&temp))?;
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(&WAL_MAGIC);
        header.extend_from_slice(&WAL_VERSION.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&first_seq.to_le_bytes());
        file.write_all(&header).map_err(io_at(&temp))?;
        file.sync_all().map_err(io_at(&temp))?;
        rename_durably(&temp, &path)?;
        Ok(file)
    })();
    match outcome {
        Ok(file) => Ok((file, path)),
        Err(err) => {
            // Best effort: a leftover temp file is ignored and removed by the next open.
            let _ = std::fs::remove_file(&temp);
            Err(err)
        }
    }
}

/// What the reader found next in a segment.
#[derive(Debug)]
pub(crate) enum Step<'a> {
    /// A record whose checksum matches. Its seq has not been checked against its neighbours.
    Record {
        seq: u64,
        offset: u64,
        payload: &'a [u8],
    },
    /// The bytes from `offset` on are not a complete valid record (a torn write or damage).
    Torn { offset: u64, reason: String },
    /// The segment ends exactly after the previous record.
    End,
}

/// Reads the records of one segment in order, checking each one's framing and checksum.
#[derive(Debug)]
pub(crate) struct SegmentReader {
    path: PathBuf,
    reader: BufReader<File>,
    /// Offset of the next unread byte.
    offset: u64,
    /// Bytes of the file to read; bytes past it are ignored.
    limit: u64,
    first_seq: u64,
    payload: Vec<u8>,
}

impl SegmentReader {
    /// Validates the header of `file` (named `path`) and positions the reader on the first
    /// record. `limit` is the number of bytes to consider, normally the file length.
    pub(crate) fn new(path: &Path, file: File, limit: u64) -> Result<SegmentReader> {
        let name_seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_segment_name);
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut header = [0u8; HEADER_LEN as usize];
        let mut filled = 0;
        while filled < header.len() {
            match reader.read(&mut header[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io_at(path)(e)),
            }
        }
        let magic_seen = &header[..filled.min(8)];
        if magic_seen != &WAL_MAGIC[..magic_seen.len()] {
            return Err(StorageError::BadMagic {
                path: path.to_path_buf(),
                expected: WAL_MAGIC,
                found: magic_seen.to_vec(),
            });
        }
        if (filled as u64) < HEADER_LEN || limit < HEADER_LEN {
            // Segments are created with their header by an atomic rename, so a short header is
            // damage, never a torn append.
            return Err(corrupt(
                path,
                filled as u64,
                format!("WAL segment is shorter than its {HEADER_LEN}-byte header"),
            ));
        }
        let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        if version > WAL_VERSION {
            return Err(StorageError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: WAL_VERSION,
            });
        }
        if version != WAL_VERSION {
            return Err(corrupt(
                path,
                8,
                format!("unknown WAL format version {version}"),
            ));
        }
        if header[12..16] != [0; 4] {
            return Err(corrupt(path, 12, "reserved header field is not zero"));
        }
        let mut seq_bytes = [0u8; 8];
        seq_bytes.copy_from_slice(&header[16..24]);
        let first_seq = u64::from_le_bytes(seq_bytes);
        if name_seq != Some(first_seq) {
            return Err(corrupt(
                path,
                16,
                format!(
                    "header says the first seq is {first_seq}, but the file name says otherwise"
                ),
            ));
        }
        Ok(SegmentReader {
            path: path.to_path_buf(),
            reader,
            offset: HEADER_LEN,
            limit,
            first_seq,
            payload: Vec::new(),
        })
    }

    /// The first seq recorded in the header.
    pub(crate) fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// Reads the next record. After `Torn` or `End` the reader must not be used again.
    pub(crate) fn next_step(&mut self) -> Result<Step<'_>> {
        let start = self.offset;
        let remaining = self.limit - start;
        if remaining == 0 {
            return Ok(Step::End);
        }
        if remaining < RECORD_HEADER_LEN {
            return Ok(torn(
                start,
                format!("{remaining} bytes left, less than a record header"),
            ));
        }
        let mut frame = [0u8; RECORD_HEADER_LEN as usize];
        if let Some(step) = self.read_exact_or_torn(start, &mut frame)? {
            return Ok(step);
        }
        let len = u64::from(u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]));
        let stored_crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let mut seq_bytes = [0u8; 8];
        seq_bytes.copy_from_slice(&frame[8..16]);
        if len > MAX_RECORD_LEN {
            return Ok(torn(
                start,
                format!("record length {len} exceeds the {MAX_RECORD_LEN}-byte limit"),
            ));
        }
        if len > remaining - RECORD_HEADER_LEN {
            return Ok(torn(
                start,
                format!("record of {len} bytes extends past the end of the file"),
            ));
        }
        self.payload.resize(len as usize, 0);
        let mut payload = std::mem::take(&mut self.payload);
        let outcome = self.read_exact_or_torn(start, &mut payload);
        self.payload = payload;
        if let Some(step) = outcome? {
            return Ok(step);
        }
        let computed = crc32c::crc32c_append(crc32c::crc32c(&seq_bytes), &self.payload);
        if computed != stored_crc {
            return Ok(torn(
                start,
                format!("record checksum is {computed:#010x}, stored {stored_crc:#010x}"),
            ));
        }
        Ok(Step::Record {
            seq: u64::from_le_bytes(seq_bytes),
            offset: start,
            payload: &self.payload,
        })
    }

    /// Fills `buf`; a file that ends early (it shrank since `limit` was taken) reads as torn.
    fn read_exact_or_torn(&mut self, start: u64, buf: &mut [u8]) -> Result<Option<Step<'static>>> {
        match self.reader.read_exact(buf) {
            Ok(()) => {
                self.offset += buf.len() as u64;
                Ok(None)
            }
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(Some(torn(
                start,
                "file ended in the middle of a record".into(),
            ))),
            Err(e) => Err(io_at(&self.path)(e)),
        }
    }
}

fn torn(offset: u64, reason: String) -> Step<'static> {
    Step::Torn { offset, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_seq() {
        assert_eq!(segment_name(42), "wal-00000000000000000042.log");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        for bad in [
            "wal-42.log",
            "wal-0000000000000000004a.log",
            "xwal-00000000000000000042.log",
            "wal-00000000000000000042.log.tmp",
        ] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
        assert!(segment_name(9) < segment_name(10));
    }

    #[test]
    fn record_layout_is_pinned() {
        // The check value of the CRC32C variant docs/formats.md names.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        let mut bytes = Vec::new();
        encode_record(&mut bytes, 0x0102_0304_0506_0708, b"ab");
        let mut covered = 0x0102_0304_0506_0708u64.to_le_bytes().to_vec();
        covered.extend_from_slice(b"ab");
        let crc = crc32c::crc32c(&covered).to_le_bytes();
        let expected = [&[2, 0, 0, 0][..], &crc, &[8, 7, 6, 5, 4, 3, 2, 1], b"ab"].concat();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn reader_returns_records_then_end_and_flags_a_partial_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut file, path) = create_segment(dir.path(), 7).unwrap();
        let mut bytes = Vec::new();
        encode_record(&mut bytes, 7, b"hello");
        encode_record(&mut bytes, 8, b"");
        file.write_all(&bytes).unwrap();
        let len = HEADER_LEN + bytes.len() as u64;

        let mut reader = SegmentReader::new(&path, File::open(&path).unwrap(), len).unwrap();
        assert_eq!(reader.first_seq(), 7);
        assert!(matches!(
            reader.next_step().unwrap(),
            Step::Record {
                seq: 7,
                offset: 24,
                payload: b"hello"
            }
        ));
        assert!(matches!(
            reader.next_step().unwrap(),
            Step::Record {
                seq: 8,
                payload: b"",
                ..
            }
        ));
        assert!(matches!(reader.next_step().unwrap(), Step::End));

        // With a limit inside the second record, the reader reports a torn record there.
        let mut reader = SegmentReader::new(&path, File::open(&path).unwrap(), len - 3).unwrap();
        assert!(matches!(
            reader.next_step().unwrap(),
            Step::Record { seq: 7, .. }
        ));
        match reader.next_step().unwrap() {
            Step::Torn { offset, .. } => assert_eq!(offset, 24 + 16 + 5),
            other => panic!("expected torn, got {other:?}"),
        }
    }

    #[test]
    fn create_segment_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        create_segment(dir.path(), 1).unwrap();
        assert!(matches!(
            create_segment(dir.path(), 1),
            Err(StorageError::InvalidState { .. })
        ));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(segment_name(1))]);
    }
}
