//! Index files: the HNSW graph of a sealed segment, `seg-<id>.hnsw` beside its segment
//! file (container magic `PDXHNSW\0`, section 1 = the graph bytes of
//! `HnswIndex::to_bytes`). An index file is derived data: a missing or damaged one is
//! rebuilt from the segment's vectors, never a reason to refuse opening the store.

use super::SegmentGraph;
use crate::error::{EngineError, Result};
use paradox_index::{EncodedVectors, HnswIndex};
use paradox_storage::{Container, ContainerWriter};
use std::path::Path;

const INDEX_MAGIC: [u8; 8] = *b"PDXHNSW\0";
const INDEX_VERSION: u32 = 1;
const TAG_GRAPH: u32 = 1;
/// The nonce of the segment the graph was built from (u64, little-endian).
const TAG_SEGMENT_NONCE: u32 = 2;
/// Compressed traversal vectors (`EncodedVectors::to_bytes`), when the collection uses an
/// encoding other than f32.
const TAG_ENCODED: u32 = 3;

/// File name of the index of segment `id`.
pub(crate) fn index_file_name(id: u64) -> String {
    format!("seg-{id:010}.hnsw")
}

/// Writes the graph atomically.
pub(crate) fn write_index_file(
    path: &Path,
    graph: &SegmentGraph,
    segment_nonce: u64,
) -> Result<()> {
    let mut writer = ContainerWriter::create_temp(path, INDEX_MAGIC, INDEX_VERSION)?;
    writer.add_section(TAG_GRAPH, &graph.hnsw.to_bytes())?;
    writer.add_section(TAG_SEGMENT_NONCE, &segment_nonce.to_le_bytes())?;
    if let Some(encoded) = &graph.encoded {
        writer.add_section(TAG_ENCODED, &encoded.to_bytes())?;
    }
    writer.finish()?;
    Ok(())
}

/// Reads and checks a graph for the segment of `rows` rows with this nonce.
pub(crate) fn read_index_file(
    path: &Path,
    rows: usize,
    segment_nonce: u64,
) -> Result<SegmentGraph> {
    let container = Container::open(path, INDEX_MAGIC, INDEX_VERSION)?;
    let corrupt = |reason: String| EngineError::Corrupt {
        path: path.display().to_string(),
        reason,
    };
    if container.section(TAG_SEGMENT_NONCE)? != segment_nonce.to_le_bytes() {
        return Err(corrupt("graph was built for another segment".into()));
    }
    let index =
        HnswIndex::from_bytes(container.section(TAG_GRAPH)?).map_err(|e| corrupt(e.to_string()))?;
    if index.len() != rows {
        return Err(corrupt(format!(
            "graph has {} nodes, segment has {rows} rows",
            index.len()
        )));
    }
    let encoded = if container.has_section(TAG_ENCODED) {
        let encoded = EncodedVectors::from_bytes(container.section(TAG_ENCODED)?)
            .map_err(|e| corrupt(e.to_string()))?;
        if encoded.len() != rows {
            return Err(corrupt(format!(
                "{} encoded rows, segment has {rows}",
                encoded.len()
            )));
        }
        Some(encoded)
    } else {
        None
    };
    Ok(SegmentGraph {
        hnsw: index,
        encoded,
    })
}
