//! Snapshots: one file holding a collection's manifest, every file it names, and the
//! segments' graph files when built, written after a checkpoint so the log is not needed. Restoring verifies every checksum before
//! anything becomes visible. Layout: a container (magic `PDXSNAP\0`) whose section 0 is a
//! JSON index (`{"manifest": ..., "files": [{"name", "section"}]}`) and whose sections
//! 1..n are the files' bytes.

use crate::collection::Collection;
use crate::error::{EngineError, Result};
use crate::manifest::Manifest;
use paradox_storage::{Container, ContainerWriter};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;

const SNAPSHOT_MAGIC: [u8; 8] = *b"PDXSNAP\0";
const SNAPSHOT_VERSION: u32 = 1;
const TAG_INDEX: u32 = 0;

#[derive(Debug, Serialize, Deserialize)]
struct SnapshotIndex {
    manifest: Manifest,
    files: Vec<SnapshotFile>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SnapshotFile {
    name: String,
    section: u32,
}

/// What a snapshot holds.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotInfo {
    /// Collection name at snapshot time.
    pub collection: String,
    /// Live points.
    pub points: usize,
    /// Files packed.
    pub files: usize,
    /// Size of the snapshot file.
    pub bytes: u64,
    /// Log position the snapshot reflects.
    pub applied_seq: u64,
}

/// Checkpoints `collection` and packs it into `dest` atomically.
pub(crate) fn create(collection: &Collection, dest: &Path) -> Result<SnapshotInfo> {
    collection.with_checkpoint(|manifest, dir| {
        let mut names: Vec<String> = manifest.segments.iter().map(|s| s.file.clone()).collect();
        names.extend(manifest.deletes_file.clone());
        names.extend(manifest.history_files.iter().cloned());
        // Graph files are derived, but packing them spares a rebuild after restore; the
        // segment nonce inside each keeps it bound to its (byte-identical) segment.
        for segment in &manifest.segments {
            for index in crate::segment::index_file_names(segment.id) {
                if dir.join(&index).is_file() {
                    names.push(index);
                }
            }
        }
        let files: Vec<SnapshotFile> = names
            .iter()
            .enumerate()
            .map(|(i, name)| SnapshotFile {
                name: name.clone(),
                section: i as u32 + 1,
            })
            .collect();
        let index = SnapshotIndex {
            manifest: manifest.clone(),
            files,
        };
        let mut writer = ContainerWriter::create_temp(dest, SNAPSHOT_MAGIC, SNAPSHOT_VERSION)?;
        writer.add_section(
            TAG_INDEX,
            &serde_json::to_vec(&index).expect("index serialises"),
        )?;
        let mut buf = vec![0u8; 1 << 20];
        for file in &index.files {
            let path = dir.join(&file.name);
            let mut input = std::fs::File::open(&path).map_err(|e| EngineError::io(&path, e))?;
            writer.begin_section(file.section)?;
            loop {
                let n = input
                    .read(&mut buf)
                    .map_err(|e| EngineError::io(&path, e))?;
                if n == 0 {
                    break;
                }
                writer.write_section_bytes(&buf[..n])?;
            }
            writer.end_section()?;
        }
        let bytes = writer.finish()?;
        Ok(SnapshotInfo {
            collection: manifest.config.name.clone(),
            points: collection.count(None)?,
            files: index.files.len(),
            bytes,
            applied_seq: manifest.applied_seq,
        })
    })
}

/// Opens and verifies a snapshot file.
pub(crate) fn read(file: &Path) -> Result<(Manifest, Container)> {
    let container = Container::open(file, SNAPSHOT_MAGIC, SNAPSHOT_VERSION)?;
    let index: SnapshotIndex =
        serde_json::from_slice(container.section(TAG_INDEX)?).map_err(|e| {
            EngineError::Corrupt {
                path: file.display().to_string(),
                reason: format!("snapshot index: {e}"),
            }
        })?;
    let named: Vec<&str> = index.files.iter().map(|f| f.name.as_str()).collect();
    let expected = index
        .manifest
        .segments
        .iter()
        .map(|s| s.file.as_str())
        .chain(index.manifest.deletes_file.as_deref())
        .chain(index.manifest.history_files.iter().map(String::as_str));
    for name in expected {
        if !named.contains(&name) {
            return Err(EngineError::Corrupt {
                path: file.display().to_string(),
                reason: format!("manifest names `{name}` but the snapshot does not hold it"),
            });
        }
    }
    for f in &index.files {
        if f.name.contains('/') || f.name.contains('\\') || f.name.starts_with('.') {
            return Err(EngineError::Corrupt {
                path: file.display().to_string(),
                reason: format!("unsafe file name `{}`", f.name),
            });
        }
        container.section(f.section)?;
    }
    Ok((index.manifest, container))
}

