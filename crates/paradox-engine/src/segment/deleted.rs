//! Deleted-row sets of sealed segments and the deletes file that persists them.

use crate::codec::{Reader, Writer};
use crate::error::{EngineError, Result};
use paradox_storage::{Container, ContainerWriter};
use std::collections::BTreeMap;
use std::path::Path;

/// Magic of a deletes file (see `docs/formats.md`).
pub(crate) const DELETES_MAGIC: [u8; 8] = *b"PDXDELS\0";
const DELETES_VERSION: u32 = 1;
const TAG_ROWS: u32 = 1;

/// A bitset of deleted rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DeletedRows {
    words: Vec<u64>,
    count: usize,
}

impl DeletedRows {
    pub fn contains(&self, row: u32) -> bool {
        let (w, b) = (row as usize / 64, row % 64);
        self.words.get(w).is_some_and(|word| word & (1 << b) != 0)
    }

    /// Marks `row`; returns whether it was newly marked.
    pub fn insert(&mut self, row: u32) -> bool {
        let (w, b) = (row as usize / 64, row % 64);
        if self.words.len() <= w {
            self.words.resize(w + 1, 0);
        }
        let fresh = self.words[w] & (1 << b) == 0;
        self.words[w] |= 1 << b;
        self.count += fresh as usize;
        fresh
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn rows(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            (0..64u32)
                .filter(move |b| word & (1 << b) != 0)
                .map(move |b| w as u32 * 64 + b)
        })
    }
}

/// Writes the deleted rows of every sealed segment (`segment id → rows`) atomically.
pub(crate) fn write_deletes_file(path: &Path, sets: &BTreeMap<u64, &DeletedRows>) -> Result<()> {
    let mut buf = Vec::new();
    let mut w = Writer(&mut buf);
    w.u32(sets.len() as u32);
    for (segment, rows) in sets {
        w.u64(*segment);
        w.u32(rows.len() as u32);
        for row in rows.rows() {
            w.u32(row);
        }
    }
    let mut writer = ContainerWriter::create_temp(path, DELETES_MAGIC, DELETES_VERSION)?;
    writer.add_section(TAG_ROWS, &buf)?;
    writer.finish()?;
    Ok(())
}

/// Reads a deletes file written by [`write_deletes_file`].
pub(crate) fn read_deletes_file(path: &Path) -> Result<BTreeMap<u64, DeletedRows>> {
    let container = Container::open(path, DELETES_MAGIC, DELETES_VERSION)?;
    let corrupt = |reason: String| EngineError::Corrupt {
        path: path.display().to_string(),
        reason,
    };
    let mut r = Reader::new(container.section(TAG_ROWS)?);
    let decode = |r: &mut Reader<'_>| -> std::result::Result<BTreeMap<u64, DeletedRows>, crate::codec::DecodeError> {
        let mut out = BTreeMap::new();
        for _ in 0..r.u32("segment count")? {
            let segment = r.u64("segment id")?;
            let mut rows = DeletedRows::default();
            for _ in 0..r.u32("row count")? {
                rows.insert(r.u32("row")?);
            }
            out.insert(segment, rows);
        }
        Ok(out)
    };
    decode(&mut r).map_err(|e| corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitset_and_file_round_trip() {
        let mut d = DeletedRows::default();
        assert!(d.insert(3));
        assert!(!d.insert(3));
        assert!(d.insert(200));
        assert!(d.contains(200) && d.contains(3) && !d.contains(4) && !d.contains(100_000));
        assert_eq!(d.rows().collect::<Vec<_>>(), vec![3, 200]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deletes-1.pdx");
        let empty = DeletedRows::default();
        write_deletes_file(&path, &BTreeMap::from([(7, &d), (9, &empty)])).unwrap();
        let back = read_deletes_file(&path).unwrap();
        assert_eq!(back[&7], d);
        assert!(back[&9].is_empty());
    }
}
