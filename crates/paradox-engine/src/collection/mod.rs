//! A collection: points of one dimension and metric, stored as segments behind a
//! write-ahead log.
//!
//! Write path (every upsert and delete):
//!
//! ```text
//!  validate + prepare (outside locks)
//!    -> writer mutex: assign timestamps, encode, WAL append (write(2), in order)
//!    -> apply to the growing segment (now searchable): new points that fit its
//!       allocation under the state's read lock (searches go on), anything else under
//!       the write lock; then the id map (its own lock, under the state's read lock)
//!    -> release the writer mutex
//!    -> growing segment past the seal threshold: wake the maintenance worker, or, past
//!       twice the threshold (the worker is behind), seal on this thread (back-pressure)
//!    -> wait until the WAL covers the record per the fsync policy (group commit:
//!       concurrent writers share one fsync)
//!    -> acknowledge
//! ```
//!
//! Sealing (`checkpoint.rs`) and merging (`merge.rs`) run on the collection's maintenance
//! worker (`maintenance.rs`, policy in `merge_policy.rs`); each writes its files without
//! holding the writer mutex and swaps them in under it. Lock order: merge lock, seal lock,
//! writer mutex, state lock.
//!
//! Invariants:
//! * WAL order equals apply order (the writer mutex covers both), so replay rebuilds the
//!   state that readers saw.
//! * The manifest's `applied_seq` is only advanced after the segment and deletes files it
//!   names are durable; WAL files are only removed after the manifest is.
//! * Any failed WAL append or fsync makes the collection refuse writes until reopened
//!   ([`EngineError::Failed`]): after such a failure the kernel may have dropped dirty
//!   pages, so nothing later could be promised durable.

mod checkpoint;
mod ids;
mod indexing;
mod ivf_group;
mod maintenance;
mod merge;
mod merge_policy;
mod read;
mod search;
mod state;
mod write;

pub use maintenance::MaintenanceInfo;
pub use merge::CompactionReport;
pub use read::{CollectionInfo, ListCacheInfo, ScrollPage, ScrollRequest};
pub use search::{SearchParams, SearchRequest, EXACT_SELECTIVITY, MAX_EF_WIDENING};
pub(crate) use state::{Location, State};
pub use write::WriteResult;

use crate::config::{CollectionConfig, EngineOptions, IndexConfig};
use crate::error::{EngineError, Result};
use crate::manifest::Manifest;
use crate::segment::{read_deletes_file, SealedSegment};
use ids::IdMap;
use paradox_storage::Wal;
use parking_lot::{Mutex, RwLock};
use state::SealedEntry;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Name of the directory holding a collection's write-ahead log.
pub(crate) const WAL_DIR: &str = "wal";

/// A collection of points. Cheap to share (`Arc<Collection>`); every method takes `&self`
/// and is safe to call from many threads.
#[derive(Debug)]
pub struct Collection {
    config: CollectionConfig,
    dir: PathBuf,
    options: EngineOptions,
    wal: Wal,
    state: RwLock<State>,
    /// Serialises writers so that log order equals apply order.
    writer: Mutex<WriterState>,
    failed: AtomicBool,
    /// Set by `Engine::drop_collection`: this handle refuses writes from then on.
    dropped: AtomicBool,
    index_builds: Arc<indexing::IndexBuilds>,
    /// The index sealed segments get; `config.index` is only its value at open. Changed
    /// by [`Collection::set_index_config`].
    index_config: RwLock<IndexConfig>,
    /// Bumped by every index-config change: a background build started under an older
    /// config does not install its result.
    index_generation: Arc<AtomicU64>,
    /// The cache paged IVF indexes (`on_disk` with `cache_bytes`) read their lists into,
    /// shared by the collection's segments; replaced when the budget changes.
    list_cache: Mutex<Option<Arc<paradox_index::ListCache>>>,
    /// The quantisers of the collection's last trained IVF build, which the builds of
    /// newly sealed segments reuse (see [`indexing::IvfDonor`]).
    ivf_donor: Arc<indexing::IvfDonor>,
    /// The background maintenance worker's handle.
    maintenance: Arc<maintenance::Maintenance>,
    /// Held by a seal from its freeze to its swap, and by a merge's swap.
    seal_lock: Mutex<()>,
    /// Held by a merge (background or `compact`) from its plan to its swap.
    merge_lock: Mutex<()>,
    /// Exclusive lock on the directory: no second handle (from another engine instance
    /// in this process, or another process) can write the same files.
    _lock: crate::lock::DirLock,
}

