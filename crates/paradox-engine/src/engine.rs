//! The engine: a data directory holding named collections.
//!
//! ```text
//! <root>/LOCK                          exclusive lock (one process per directory)
//! <root>/collections/<name>/MANIFEST   live segments + applied log position
//! <root>/collections/<name>/wal/       write-ahead log files
//! <root>/collections/<name>/seg-*.pdx  sealed segments
//! <root>/collections/<name>/deletes-*.pdx
//! ```
//!
//! Creating a collection builds its directory under a temporary name and renames it into
//! place, so a crash never leaves half a collection; dropping renames it away first.

use crate::collection::Collection;
use crate::config::{validate_name, CollectionConfig, EngineOptions, IndexConfig};
use crate::error::{EngineError, Result};
use crate::lock::DirLock;
use crate::snapshot;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const COLLECTIONS_DIR: &str = "collections";
const TEMP_PREFIX: &str = ".tmp-";

/// An open data directory. Share it as `Arc<Engine>`; all methods take `&self`.
#[derive(Debug)]
pub struct Engine {
    root: PathBuf,
    options: EngineOptions,
    collections: RwLock<BTreeMap<String, Arc<Collection>>>,
    _lock: DirLock,
}

impl Engine {
    /// Opens (creating if needed) a data directory with default options.
    ///
    /// ```
    /// use paradox_engine::{Engine, CollectionConfig, Metric, NewPoint, SearchRequest};
    /// let dir = tempfile::tempdir().unwrap();
    /// let engine = Engine::open(dir.path()).unwrap();
    /// let docs = engine.create_collection(CollectionConfig::new("docs", 3, Metric::Cosine)).unwrap();
    /// docs.upsert(vec![NewPoint::new(1u64, vec![1.0, 0.0, 0.0]), NewPoint::new(2u64, vec![0.0, 1.0, 0.0])]).unwrap();
    /// let hits = docs.search(&SearchRequest::new(vec![0.9, 0.1, 0.0], 1)).unwrap();
    /// assert_eq!(hits[0].id, 1u64.into());
    /// ```
    pub fn open(root: impl AsRef<Path>) -> Result<Engine> {
        Engine::open_with(root, EngineOptions::default())
    }

    /// Opens a data directory with explicit options. Every collection is recovered (its
    /// log replayed); any that cannot be opened makes this fail with the reason, rather
    /// than silently leaving it out.
    pub fn open_with(root: impl AsRef<Path>, options: EngineOptions) -> Result<Engine> {
        let root = root.as_ref().to_path_buf();
        if options.seal_threshold == 0 {
            return Err(EngineError::invalid("seal_threshold", "must be at least 1"));
        }
        if options.seal_bytes == 0 {
            return Err(EngineError::invalid("seal_bytes", "must be at least 1"));
        }
        if options.compact_deleted_fraction.is_nan() || options.compact_deleted_fraction <= 0.0 {
            return Err(EngineError::invalid(
                "compact_deleted_fraction",
                format!(
                    "must be above 0 (above 1 turns it off), got {}",
                    options.compact_deleted_fraction
                ),
            ));
        }
        let collections_dir = root.join(COLLECTIONS_DIR);
        std::fs::create_dir_all(&collections_dir)
            .map_err(|e| EngineError::io(&collections_dir, e))?;
        let lock = DirLock::acquire(&root)?;
        let mut collections = BTreeMap::new();
        let entries = std::fs::read_dir(&collections_dir)
            .map_err(|e| EngineError::io(&collections_dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| EngineError::io(&collections_dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with(TEMP_PREFIX) {
                // An interrupted create, restore or drop: never acknowledged, or already gone.
                std::fs::remove_dir_all(&path).map_err(|e| EngineError::io(&path, e))?;
                continue;
            }
            if !path.is_dir() || validate_name(&name).is_err() {
                continue;
            }
            let collection = Collection::open(&path, options.clone())?;
            collections.insert(name, collection);
        }
        Ok(Engine {
            root,
            options,
            collections: RwLock::new(collections),
            _lock: lock,
        })
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The options the engine was opened with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    fn collection_dir(&self, name: &str) -> PathBuf {
        self.root.join(COLLECTIONS_DIR).join(name)
    }

    fn temp_dir(&self, name: &str) -> PathBuf {
        self.root
            .join(COLLECTIONS_DIR)
            .join(format!("{TEMP_PREFIX}{name}-{}", std::process::id()))
    }

    /// Creates a collection. Fails if the name is taken or the config is invalid.
    pub fn create_collection(&self, config: CollectionConfig) -> Result<Arc<Collection>> {
        config.validate()?;
        let mut collections = self.collections.write();
        if collections.contains_key(&config.name) {
            return Err(EngineError::CollectionExists(config.name));
        }
        let name = config.name.clone();
        let temp = self.temp_dir(&name);
        if temp.exists() {
            std::fs::remove_dir_all(&temp).map_err(|e| EngineError::io(&temp, e))?;
        }
        drop(Collection::create(&temp, config, self.options.clone())?);
        let collection = self.install(&temp, &name)?;
        collections.insert(name, collection.clone());
        Ok(collection)
    }

    /// Moves a fully written collection directory into place and opens it.
    fn install(&self, temp: &Path, name: &str) -> Result<Arc<Collection>> {
        let dir = self.collection_dir(name);
        std::fs::rename(temp, &dir).map_err(|e| EngineError::io(&dir, e))?;
        paradox_storage::fsync_dir(&self.root.join(COLLECTIONS_DIR))?;
        Collection::open(&dir, self.options.clone())
    }

    /// An open collection by name.
    pub fn collection(&self, name: &str) -> Result<Arc<Collection>> {
        self.collections
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::UnknownCollection(name.to_string()))
    }

    /// Names of all collections, sorted.
    pub fn list_collections(&self) -> Vec<String> {
        self.collections.read().keys().cloned().collect()
    }

    /// Deletes a collection and its files. Handles still held elsewhere keep working on
    /// their open files until dropped, but their writes are lost with the collection.
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        let mut collections = self.collections.write();
        let collection = collections
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::UnknownCollection(name.to_string()))?;
        // No maintenance job runs from here on (the worker stopped), no write is in flight,
        // and none will start through any handle.
        collection.stop_maintenance();
        let _writer = collection.mark_dropped();
        let dir = self.collection_dir(name);
        let doomed = self.temp_dir(&format!("drop-{name}"));
        std::fs::rename(&dir, &doomed).map_err(|e| EngineError::io(&dir, e))?;
        collections.remove(name);
        paradox_storage::fsync_dir(&self.root.join(COLLECTIONS_DIR))?;
        std::fs::remove_dir_all(&doomed).map_err(|e| EngineError::io(&doomed, e))?;
        Ok(())
    }

