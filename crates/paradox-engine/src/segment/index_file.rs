//! Index files: the HNSW graph of a sealed segment, `seg-<id>.hnsw` beside its segment
//! file (container magic `PDXHNSW\0`, section 1 = the graph bytes of
//! `HnswIndex::to_bytes`; section 3 = traversal codes, section 4 = payload graphs), or its
//! inverted file, `seg-<id>.ivf` (magic `PDXIVF\0\0`,
//! section 1 = `IvfIndex::to_bytes`); section 2 of both = the nonce of the segment they
//! were built from. An index file is derived data: a missing or damaged one is rebuilt
//! from the segment's vectors, never a reason to refuse opening the store.

use super::{PayloadGraphs, SegmentGraph};
use crate::error::{EngineError, Result};
use paradox_index::{EncodedVectors, HnswIndex, IvfIndex, ListCache, SharedBytes};
use paradox_storage::{Container, ContainerWriter};
use std::path::Path;
use std::sync::Arc;

const INDEX_MAGIC: [u8; 8] = *b"PDXHNSW\0";
const INDEX_VERSION: u32 = 1;
const TAG_GRAPH: u32 = 1;
/// The nonce of the segment the graph was built from (u64, little-endian).
const TAG_SEGMENT_NONCE: u32 = 2;
/// Compressed traversal vectors (`EncodedVectors::to_bytes`), when the collection uses an
/// encoding other than f32.
const TAG_ENCODED: u32 = 3;
/// Graphs over the rows of selective payload values (`PayloadGraphs::to_bytes`). Files
/// written before it existed have none: their segments search such filters by scanning.
const TAG_PAYLOAD_GRAPHS: u32 = 4;

const IVF_MAGIC: [u8; 8] = *b"PDXIVF\0\0";
const IVF_VERSION: u32 = 1;
const TAG_IVF: u32 = 1;

/// File name of the HNSW index of segment `id`.
pub(crate) fn index_file_name(id: u64) -> String {
    format!("seg-{id:010}.hnsw")
}

/// File name of the IVF index of segment `id`.
pub(crate) fn ivf_file_name(id: u64) -> String {
    format!("seg-{id:010}.ivf")
}

/// Every index file name segment `id` may have.
pub(crate) fn index_file_names(id: u64) -> [String; 2] {
    [index_file_name(id), ivf_file_name(id)]
}

/// Index file suffixes (each belongs to the `.pdx` segment file of the same stem).
pub(crate) const INDEX_FILE_SUFFIXES: [&str; 2] = [".hnsw", ".ivf"];

/// Writes an inverted file atomically.
pub(crate) fn write_ivf_file(path: &Path, index: &IvfIndex, segment_nonce: u64) -> Result<()> {
    let mut writer = ContainerWriter::create_temp(path, IVF_MAGIC, IVF_VERSION)?;
    writer.add_section(TAG_IVF, &index.to_bytes())?;
    writer.add_section(TAG_SEGMENT_NONCE, &segment_nonce.to_le_bytes())?;
    writer.finish()?;
    Ok(())
}

/// One section of an index file, kept mapped so an index can read it in place (an IVF
/// index its codes, an HNSW graph its links).
struct MappedSection {
    container: Arc<Container>,
    tag: u32,
}

impl MappedSection {
    fn shared(container: &Arc<Container>, tag: u32) -> SharedBytes {
        Arc::new(MappedSection {
            container: Arc::clone(container),
            tag,
        })
    }
}

impl AsRef<[u8]> for MappedSection {
    fn as_ref(&self) -> &[u8] {
        // Present: checked before the index was decoded from it.
        self.container.section(self.tag).unwrap_or_default()
    }
}

/// Where an opened inverted file's codes live.
#[derive(Debug, Clone)]
pub(crate) enum CodesAt {
    /// Copied into RAM.
    Ram,
    /// Left in the memory-mapped file.
    Mapped,
    /// Read list by list from the file into this cache.
    Paged(Arc<ListCache>),
}

impl CodesAt {
    /// Whether `index`'s codes are where `self` says.
    pub(crate) fn holds(&self, index: &IvfIndex) -> bool {
        match self {
            CodesAt::Ram => !index.codes_on_disk(),
            CodesAt::Mapped => index.codes_on_disk() && index.list_cache().is_none(),
            CodesAt::Paged(cache) => index.list_cache().is_some_and(|c| Arc::ptr_eq(c, cache)),
        }
    }
}