/// State only writers touch.
#[derive(Debug)]
pub(crate) struct WriterState {
    pub manifest: Manifest,
    /// Next segment id to hand out (seals and merges take ids before their manifest swap).
    pub next_segment_id: u64,
    /// The deleted rows the manifest's deletes file holds, by segment id: the sealed
    /// deletions as of the manifest's `applied_seq`.
    pub persisted_deletes: checkpoint::DeleteSets,
}

impl Drop for Collection {
    fn drop(&mut self) {
        self.maintenance.stop();
    }
}

impl Collection {
    /// Creates the on-disk layout of a new collection in `dir` (which must not exist yet
    /// as a collection) and opens it.
    pub(crate) fn create(
        dir: &Path,
        config: CollectionConfig,
        options: EngineOptions,
    ) -> Result<Arc<Collection>> {
        std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
        Manifest::new(config).write(dir)?;
        Collection::open(dir, options)
    }

    /// Opens a collection directory: reads the manifest, maps and verifies the segments,
    /// loads the deleted-row sets, replays the log past the manifest's `applied_seq`, and
    /// starts the maintenance worker.
    pub(crate) fn open(dir: &Path, options: EngineOptions) -> Result<Arc<Collection>> {
        let lock = crate::lock::DirLock::acquire(dir)?;
        let manifest = Manifest::read(dir)?;
        let config = manifest.config.clone();
        let growing_rows =
            state::growing_capacity(config.dimension, options.seal_threshold, options.seal_bytes);
        let mut state = State::new(config.dimension, config.history, growing_rows);
        if let Some(history) = &mut state.history {
            for file in &manifest.history_files {
                history.load(&dir.join(file))?;
            }
        }
        let persisted_deletes = match &manifest.deletes_file {
            Some(file) => read_deletes_file(&dir.join(file))?,
            None => Default::default(),
        };
        let mut deletes = persisted_deletes.clone();
        for entry in &manifest.segments {
            let segment = SealedSegment::open(&dir.join(&entry.file), entry.id, config.dimension)?;
            if segment.len() != entry.rows {
                return Err(EngineError::Corrupt {
                    path: dir.join(&entry.file).display().to_string(),
                    reason: format!(
                        "manifest expects {} rows, file holds {}",
                        entry.rows,
                        segment.len()
                    ),
                });
            }
            let deleted = deletes.remove(&entry.id).unwrap_or_default();
            state.sealed.push(SealedEntry {
                segment: Arc::new(segment),
                deleted,
            });
        }
        // The live ids of all segments, made into the map in one pass (compact: an array
        // for numeric ids). A later segment's row wins over an earlier one's, as
        // inserting in order would.
        let rows = state.sealed.iter().map(|e| e.segment.len()).sum();
        let live = state.sealed.iter().enumerate().flat_map(|(index, e)| {
            e.segment.ids().enumerate().filter_map(move |(row, id)| {
                let (segment, row) = (index as u32, row as u32);
                (!e.deleted.contains(row)).then_some((id, Location::Sealed { segment, row }))
            })
        });
        *state.ids.get_mut() = IdMap::build(rows, live);
        state.set_applied_seq(manifest.applied_seq);

        let (wal, _recovery) = Wal::open(&dir.join(WAL_DIR), options.fsync)?;
        if wal.next_seq() <= manifest.applied_seq {
            // The log was emptied by the last checkpoint: continue numbering after it.
            wal.set_next_seq(manifest.applied_seq + 1)?;
        }
        let replay = wal.replay(manifest.applied_seq + 1, |seq, bytes| {
            let op = crate::codec::WalOp::decode(bytes).map_err(|e| EngineError::Corrupt {
                path: dir.join(WAL_DIR).display().to_string(),
                reason: format!("record {seq}: {e}"),
            })?;
            if let crate::codec::WalOp::Upsert { dim, .. } = &op {
                if *dim as usize != config.dimension {
                    return Err(EngineError::Corrupt {
                        path: dir.join(WAL_DIR).display().to_string(),
                        reason: format!(
                            "record {seq} has dimension {dim}, collection has {}",
                            config.dimension
                        ),
                    });
                }
            }
            state.apply(seq, op, bytes.len());
            Ok::<(), EngineError>(())
        });
        replay.map_err(|e| match e {
            paradox_storage::ReplayError::Storage(s) => EngineError::Storage(s),
            paradox_storage::ReplayError::Callback { error, .. } => error,
        })?;
        remove_unreferenced_files(dir, &manifest)?;

        let collection = Collection {
            config: config.clone(),
            dir: dir.to_path_buf(),
            options,
            wal,
            state: RwLock::new(state),
            writer: Mutex::new(WriterState::new(manifest, persisted_deletes)),
            failed: AtomicBool::new(false),
            dropped: AtomicBool::new(false),
            index_builds: Arc::default(),
            index_config: RwLock::new(config.index),
            index_generation: Arc::default(),
            list_cache: Mutex::new(None),
            ivf_donor: Arc::default(),
            maintenance: Arc::default(),
            seal_lock: Mutex::new(()),
            merge_lock: Mutex::new(()),
            _lock: lock,
        };
        for entry in &collection.state.read().sealed {
            collection.ensure_index(&entry.segment);
        }
        let collection = Arc::new(collection);
        if collection.options.maintenance_worker {
            maintenance::Maintenance::start(&collection);
            collection.maintenance.wake();
        } else {
            // What the log replay left may be due already.
            collection.after_write()?;
        }
        Ok(collection)
    }

