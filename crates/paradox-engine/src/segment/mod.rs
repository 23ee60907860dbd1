//! Segments: the unit of storage inside a collection.
//!
//! * [`GrowingSegment`]: the newest writes, in RAM, rebuilt from the write-ahead log after
//!   a restart. Searchable the moment a write is applied.
//! * [`SealedSegment`]: immutable, in a checksummed container file whose vector section is
//!   memory-mapped. Deleting a row of a sealed segment marks it in a [`DeletedRows`] set
//!   (persisted at the next checkpoint); compaction rewrites segments without those rows.
//! * [`Partition`]: rows of a segment not indexed yet, filed in the lists of the
//!   collection's last trained IVF quantisers as they arrive.
//! * [`History`]: past versions of points, in collections created with `history: true`.

mod append;
mod deleted;
mod growing;
mod history;
mod index_file;
mod partition;
mod payload_graphs;
mod payload_index;
mod sealed;

pub(crate) use deleted::{read_deletes_file, write_deletes_file, DeletedRows};
pub(crate) use growing::GrowingSegment;
pub(crate) use history::{history_file_name, History, PendingHistory};
pub(crate) use index_file::{
    index_file_name, index_file_names, ivf_file_name, read_index_file, read_ivf_file,
    write_index_file, write_ivf_file, CodesAt, INDEX_FILE_SUFFIXES,
};
pub(crate) use partition::{Assigned, Partition};
pub(crate) use payload_graphs::{PayloadGraph, PayloadGraphs};
pub(crate) use payload_index::{PayloadIndex, RowSet};
pub(crate) use sealed::{
    segment_file_name as segment_file_name_for, BuildQueued, SealedSegment, SegmentGraph,
    SegmentIndex, StoredMeta,
};
