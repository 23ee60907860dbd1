//! File formats the CLI reads and writes: `.npy`, `.fvecs`/`.ivecs`, JSON Lines, and the
//! storage directory of the predecessor `paradoxlf` 0.17.
//!
//! Readers stream in batches so an import never holds more than one batch of a large file;
//! [`read_vectors`] loads a whole matrix for the benchmarks and query files.

pub mod fvecs;
pub mod jsonl;
pub mod npy;
pub mod paradoxlf;

use anyhow::{bail, Result};
use std::path::Path;

/// A dense row-major matrix of `f32` vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Number of vectors.
    pub rows: usize,
    /// Dimension of each vector.
    pub dim: usize,
    /// `rows * dim` values, row after row.
    pub data: Vec<f32>,
}

impl Matrix {
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// The vector file formats, told apart by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorFormat {
    /// NumPy `.npy`.
    Npy,
    /// `.fvecs`.
    Fvecs,
    /// JSON Lines (`.jsonl`, `.ndjson`).
    Jsonl,
}

impl VectorFormat {
    /// Picks the format from `path`'s extension, or explains which ones are known.
    pub fn from_path(path: &Path) -> Result<VectorFormat> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("npy") => Ok(VectorFormat::Npy),
            Some("fvecs") => Ok(VectorFormat::Fvecs),
            Some("jsonl" | "ndjson") => Ok(VectorFormat::Jsonl),
            _ => bail!(
                "cannot tell the format of {}: expected a .npy, .fvecs or .jsonl file",
                path.display()
            ),
        }
    }
}

/// Loads a whole `.npy` or `.fvecs` file as an `f32` matrix.
pub fn read_vectors(path: &Path) -> Result<Matrix> {
    match VectorFormat::from_path(path)? {
        VectorFormat::Npy => npy::read_f32_matrix(path),
        VectorFormat::Fvecs => {
            let mut reader = fvecs::VecsReader::open(path)?;
            let (rows, dim) = (reader.rows(), reader.dim());
            let mut data = Vec::with_capacity(rows * dim);
            reader.read_f32_rows(rows, &mut data)?;
            Ok(Matrix { rows, dim, data })
        }
        VectorFormat::Jsonl => bail!(
            "{}: expected a .npy or .fvecs matrix here, not JSON Lines",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_extension() {
        assert_eq!(
            VectorFormat::from_path(Path::new("a/B.NPY")).unwrap(),
            VectorFormat::Npy
        );
        assert_eq!(
            VectorFormat::from_path(Path::new("x.ndjson")).unwrap(),
            VectorFormat::Jsonl
        );
        let err = VectorFormat::from_path(Path::new("x.csv")).unwrap_err();
        assert!(err.to_string().contains(".npy, .fvecs or .jsonl"));
    }

    #[test]
    fn read_vectors_reads_npy_and_fvecs_alike() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<f32> = (0..6).map(|i| i as f32).collect();
        let npy_path = dir.path().join("a.npy");
        npy::write_f32_matrix(&npy_path, 3, &data).unwrap();
        let fvecs_path = dir.path().join("a.fvecs");
        let mut writer = fvecs::VecsWriter::create(&fvecs_path, 3).unwrap();
        writer.write_f32_rows(&data).unwrap();
        writer.finish().unwrap();
        let a = read_vectors(&npy_path).unwrap();
        assert_eq!(a, read_vectors(&fvecs_path).unwrap());
        assert_eq!(a.row(1), &[3.0, 4.0, 5.0]);
    }
}
