//! Reading the log back: records from a seq on, in order, each checked again.

use std::fs::File;
use std::path::PathBuf;

use super::segment::{SegmentReader, Step};
use super::Wal;
use crate::error::{corrupt, io_at, StorageError};

/// Why [`Wal::replay`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError<E> {
    /// Reading the log failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The caller's callback returned an error for the record `seq`.
    #[error("WAL replay stopped at seq {seq}: {error}")]
    Callback {
        /// The record the callback refused.
        seq: u64,
        /// What the callback returned.
        error: E,
    },
}

/// A segment opened for replay, with the extent recorded when it was opened.
struct OpenSegment {
    path: PathBuf,
    first_seq: u64,
    len: u64,
    file: File,
}

impl Wal {
    /// Calls `apply(seq, payload)` for every record with `seq >= from_seq`, in seq order, and
    /// returns how many it called it for. Stops at the first callback error.
    ///
    /// Records appended after `replay` starts are not visited. Fails with
    /// [`StorageError::ReplayGap`] when `from_seq` is older than the oldest record kept (those
    /// records were removed, so the caller's state is missing them), and with
    /// [`StorageError::Corrupt`] if a segment changed on disk since it was recovered.
    pub fn replay<E, F>(
        &self,
        from_seq: u64,
        mut apply: F,
    ) -> std::result::Result<u64, ReplayError<E>>
    where
        F: FnMut(u64, &[u8]) -> std::result::Result<(), E>,
    {
        // Open the files under the lock so that a concurrent `remove_before` cannot pull one
        // away; an open file stays readable after it is unlinked.
        let (segments, next_seq) = {
            let log = self.shared.log.lock();
            let mut segments = Vec::with_capacity(log.sealed.len() + 1);
            for info in log.sealed.iter().chain([&log.current_info]) {
                segments.push(OpenSegment {
                    file: File::open(&info.path).map_err(io_at(&info.path))?,
                    path: info.path.clone(),
                    first_seq: info.first_seq,
                    len: info.len,
                });
            }
            (segments, log.next_seq)
        };
        let oldest = segments.first().map_or(next_seq, |s| s.first_seq);
        if from_seq.max(1) < oldest {
            return Err(StorageError::ReplayGap {
                path: self.shared.dir.clone(),
                requested: from_seq,
                oldest,
            }
            .into());
        }

        // Segment i holds seqs first_seq(i) .. first_seq(i + 1); the current one ends at next_seq.
        let ends: Vec<u64> = segments
            .iter()
            .skip(1)
            .map(|s| s.first_seq)
            .chain([next_seq])
            .collect();
        let mut replayed = 0;
        for (segment, end) in segments.into_iter().zip(ends) {
            if end <= from_seq {
                continue; // every record of this segment is older than `from_seq`
            }
            let changed = |offset: u64, what: String| -> ReplayError<E> {
                corrupt(
                    &segment.path,
                    offset,
                    format!("{what}; the segment changed on disk after the log was opened"),
                )
                .into()
            };
            let mut reader = SegmentReader::new(&segment.path, segment.file, segment.len)?;
            let mut expected = segment.first_seq;
            loop {
                match reader.next_step()? {
                    Step::Record {
                        seq,
                        offset,
                        payload,
                    } => {
                        if seq != expected {
                            let what =
                                format!("record has seq {seq} where {expected} was expected");
                            return Err(changed(offset, what));
                        }
                        expected += 1;
                        if seq >= from_seq {
                            apply(seq, payload)
                                .map_err(|error| ReplayError::Callback { seq, error })?;
                            replayed += 1;
                        }
                    }
                    Step::End => break,
                    Step::Torn { offset, reason } => return Err(changed(offset, reason)),
                }
            }
        }
        Ok(replayed)
    }
}
