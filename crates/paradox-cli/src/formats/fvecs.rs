//! The `.fvecs` / `.ivecs` formats of the classic ANN datasets (SIFT, GIST, Deep1B).
//!
//! Each record is a little-endian `i32` dimension `d` followed by `d` little-endian 4-byte
//! values (`f32` for fvecs, `i32` for ivecs). There is no header: every record must carry the
//! same `d`, and the file length must be a whole number of records. Both are checked, so a
//! truncated download fails at open with the numbers that disagree.

use anyhow::{bail, ensure, Context, Result};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Streams the records of an `.fvecs` (or `.ivecs`) file as raw 4-byte values.
#[derive(Debug)]
pub struct VecsReader {
    path: PathBuf,
    reader: BufReader<File>,
    dim: usize,
    rows: usize,
    next_row: usize,
    record: Vec<u8>,
}

impl VecsReader {
    /// Opens `path`, reads the first record's dimension and checks the file length.
    pub fn open(path: &Path) -> Result<VecsReader> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let file_len = file.metadata()?.len();
        let mut reader = BufReader::with_capacity(1 << 20, file);
        if file_len == 0 {
            return Ok(VecsReader {
                path: path.to_path_buf(),
                reader,
                dim: 0,
                rows: 0,
                next_row: 0,
                record: Vec::new(),
            });
        }
        let mut dim_bytes = [0u8; 4];
        reader
            .read_exact(&mut dim_bytes)
            .with_context(|| format!("{}: too short for a vecs record", path.display()))?;
        let dim = i32::from_le_bytes(dim_bytes);
        ensure!(
            dim > 0 && dim <= 1 << 20,
            "{}: first record declares dimension {dim}; is this really an fvecs/ivecs file?",
            path.display()
        );
        let dim = dim as usize;
        let record_len = 4 + 4 * dim as u64;
        ensure!(
            file_len % record_len == 0,
            "{} is truncated or corrupt: {file_len} bytes is not a whole number of \
             {record_len}-byte records (dimension {dim})",
            path.display()
        );
        Ok(VecsReader {
            path: path.to_path_buf(),
            reader,
            dim,
            rows: (file_len / record_len) as usize,
            next_row: 0,
            record: vec![0u8; 4 * dim],
        })
    }

    /// Dimension of every record (0 for an empty file).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of records in the file.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Appends up to `max_rows` records to `out`, each value decoded by `decode`; returns
    /// how many were read (0 at the end).
    fn read_with<T>(
        &mut self,
        max_rows: usize,
        out: &mut Vec<T>,
        decode: fn([u8; 4]) -> T,
    ) -> Result<usize> {
        let rows = max_rows.min(self.rows - self.next_row);
        out.reserve(rows * self.dim);
        for _ in 0..rows {
            // The first record's dimension was consumed by `open`.
            if self.next_row > 0 {
                let mut dim_bytes = [0u8; 4];
                self.reader.read_exact(&mut dim_bytes)?;
                let dim = i32::from_le_bytes(dim_bytes);
                if dim as i64 != self.dim as i64 {
                    bail!(
                        "{}: record {} declares dimension {dim}, expected {} (from record 0)",
                        self.path.display(),
                        self.next_row,
                        self.dim
                    );
                }
            }
            self.reader
                .read_exact(&mut self.record)
                .with_context(|| format!("{}: unexpected end of data", self.path.display()))?;
            out.extend(
                self.record
                    .chunks_exact(4)
                    .map(|b| decode([b[0], b[1], b[2], b[3]])),
            );
            self.next_row += 1;
        }
        Ok(rows)
    }

    /// Appends up to `max_rows` `f32` records to `out` (fvecs).
    pub fn read_f32_rows(&mut self, max_rows: usize, out: &mut Vec<f32>) -> Result<usize> {
        self.read_with(max_rows, out, f32::from_le_bytes)
    }

    /// Appends up to `max_rows` `i32` records to `out` (ivecs).
    #[cfg(test)]
    pub fn read_i32_rows(&mut self, max_rows: usize, out: &mut Vec<i32>) -> Result<usize> {
        self.read_with(max_rows, out, i32::from_le_bytes)
    }
}

/// Writes records of `dim` 4-byte values, each prefixed by its dimension.
#[derive(Debug)]
pub struct VecsWriter {
    path: PathBuf,
    writer: BufWriter<File>,
    dim: usize,
}