    /// Writes a snapshot of collection `name` into one file at `dest` (see
    /// `docs/formats.md`, "Snapshot file"). The collection is checkpointed first so the
    /// snapshot holds every acknowledged write up to that moment.
    pub fn snapshot_collection(&self, name: &str, dest: &Path) -> Result<snapshot::SnapshotInfo> {
        let collection = self.collection(name)?;
        snapshot::create(&collection, dest)
    }

    /// Restores a snapshot file as a new collection named `as_name` (default: the name it
    /// was snapshotted under). Fails if that name exists; the file is fully verified
    /// before anything becomes visible.
    pub fn restore_collection(
        &self,
        file: &Path,
        as_name: Option<&str>,
    ) -> Result<Arc<Collection>> {
        let mut collections = self.collections.write();
        let (mut manifest, container) = snapshot::read(file)?;
        let name = as_name
            .map(str::to_string)
            .unwrap_or_else(|| manifest.config.name.clone());
        validate_name(&name)?;
        if collections.contains_key(&name) {
            return Err(EngineError::CollectionExists(name));
        }
        manifest.config.name = name.clone();
        manifest.config.validate()?;
        let temp = self.temp_dir(&format!("restore-{name}"));
        if temp.exists() {
            std::fs::remove_dir_all(&temp).map_err(|e| EngineError::io(&temp, e))?;
        }
        // Unpack and fully open it aside; only a collection that opens is moved into place.
        let verified = snapshot::unpack(&temp, &manifest, &container)
            .and_then(|()| Collection::open(&temp, self.options.clone()).map(drop));
        if let Err(e) = verified {
            let _ = std::fs::remove_dir_all(&temp);
            return Err(e);
        }
        let collection = self.install(&temp, &name)?;
        collections.insert(name, collection.clone());
        Ok(collection)
    }

    /// Changes collection `name`'s index config (see [`Collection::set_index_config`]):
    /// persisted at once; sealed segments are re-indexed in the background while their
    /// current index keeps serving. Returns the collection.
    pub fn update_index_config(&self, name: &str, index: IndexConfig) -> Result<Arc<Collection>> {
        let collection = self.collection(name)?;
        collection.set_index_config(index)?;
        Ok(collection)
    }

    /// Makes every acknowledged write of every collection durable now.
    pub fn sync(&self) -> Result<()> {
        for collection in self.collections.read().values() {
            collection.sync()?;
        }
        Ok(())
    }
}

impl Drop for Engine {
    /// Stops every collection's maintenance worker (waiting for a job in progress), so the
    /// directory locks are released when the last handles go: a handle kept after the
    /// engine is dropped still works, its growing segment sealed by its writers.
    fn drop(&mut self) {
        for collection in self.collections.get_mut().values() {
            collection.stop_maintenance();
        }
    }
}
