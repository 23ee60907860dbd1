//! The storage directory of the predecessor, `paradoxlf` 0.17, read for migration.
//!
//! A 0.17 store is a directory holding two files:
//!
//! * `vectors.dat`: headerless, native-endian `f32`, row-major; row `i` is the vector of
//!   point `i`. The dimension is not recorded anywhere, so the user must supply it. The file
//!   may be longer than needed (0.17 grew it ahead of use).
//! * `metadata.json`: an object mapping stringified integer ids (`"0"`, `"1"`, ...) to the
//!   point's attribute dict (which may itself hold an `_id` key; we keep it as is).
//!
//! The number of points `N` is the number of metadata keys, and `vectors.dat` must hold at
//! least `N * D` floats. A point's id is its integer key and its payload its attribute dict.

use anyhow::{bail, ensure, Context, Result};
use paradox_engine::{NewPoint, Payload, PointId};
use serde_json::Value;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// Streams the points of a `paradoxlf` 0.17 storage directory, in id order.
#[derive(Debug)]
pub struct ParadoxlfReader {
    vectors_path: PathBuf,
    dim: usize,
    /// `(id, attributes)` sorted by id.
    entries: Vec<(u64, Payload)>,
    next_entry: usize,
    vectors: BufReader<File>,
    /// The row the file cursor stands at.
    cursor_row: u64,
    row_bytes: Vec<u8>,
}

impl ParadoxlfReader {
    /// Opens `dir`, parses `metadata.json` and checks `vectors.dat` is long enough for
    /// every listed point at dimension `dim`.
    pub fn open(dir: &Path, dim: usize) -> Result<ParadoxlfReader> {
        ensure!(dim > 0, "--dimension must be at least 1");
        let metadata_path = dir.join("metadata.json");
        let vectors_path = dir.join("vectors.dat");
        let text = std::fs::read_to_string(&metadata_path).with_context(|| {
            format!(
                "cannot read {} (is {} a paradoxlf 0.17 storage directory?)",
                metadata_path.display(),
                dir.display()
            )
        })?;
        let metadata: serde_json::Map<String, Value> =
            serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a JSON object of id -> attributes",
                    metadata_path.display()
                )
            })?;
        let mut entries = Vec::with_capacity(metadata.len());
        for (key, attributes) in metadata {
            let id: u64 = key.parse().with_context(|| {
                format!(
                    "{}: key `{key}` is not an integer id",
                    metadata_path.display()
                )
            })?;
            let payload = match attributes {
                Value::Object(map) => map,
                Value::Null => Payload::new(),
                other => bail!(
                    "{}: attributes of id {id} must be an object, got {other}",
                    metadata_path.display()
                ),
            };
            entries.push((id, payload));
        }
        entries.sort_unstable_by_key(|(id, _)| *id);

        let file = File::open(&vectors_path)
            .with_context(|| format!("cannot open {}", vectors_path.display()))?;
        let file_floats = file.metadata()?.len() / 4;
        let needed = entries.len() as u64 * dim as u64;
        ensure!(
            file_floats >= needed,
            "{} holds {file_floats} floats, but metadata.json lists {} points x dimension {dim} \
             = {needed} floats; check --dimension",
            vectors_path.display(),
            entries.len()
        );
        let file_rows = file_floats / dim as u64;
        if let Some((id, _)) = entries.iter().find(|(id, _)| *id >= file_rows) {
            bail!(
                "{}: id {id} has no vector: vectors.dat holds only {file_rows} rows of \
                 dimension {dim}",
                metadata_path.display()
            );
        }
        Ok(ParadoxlfReader {
            vectors_path,
            dim,
            entries,
            next_entry: 0,
            vectors: BufReader::with_capacity(1 << 20, file),
            cursor_row: 0,
            row_bytes: vec![0u8; dim * 4],
        })
    }

    /// Number of points the store lists.
    pub fn point_count(&self) -> usize {
        self.entries.len()
    }

    /// Reads up to `max` points; an empty vector means the end.
    pub fn read_batch(&mut self, max: usize) -> Result<Vec<NewPoint>> {
        let end = (self.next_entry + max).min(self.entries.len());
        let mut out = Vec::with_capacity(end - self.next_entry);
        for entry in self.next_entry..end {
            let id = self.entries[entry].0;
            if id != self.cursor_row {
                let delta = (id as i64 - self.cursor_row as i64) * (self.dim as i64 * 4);
                self.vectors.seek_relative(delta)?;
            }
            self.vectors
                .read_exact(&mut self.row_bytes)
                .with_context(|| format!("reading row {id} of {}", self.vectors_path.display()))?;
            self.cursor_row = id + 1;
            let vector: Vec<f32> = self
                .row_bytes
                .chunks_exact(4)
                .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let payload = std::mem::take(&mut self.entries[entry].1);
            out.push(NewPoint::new(PointId::from(id), vector).with_payload(payload));
        }
        self.next_entry = end;
        Ok(out)
    }
}