impl VecsWriter {
    /// Creates (or truncates) `path` for records of dimension `dim`.
    pub fn create(path: &Path, dim: usize) -> Result<VecsWriter> {
        ensure!(dim > 0, "fvecs records need a dimension of at least 1");
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(VecsWriter {
            path: path.to_path_buf(),
            writer: BufWriter::with_capacity(1 << 20, file),
            dim,
        })
    }

    fn write_with<T: Copy>(&mut self, rows: &[T], encode: fn(T) -> [u8; 4]) -> Result<()> {
        ensure!(
            rows.len().is_multiple_of(self.dim),
            "{} values are not a whole number of {}-wide rows",
            rows.len(),
            self.dim
        );
        for row in rows.chunks_exact(self.dim) {
            self.writer.write_all(&(self.dim as i32).to_le_bytes())?;
            for &x in row {
                self.writer.write_all(&encode(x))?;
            }
        }
        Ok(())
    }

    /// Appends `f32` rows (fvecs).
    pub fn write_f32_rows(&mut self, rows: &[f32]) -> Result<()> {
        self.write_with(rows, f32::to_le_bytes)
    }

    /// Appends `i32` rows (ivecs).
    pub fn write_i32_rows(&mut self, rows: &[i32]) -> Result<()> {
        self.write_with(rows, i32::to_le_bytes)
    }

    /// Flushes to disk.
    pub fn finish(mut self) -> Result<()> {
        self.writer
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fvecs_round_trip_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.fvecs");
        let data: Vec<f32> = (0..21).map(|i| i as f32 / 3.0).collect();
        let mut writer = VecsWriter::create(&path, 3).unwrap();
        writer.write_f32_rows(&data).unwrap();
        writer.finish().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 7 * 16);

        let mut reader = VecsReader::open(&path).unwrap();
        assert_eq!((reader.rows(), reader.dim()), (7, 3));
        let mut out = Vec::new();
        assert_eq!(reader.read_f32_rows(5, &mut out).unwrap(), 5);
        assert_eq!(reader.read_f32_rows(5, &mut out).unwrap(), 2);
        assert_eq!(reader.read_f32_rows(5, &mut out).unwrap(), 0);
        assert_eq!(out, data);
    }

    #[test]
    fn ivecs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gt.ivecs");
        let mut writer = VecsWriter::create(&path, 2).unwrap();
        writer.write_i32_rows(&[7, -1, 3, 9]).unwrap();
        writer.finish().unwrap();
        let mut reader = VecsReader::open(&path).unwrap();
        let mut out = Vec::new();
        reader.read_i32_rows(10, &mut out).unwrap();
        assert_eq!(out, vec![7, -1, 3, 9]);
    }

    #[test]
    fn rejects_truncated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.fvecs");
        let mut writer = VecsWriter::create(&path, 4).unwrap();
        writer.write_f32_rows(&[1.0; 8]).unwrap();
        writer.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        let err = format!("{:#}", VecsReader::open(&path).unwrap_err());
        assert!(
            err.contains("truncated") && err.contains("38 bytes"),
            "{err}"
        );
    }

    #[test]
    fn rejects_inconsistent_dimensions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mixed.fvecs");
        // Record 0 has dimension 2; record 1 claims 1 but is padded to the same length.
        let mut bytes = Vec::new();
        for (dim, values) in [(2i32, [1.0f32, 2.0]), (1, [3.0, 4.0])] {
            bytes.extend_from_slice(&dim.to_le_bytes());
            values
                .iter()
                .for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
        }
        std::fs::write(&path, &bytes).unwrap();
        let mut reader = VecsReader::open(&path).unwrap();
        let err = format!(
            "{:#}",
            reader.read_f32_rows(10, &mut Vec::new()).unwrap_err()
        );
        assert!(
            err.contains("record 1 declares dimension 1, expected 2"),
            "{err}"
        );
    }

    #[test]
    fn rejects_nonsense_dimension() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.fvecs");
        std::fs::write(&path, (-5i32).to_le_bytes()).unwrap();
        let err = format!("{:#}", VecsReader::open(&path).unwrap_err());
        assert!(err.contains("dimension -5"), "{err}");
    }
}
