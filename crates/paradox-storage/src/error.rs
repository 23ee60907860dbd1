//! The one error type of this crate.
//!
//! Every variant names the file it is about, and where a byte offset is known it names that
//! too, so an operator reading the message can find the damage with `xxd -s OFFSET FILE`.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong while storing or loading bytes.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The operating system refused an operation on `path`.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory the operation was about.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// The file exists and is of the right kind, but its bytes are not what was written.
    #[error("corrupt file {} at byte offset {offset}: {reason}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Where the damage was detected (the start of the structure that failed its check).
        offset: u64,
        /// What check failed.
        reason: String,
    },

    /// The file does not start with the magic bytes of the expected kind of file.
    #[error(
        "{} is not the expected kind of file: it should start with magic {} but starts with {}",
        path.display(),
        show_bytes(expected),
        show_bytes(found)
    )]
    BadMagic {
        /// The file that was opened.
        path: PathBuf,
        /// The magic the caller asked for.
        expected: [u8; 8],
        /// The first bytes actually found (shorter than 8 when the file is shorter).
        found: Vec<u8>,
    },

    /// The file was written by a newer (or unknown) format version than this build reads.
    #[error(
        "{} has format version {found}, but this build reads versions up to {supported}; \
         upgrade Paradox to open it",
        path.display()
    )]
    UnsupportedVersion {
        /// The file that was opened.
        path: PathBuf,
        /// The version recorded in the file.
        found: u32,
        /// The newest version this build understands.
        supported: u32,
    },

    /// A container does not hold the section a caller asked for.
    #[error("{} has no section with tag {}", path.display(), show_tag(*tag))]
    MissingSection {
        /// The container file.
        path: PathBuf,
        /// The tag that was asked for.
        tag: u32,
    },

    /// A container writer was asked to add a tag it already holds.
    #[error("{} already has a section with tag {}; tags must be unique", path.display(), show_tag(*tag))]
    DuplicateSection {
        /// The container being written.
        path: PathBuf,
        /// The repeated tag.
        tag: u32,
    },

    /// An API was called in a state where it cannot work (a programming error in the caller).
    #[error("invalid use of {}: {reason}", path.display())]
    InvalidState {
        /// The file or directory the call was about.
        path: PathBuf,
        /// What was wrong and what to do instead.
        reason: String,
    },

    /// A single write-ahead-log record is larger than the format allows.
    #[error(
        "WAL record of {len} bytes is too large for {}: the limit is {max} bytes per record; \
         split the batch",
        path.display()
    )]
    RecordTooLarge {
        /// The log directory.
        path: PathBuf,
        /// The payload length that was refused.
        len: u64,
        /// The largest payload the format accepts.
        max: u64,
    },

    /// The write-ahead log stopped accepting writes after an earlier write or fsync failure.
    ///
    /// This state is sticky by design; see the crate documentation ("Why a failed fsync is
    /// final"). Reopening the log recovers from what is actually on disk.
    #[error(
        "the write-ahead log in {} stopped accepting writes after an earlier failure ({reason}); \
         nothing appended since the last successful sync can be trusted to be on disk. \
         Close and reopen the store to recover from the log on disk",
        path.display()
    )]
    WalFailed {
        /// The log directory.
        path: PathBuf,
        /// The first failure.
        reason: String,
    },

    /// Replay was asked for records that have already been removed from the log.
    #[error(
        "WAL replay from seq {requested} is impossible: the oldest record kept in {} is seq \
         {oldest}, so records {requested}..{oldest} were removed before the checkpoint that \
         covers them was made durable",
        path.display()
    )]
    ReplayGap {
        /// The log directory.
        path: PathBuf,
        /// The first seq the caller asked for.
        requested: u64,
        /// The oldest seq the log still holds (or would assign next, when it holds none).
        oldest: u64,
    },
}

/// Shorthand used throughout this crate.
pub type Result<T> = std::result::Result<T, StorageError>;

/// Builds the closure that wraps an `io::Error` with the path it concerns.
pub(crate) fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Builds a [`StorageError::Corrupt`].
pub(crate) fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

/// Renders bytes as an escaped byte string, e.g. `b"PDXWAL\0\0"`.
fn show_bytes(bytes: &[u8]) -> impl fmt::Display + '_ {
    struct Escaped<'a>(&'a [u8]);
    impl fmt::Display for Escaped<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("b\"")?;
            for &byte in self.0 {
                write!(f, "{}", byte.escape_ascii())?;
            }
            f.write_str("\"")
        }
    }
    Escaped(bytes)
}

/// Renders a section tag as hex, plus its four bytes when they are printable ASCII
/// (tags are often built with `u32::from_le_bytes(*b"VECS")`).
pub(crate) fn show_tag(tag: u32) -> String {
    let bytes = tag.to_le_bytes();
    if bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("{tag:#010x} (\"{}\")", String::from_utf8_lossy(&bytes))
    } else {
        format!("{tag:#010x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_offset_and_values() {
        let err = corrupt(Path::new("/data/seg.pdx"), 4096, "section crc mismatch");
        assert_eq!(
            err.to_string(),
            "corrupt file /data/seg.pdx at byte offset 4096: section crc mismatch"
        );
        let err = StorageError::BadMagic {
            path: PathBuf::from("x.log"),
            expected: *b"PDXWAL\0\0",
            found: b"GIF89a".to_vec(),
        };
        let text = err.to_string();
        assert!(text.contains(r#"b"PDXWAL\x00\x00""#), "{text}");
        assert!(text.contains(r#"b"GIF89a""#), "{text}");
        let err = StorageError::MissingSection {
            path: PathBuf::from("s"),
            tag: u32::from_le_bytes(*b"VECS"),
        };
        assert!(err.to_string().contains("(\"VECS\")"), "{err}");
        assert_eq!(show_tag(7), "0x00000007");
    }
}