/// What a verified snapshot file holds, read without restoring it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotSummary {
    /// Collection name at snapshot time (the default name on restore).
    pub collection: String,
    /// Vector length.
    pub dimension: usize,
    /// Metric name.
    pub metric: String,
    /// Whether the collection keeps history.
    pub history: bool,
    /// Log position the snapshot reflects.
    pub applied_seq: u64,
    /// Data files packed (segments, deletes, history; graph files not counted).
    pub files: usize,
}

/// Verifies a snapshot file the way a restore does before unpacking anything: the
/// container layout and every section's checksum, the index, every file the manifest
/// names being present under a safe name, and a valid collection config. For files that
/// arrive from elsewhere (an upload) before they are kept.
///
/// Problems with the file's content are [`EngineError::Corrupt`] (naming `file`); a failure
/// to read it stays an I/O error.
pub fn verify_snapshot(file: &Path) -> Result<SnapshotSummary> {
    let corrupt = |reason: String| EngineError::Corrupt {
        path: file.display().to_string(),
        reason,
    };
    let (manifest, _container) = read(file).map_err(|e| match e {
        EngineError::Io { .. }
        | EngineError::Storage(paradox_storage::StorageError::Io { .. })
        | EngineError::Corrupt { .. } => e,
        other => corrupt(other.to_string()),
    })?;
    manifest
        .config
        .validate()
        .map_err(|e| corrupt(format!("snapshot manifest: {e}")))?;
    let files = manifest.segments.len()
        + usize::from(manifest.deletes_file.is_some())
        + manifest.history_files.len();
    Ok(SnapshotSummary {
        collection: manifest.config.name.clone(),
        dimension: manifest.config.dimension,
        metric: manifest.config.metric.as_str().to_string(),
        history: manifest.config.history,
        applied_seq: manifest.applied_seq,
        files,
    })
}

/// Writes the snapshot's files and `manifest` into the new directory `dir`.
pub(crate) fn unpack(dir: &Path, manifest: &Manifest, container: &Container) -> Result<()> {
    let index: SnapshotIndex =
        serde_json::from_slice(container.section(TAG_INDEX)?).map_err(|e| {
            EngineError::Corrupt {
                path: container.path().display().to_string(),
                reason: format!("snapshot index: {e}"),
            }
        })?;
    std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
    for f in &index.files {
        paradox_storage::write_atomic(&dir.join(&f.name), container.section(f.section)?)?;
    }
    manifest.write(dir)?;
    paradox_storage::fsync_dir(dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CollectionConfig, Engine, Metric, NewPoint};

    #[test]
    fn verify_accepts_a_snapshot_and_names_damage() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().join("data")).unwrap();
        let collection = engine
            .create_collection(CollectionConfig::new("docs", 2, Metric::L2))
            .unwrap();
        collection
            .upsert(
                (0..10u64)
                    .map(|i| NewPoint::new(i, vec![i as f32, 1.0]))
                    .collect(),
            )
            .unwrap();
        let file = dir.path().join("docs.snap");
        engine.snapshot_collection("docs", &file).unwrap();
        let summary = verify_snapshot(&file).unwrap();
        assert_eq!(summary.collection, "docs");
        assert_eq!((summary.dimension, summary.metric.as_str()), (2, "l2"));
        assert!(summary.files >= 1);

        let mut bytes = std::fs::read(&file).unwrap();
        let damaged = dir.path().join("damaged.snap");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&damaged, &bytes).unwrap();
        let err = verify_snapshot(&damaged).unwrap_err();
        assert!(matches!(err, EngineError::Corrupt { .. }), "{err}");
        let truncated = dir.path().join("truncated.snap");
        std::fs::write(&truncated, &bytes[..middle]).unwrap();
        let err = verify_snapshot(&truncated).unwrap_err();
        assert!(matches!(err, EngineError::Corrupt { .. }), "{err}");
        let foreign = dir.path().join("foreign.snap");
        std::fs::write(&foreign, b"not a snapshot at all, just text").unwrap();
        let err = verify_snapshot(&foreign).unwrap_err();
        assert!(matches!(err, EngineError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("foreign.snap"), "{err}");
    }
}