    /// The collection's configuration (with the current index config).
    pub fn config(&self) -> CollectionConfig {
        CollectionConfig {
            index: self.index_config(),
            ..self.config.clone()
        }
    }

    /// The index config sealed segments get now.
    pub fn index_config(&self) -> IndexConfig {
        *self.index_config.read()
    }

    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The collection's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn check_writable(&self) -> Result<()> {
        if self.dropped.load(Ordering::Acquire) {
            return Err(EngineError::UnknownCollection(self.config.name.clone()));
        }
        if self.failed.load(Ordering::Acquire) {
            Err(EngineError::Failed(self.config.name.clone()))
        } else {
            Ok(())
        }
    }

    fn mark_failed<T>(&self, error: impl Into<EngineError>) -> Result<T> {
        self.failed.store(true, Ordering::Release);
        Err(error.into())
    }

    /// Marks the handle dropped once no write is in flight; later writes through it fail.
    pub(crate) fn mark_dropped(&self) -> parking_lot::MutexGuard<'_, WriterState> {
        let writer = self.writer.lock();
        self.dropped.store(true, Ordering::Release);
        writer
    }

    /// Reads the state. On a rayon worker the read is recursive: a search holding the
    /// lock may, while it waits for its parallel parts, run another search's job on the
    /// same thread, and a plain read would queue behind a waiting writer that itself
    /// waits for the first read to end (a deadlock).
    pub(crate) fn read_state(&self) -> parking_lot::RwLockReadGuard<'_, State> {
        if rayon::current_thread_index().is_some() {
            self.state.read_recursive()
        } else {
            self.state.read()
        }
    }

    /// Makes every acknowledged write durable now, whatever the fsync policy.
    pub fn sync(&self) -> Result<()> {
        self.wal.sync().or_else(|e| self.mark_failed(e))
    }
}

/// Deletes segment, deletes, history and temporary files the manifest does not name: leftovers of
/// a checkpoint or compaction that crashed before (or just after) its manifest swap.
fn remove_unreferenced_files(dir: &Path, manifest: &Manifest) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| EngineError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| EngineError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // An index file belongs to the segment file of the same stem.
        let segment_of_index = crate::segment::INDEX_FILE_SUFFIXES
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .map(|stem| format!("{stem}.pdx"));
        let referenced = manifest
            .segments
            .iter()
            .any(|s| s.file == name || Some(&s.file) == segment_of_index.as_ref())
            || manifest.deletes_file.as_deref() == Some(name.as_str())
            || manifest.history_files.iter().any(|f| f == &name);
        let ours = (name.starts_with("seg-")
            || name.starts_with("deletes-")
            || name.starts_with("history-"))
            && (name.ends_with(".pdx") || segment_of_index.is_some());
        let temp = name.ends_with(".tmp") || name.contains(".tmp.");
        if (ours && !referenced) || temp {
            let path = entry.path();
            if path.is_file() {
                std::fs::remove_file(&path).map_err(|e| EngineError::io(&path, e))?;
            }
        }
    }
    Ok(())
}
