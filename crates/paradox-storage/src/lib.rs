//! Durable bytes for Paradox.
//!
//! This crate stores bytes so that a crash cannot corrupt them silently. It knows nothing about
//! vectors, collections, JSON or the network; the engine decides what the bytes mean. It offers
//! three tools, each for one kind of file:
//!
//! * **Atomic whole-file writes** ([`write_atomic`]) for small files that are replaced as a
//!   whole, like the manifest naming the live segments. Readers see the old file or the new one,
//!   never a mixture, even across a power loss.
//! * **Containers** ([`ContainerWriter`], [`Container`]) for large immutable files, like sealed
//!   segments. A container is a set of named *sections* (a `u32` tag each), every one checksummed
//!   and aligned to 64 bytes, so a reader can memory-map the file and use a section as `&[f32]`
//!   in place. A container is verified completely when it is opened and never changes after.
//! * **A write-ahead log** ([`Wal`]) for changes not yet in a container. Each change is a
//!   numbered record; after a crash the log is replayed from the last checkpoint. Group commit
//!   lets many writers share one fsync, and [`FsyncPolicy`] trades durability against latency.
//!
//! # What every file has in common
//!
//! Every file starts with an 8-byte magic naming its kind and a `u32` format version. A reader
//! refuses a version newer than it knows ([`StorageError::UnsupportedVersion`]) instead of
//! guessing. Integers are little-endian. Every byte is covered by a CRC32C checksum (or, for
//! padding and reserved fields, must be zero), so damage is reported as
//! [`StorageError::Corrupt`] with the file and byte offset. Nothing in this crate panics on bad
//! input. The byte layouts are described in `docs/formats.md`.
//!
//! # Crash safety in one paragraph
//!
//! New files appear by rename after an fsync, so a file either exists complete or not at all.
//! The only file that is ever appended to is the last WAL segment, so the only damage a crash
//! can cause is a torn record at its end; opening the log cuts that off and reports it in
//! [`WalRecovery`]. Damage anywhere else is not something a crash produces, and the crate refuses
//! to open such a log rather than silently dropping records that later ones depend on.
//!
//! # Why a failed fsync is final
//!
//! When the disk reports a write error, Linux tells one fsync caller and may then mark the
//! affected pages clean: a second fsync succeeds, yet the data is not on disk. PostgreSQL lost
//! data this way for years ("fsyncgate", 2018) by retrying. So after any failed write or fsync
//! the [`Wal`] refuses all further appends and waits with [`StorageError::WalFailed`]; the store
//! must be reopened, which recovers from what the disk really holds.

mod atomic;
mod container;
mod error;
mod wal;

pub use atomic::{fsync_dir, write_atomic};
pub use container::{file_id, Container, ContainerWriter, SECTION_ALIGN};
pub use error::{Result, StorageError};
pub use wal::{
    FsyncPolicy, ReplayError, Wal, WalRecovery, WalStats, WalTicket, DEFAULT_SYNC_INTERVAL,
    MAX_WAL_RECORD_LEN,
};