/// Writes a 0.17-layout store (tests only: the format is read, never produced, by Paradox).
#[cfg(test)]
pub fn write_store(dir: &Path, dim: usize, vectors: &[f32], metadata: &Value) {
    let bytes: Vec<u8> = vectors.iter().flat_map(|x| x.to_ne_bytes()).collect();
    assert_eq!(vectors.len() % dim, 0);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("vectors.dat"), bytes).unwrap();
    std::fs::write(dir.join("metadata.json"), metadata.to_string()).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_points_in_id_order_with_payloads() {
        let dir = tempfile::tempdir().unwrap();
        let vectors: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let metadata = json!({
            "2": {"_id": 2, "name": "c"},
            "0": {"_id": 0, "name": "a"},
            "1": {"name": "b"},
        });
        write_store(dir.path(), 3, &vectors, &metadata);
        let mut reader = ParadoxlfReader::open(dir.path(), 3).unwrap();
        assert_eq!(reader.point_count(), 3);
        let first = reader.read_batch(2).unwrap();
        let rest = reader.read_batch(2).unwrap();
        assert!(reader.read_batch(2).unwrap().is_empty());
        let all: Vec<_> = first.into_iter().chain(rest).collect();
        let ids: Vec<PointId> = all.iter().map(|p| p.id.clone()).collect();
        assert_eq!(ids, vec![0.into(), 1.into(), 2.into()]);
        assert_eq!(all[2].vector, vec![6.0, 7.0, 8.0]);
        assert_eq!(all[0].payload["name"], json!("a"));
        assert_eq!(all[2].payload["_id"], json!(2));
    }

    #[test]
    fn skips_rows_of_missing_ids() {
        let dir = tempfile::tempdir().unwrap();
        let vectors: Vec<f32> = (0..8).map(|i| i as f32).collect();
        write_store(dir.path(), 2, &vectors, &json!({"0": {}, "3": {}}));
        let mut reader = ParadoxlfReader::open(dir.path(), 2).unwrap();
        let points = reader.read_batch(10).unwrap();
        assert_eq!(points[1].id, PointId::from(3));
        assert_eq!(points[1].vector, vec![6.0, 7.0]);
        assert_eq!(points[0].vector, vec![0.0, 1.0]);
    }

    #[test]
    fn too_short_vectors_file_names_both_numbers() {
        let dir = tempfile::tempdir().unwrap();
        write_store(
            dir.path(),
            4,
            &[0.0; 8],
            &json!({"0": {}, "1": {}, "2": {}}),
        );
        let err = format!("{:#}", ParadoxlfReader::open(dir.path(), 4).unwrap_err());
        assert!(
            err.contains("holds 8 floats") && err.contains("= 12 floats"),
            "{err}"
        );
    }

    #[test]
    fn id_beyond_the_vectors_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_store(dir.path(), 2, &[0.0; 4], &json!({"0": {}, "9": {}}));
        let err = format!("{:#}", ParadoxlfReader::open(dir.path(), 2).unwrap_err());
        assert!(err.contains("id 9 has no vector"), "{err}");
    }

    #[test]
    fn bad_metadata_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        write_store(dir.path(), 1, &[0.0; 2], &json!({"zero": {}}));
        let err = format!("{:#}", ParadoxlfReader::open(dir.path(), 1).unwrap_err());
        assert!(err.contains("`zero` is not an integer id"), "{err}");

        let empty = tempfile::tempdir().unwrap();
        let err = format!("{:#}", ParadoxlfReader::open(empty.path(), 1).unwrap_err());
        assert!(err.contains("metadata.json"), "{err}");
    }
}