/// Reads and checks an inverted file for the segment of `rows` rows with this nonce,
/// with its codes where `codes_at` says.
pub(crate) fn read_ivf_file(
    path: &Path,
    rows: usize,
    segment_nonce: u64,
    codes_at: &CodesAt,
) -> Result<IvfIndex> {
    let container = Container::open(path, IVF_MAGIC, IVF_VERSION)?;
    let corrupt = |reason: String| EngineError::Corrupt {
        path: path.display().to_string(),
        reason,
    };
    if container.section(TAG_SEGMENT_NONCE)? != segment_nonce.to_le_bytes() {
        return Err(corrupt("index was built for another segment".into()));
    }
    container.section(TAG_IVF)?;
    let container = Arc::new(container);
    let index = match codes_at {
        CodesAt::Ram => IvfIndex::from_bytes(container.section(TAG_IVF)?),
        CodesAt::Mapped => IvfIndex::from_shared(MappedSection::shared(&container, TAG_IVF)),
        CodesAt::Paged(cache) => {
            let offset = container.section_offset(TAG_IVF)?;
            let file = std::fs::File::open(path).map_err(|e| EngineError::io(path, e))?;
            // The handle must read the file that was checked and mapped, not one renamed
            // over the path since (a background build's new file).
            if paradox_storage::file_id(&file) != container.file_id() {
                return Err(corrupt(
                    "replaced while being opened (a newer index file took its name)".into(),
                ));
            }
            IvfIndex::from_file_paged(
                MappedSection::shared(&container, TAG_IVF),
                file,
                offset,
                Arc::clone(cache),
            )
        }
    }
    .map_err(|e| corrupt(e.to_string()))?;
    if index.len() != rows {
        return Err(corrupt(format!(
            "index files {} rows, segment has {rows}",
            index.len()
        )));
    }
    Ok(index)
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
    writer.add_section(TAG_PAYLOAD_GRAPHS, &graph.payload.to_bytes())?;
    writer.finish()?;
    Ok(())
}

/// Reads and checks a graph for the segment of `rows` rows of `dim` dimensions with this
/// nonce.
pub(crate) fn read_index_file(
    path: &Path,
    rows: usize,
    dim: usize,
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
    // The graph's links are read in place from the mapping (copied only if it changes),
    // as are the traversal codes below.
    container.section(TAG_GRAPH)?;
    let container = Arc::new(container);
    let index = HnswIndex::from_shared(MappedSection::shared(&container, TAG_GRAPH))
        .map_err(|e| corrupt(e.to_string()))?;
    if index.len() != rows {
        return Err(corrupt(format!(
            "graph has {} nodes, segment has {rows} rows",
            index.len()
        )));
    }
    let encoded = if container.has_section(TAG_ENCODED) {
        // Read in place like the links.
        container.section(TAG_ENCODED)?;
        let encoded = EncodedVectors::from_shared(MappedSection::shared(&container, TAG_ENCODED))
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
    let payload = if container.has_section(TAG_PAYLOAD_GRAPHS) {
        PayloadGraphs::from_bytes(container.section(TAG_PAYLOAD_GRAPHS)?, rows, dim)
            .map_err(corrupt)?
    } else {
        PayloadGraphs::default()
    };
    Ok(SegmentGraph {
        hnsw: index,
        encoded,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use paradox_index::{HnswParams, VectorView};
    use paradox_kernels::Metric;

    #[test]
    fn a_graph_file_opens_with_its_links_in_place_and_rejects_another_segment() {
        let dim = 4;
        let data: Vec<f32> = (0..400).map(|i| ((i * 37) % 101) as f32).collect();
        let view = VectorView {
            data: &data,
            dim,
            metric: Metric::L2,
        };
        let graph = SegmentGraph {
            hnsw: HnswIndex::build(view, HnswParams::default()),
            encoded: None,
            payload: PayloadGraphs::default(),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(index_file_name(7));
        write_index_file(&path, &graph, 42).unwrap();
        let back = read_index_file(&path, 100, dim, 42).unwrap();
        assert!(back.hnsw.links_in_place());
        assert_eq!(back.hnsw.to_bytes(), graph.hnsw.to_bytes());
        // The mapping outlives the file's name: a rebuild renames a new file over it.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(back.hnsw.links(0), graph.hnsw.links(0));
        write_index_file(&path, &graph, 42).unwrap();
        assert!(read_index_file(&path, 100, dim, 43).is_err());
        assert!(read_index_file(&path, 99, dim, 42).is_err());
    }
}
