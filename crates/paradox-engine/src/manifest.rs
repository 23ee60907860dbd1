//! The collection manifest: which segment files and which deletes file are live, and up to
//! which write-ahead-log sequence number their contents reach. Swapped atomically (a new
//! container written to a temporary file, fsynced, renamed over `MANIFEST`, directory
//! fsynced), so a crash leaves either the old or the new manifest, never a mix.

use crate::config::CollectionConfig;
use crate::error::{EngineError, Result};
use paradox_storage::{Container, ContainerWriter};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub(crate) const MANIFEST_MAGIC: [u8; 8] = *b"PDXMANIF";
const MANIFEST_VERSION: u32 = 1;
const TAG_BODY: u32 = 1;
pub(crate) const MANIFEST_FILE: &str = "MANIFEST";

/// One live segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SegmentEntry {
    pub id: u64,
    pub file: String,
    pub rows: usize,
}

/// The manifest body (JSON inside a checksummed container).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub config: CollectionConfig,
    pub segments: Vec<SegmentEntry>,
    /// Deletes file covering the sealed segments, if any row of them is deleted.
    pub deletes_file: Option<String>,
    /// Every log record with a sequence number up to this one is reflected in the segments
    /// and deletes file; replay starts after it.
    pub applied_seq: u64,
    pub next_segment_id: u64,
    pub next_deletes_generation: u64,
    /// History files (collections keeping history), oldest first; each holds the past
    /// versions added between two checkpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history_files: Vec<String>,
    #[serde(default)]
    pub next_history_generation: u64,
}

impl Manifest {
    pub fn new(config: CollectionConfig) -> Self {
        Manifest {
            config,
            segments: Vec::new(),
            deletes_file: None,
            applied_seq: 0,
            next_segment_id: 1,
            next_deletes_generation: 1,
            history_files: Vec::new(),
            next_history_generation: 1,
        }
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let body = serde_json::to_vec_pretty(self).expect("manifest serialises");
        let mut writer = ContainerWriter::create_temp(
            &dir.join(MANIFEST_FILE),
            MANIFEST_MAGIC,
            MANIFEST_VERSION,
        )?;
        writer.add_section(TAG_BODY, &body)?;
        writer.finish()?;
        Ok(())
    }

    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        let container = Container::open(&path, MANIFEST_MAGIC, MANIFEST_VERSION)?;
        serde_json::from_slice(container.section(TAG_BODY)?).map_err(|e| EngineError::Corrupt {
            path: path.display().to_string(),
            reason: format!("manifest body: {e}"),
        })
    }
}
