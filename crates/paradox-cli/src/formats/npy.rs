//! NumPy `.npy` files: our own reader and writer for the few layouts vector data uses.
//!
//! Layout (NEP 1): the magic `\x93NUMPY`, a major and minor version byte, the header length
//! (`u16` LE for version 1, `u32` LE for versions 2 and 3), then a Python dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 128), }` padded with spaces and
//! ending in `\n`, then the raw array data. Version 3 only differs in allowing UTF-8 in the
//! header. We accept little-endian `<f4`, `<f8` and `<i8`, C order, 2-D shapes, and refuse
//! everything else with an error that says what was found and what to do.

use anyhow::{bail, ensure, Context, Result};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::Matrix;

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Element types we read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// `<f4`
    F32,
    /// `<f8`
    F64,
    /// `<i8`
    I64,
}

impl DType {
    fn descr(self) -> &'static str {
        match self {
            DType::F32 => "<f4",
            DType::F64 => "<f8",
            DType::I64 => "<i8",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
        }
    }

    fn parse(descr: &str) -> Result<DType> {
        match descr {
            "<f4" => Ok(DType::F32),
            "<f8" => Ok(DType::F64),
            "<i8" => Ok(DType::I64),
            d if d.starts_with('>') => bail!(
                "big-endian dtype '{d}' is not supported; convert it first, e.g. \
                 `arr.astype('<f4')`"
            ),
            d => bail!(
                "unsupported dtype '{d}': expected float32 ('<f4'), float64 ('<f8') \
                 or int64 ('<i8')"
            ),
        }
    }
}

/// What the header of a `.npy` file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: DType,
    /// Number of rows (first axis).
    pub rows: usize,
    /// Number of columns (second axis).
    pub cols: usize,
    /// Byte offset of the array data from the start of the file.
    pub data_offset: u64,
}

impl NpyHeader {
    /// Bytes of array data the header promises.
    pub fn data_len(&self) -> u64 {
        (self.rows as u64) * (self.cols as u64) * (self.dtype.size() as u64)
    }
}

/// Parses the magic, version and header dict from the start of `reader`.
pub fn read_header(reader: &mut impl Read) -> Result<NpyHeader> {
    let mut prefix = [0u8; 8];
    reader
        .read_exact(&mut prefix)
        .context("file is too short to be a .npy file")?;
    ensure!(
        &prefix[..6] == MAGIC,
        "not a .npy file (missing the \\x93NUMPY magic)"
    );
    let major = prefix[6];
    let (len_bytes, prefix_len) = match major {
        1 => (2, 10u64),
        2 | 3 => (4, 12u64),
        v => bail!("unsupported .npy format version {v}.{}", prefix[7]),
    };
    let mut len_buf = [0u8; 4];
    reader
        .read_exact(&mut len_buf[..len_bytes])
        .context("truncated .npy header length")?;
    let header_len = u32::from_le_bytes(len_buf) as usize;
    ensure!(
        header_len <= 1 << 20,
        "implausible .npy header length {header_len}"
    );
    let mut header = vec![0u8; header_len];
    reader
        .read_exact(&mut header)
        .context("truncated .npy header")?;
    let text = std::str::from_utf8(&header).context(".npy header is not valid UTF-8")?;
    let (dtype, fortran_order, shape) = parse_dict(text)?;
    ensure!(
        !fortran_order,
        "Fortran-ordered arrays are not supported; save a C-ordered copy, e.g. \
         `np.save(path, np.ascontiguousarray(arr))`"
    );
    let (rows, cols) = match shape.as_slice() {
        [rows, cols] => (*rows, *cols),
        other => bail!(
            "expected a 2-D array (rows, dim), got shape {}",
            format_shape(other)
        ),
    };
    Ok(NpyHeader {
        dtype,
        rows,
        cols,
        data_offset: prefix_len + header_len as u64,
    })
}

fn format_shape(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// Parses the header dict: `descr`, `fortran_order` and `shape` are required.
fn parse_dict(text: &str) -> Result<(DType, bool, Vec<usize>)> {
    let mut parser = DictParser {
        text: text.trim_end_matches(['\n', ' ', '\0']).as_bytes(),
        pos: 0,
    };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    parser.expect(b'{')?;
    loop {
        parser.skip_ws();
        if parser.eat(b'}') {
            break;
        }
        let key = parser.string()?;
        parser.expect(b':')?;
        match key.as_str() {
            "descr" => descr = Some(parser.string()?),
            "fortran_order" => fortran = Some(parser.boolean()?),
            "shape" => shape = Some(parser.tuple()?),
            other => bail!("unexpected key '{other}' in .npy header"),
        }
        parser.skip_ws();
        if !parser.eat(b',') {
            parser.expect(b'}')?;
            break;
        }
    }
    let descr = descr.context(".npy header has no 'descr'")?;
    let fortran = fortran.context(".npy header has no 'fortran_order'")?;
    let shape = shape.context(".npy header has no 'shape'")?;
    Ok((DType::parse(&descr)?, fortran, shape))
}

/// A tiny parser for the Python literals `.npy` headers use.
struct DictParser<'a> {
    text: &'a [u8],
    pos: usize,
}

impl DictParser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.text.len() && self.text[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_ws();
        if self.text.get(self.pos) == Some(&byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, byte: u8) -> Result<()> {
        ensure!(
            self.eat(byte),
            "malformed .npy header: expected '{}' at byte {}",
            byte as char,
            self.pos
        );
        Ok(())
    }

    fn string(&mut self) -> Result<String> {
        self.skip_ws();
        let quote = match self.text.get(self.pos) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => bail!(
                "malformed .npy header: expected a string at byte {}",
                self.pos
            ),
        };
        let start = self.pos + 1;
        let len = self.text[start..]
            .iter()
            .position(|&b| b == quote)
            .context("malformed .npy header: unterminated string")?;
        self.pos = start + len + 1;
        Ok(String::from_utf8_lossy(&self.text[start..start + len]).into_owned())
    }

    fn boolean(&mut self) -> Result<bool> {
        self.skip_ws();
        let rest = &self.text[self.pos..];
        if rest.starts_with(b"True") {
            self.pos += 4;
            Ok(true)
        } else if rest.starts_with(b"False") {
            self.pos += 5;
            Ok(false)
        } else {
            bail!("malformed .npy header: expected True or False")
        }
    }

    fn tuple(&mut self) -> Result<Vec<usize>> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            if self.eat(b')') {
                return Ok(dims);
            }
            let start = self.pos;
            while self.pos < self.text.len() && self.text[self.pos].is_ascii_digit() {
                self.pos += 1;
            }
            let digits = std::str::from_utf8(&self.text[start..self.pos]).unwrap_or_default();
            dims.push(digits.parse().with_context(|| {
                format!("malformed .npy header: bad shape entry at byte {start}")
            })?);
            if !self.eat(b',') {
                self.expect(b')')?;
                return Ok(dims);
            }
        }
    }
}

/// Streams rows of a 2-D float `.npy` file as `f32`, converting `<f8` on the fly.
#[derive(Debug)]
pub struct NpyReader {
    path: PathBuf,
    header: NpyHeader,
    reader: BufReader<File>,
    next_row: usize,
    bytes: Vec<u8>,
}

impl NpyReader {
    /// Opens `path`, checks the header, and checks that the file holds all the data it
    /// promises (a truncated file is refused here, not half-way through an import).
    pub fn open(path: &Path) -> Result<NpyReader> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let file_len = file.metadata()?.len();
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let header =
            read_header(&mut reader).with_context(|| format!("reading {}", path.display()))?;
        ensure!(
            matches!(header.dtype, DType::F32 | DType::F64),
            "{}: expected a float32 or float64 array, got int64 ('<i8')",
            path.display()
        );
        check_length(path, &header, file_len)?;
        Ok(NpyReader {
            path: path.to_path_buf(),
            header,
            reader,
            next_row: 0,
            bytes: Vec::new(),
        })
    }

    /// The parsed header.
    pub fn header(&self) -> &NpyHeader {
        &self.header
    }

    /// Appends up to `max_rows` rows to `out`; returns how many were read (0 at the end).
    pub fn read_rows(&mut self, max_rows: usize, out: &mut Vec<f32>) -> Result<usize> {
        let rows = max_rows.min(self.header.rows - self.next_row);
        let elems = rows * self.header.cols;
        self.bytes.resize(elems * self.header.dtype.size(), 0);
        self.reader
            .read_exact(&mut self.bytes)
            .with_context(|| format!("{}: unexpected end of data", self.path.display()))?;
        out.reserve(elems);
        match self.header.dtype {
            DType::F32 => out.extend(
                self.bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ),
            _ => out.extend(self.bytes.chunks_exact(8).map(|b| {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            })),
        }
        self.next_row += rows;
        Ok(rows)
    }
}

fn check_length(path: &Path, header: &NpyHeader, file_len: u64) -> Result<()> {
    let available = file_len.saturating_sub(header.data_offset);
    ensure!(
        available >= header.data_len(),
        "{} is truncated: its header promises {} x {} {} = {} bytes of data, the file holds {}",
        path.display(),
        header.rows,
        header.cols,
        header.dtype.descr(),
        header.data_len(),
        available
    );
    Ok(())
}

/// Reads a whole 2-D float `.npy` file into memory as `f32`.
pub fn read_f32_matrix(path: &Path) -> Result<Matrix> {
    let mut reader = NpyReader::open(path)?;
    let (rows, dim) = (reader.header.rows, reader.header.cols);
    let mut data = Vec::with_capacity(rows * dim);
    reader.read_rows(rows, &mut data)?;
    Ok(Matrix { rows, dim, data })
}

/// Reads a whole 2-D `<i8` `.npy` file: `(rows, cols, data)`.
pub fn read_i64_matrix(path: &Path) -> Result<(usize, usize, Vec<i64>)> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let file_len = file.metadata()?.len();
    let mut reader = BufReader::new(file);
    let header = read_header(&mut reader).with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        header.dtype == DType::I64,
        "{}: expected an int64 array ('<i8'), got '{}'",
        path.display(),
        header.dtype.descr()
    );
    check_length(path, &header, file_len)?;
    let mut bytes = vec![0u8; header.data_len() as usize];
    reader.read_exact(&mut bytes)?;
    let data = bytes
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
        .collect();
    Ok((header.rows, header.cols, data))
}

/// Total size of the header we write: fixed, so the shape can be patched in at the end of a
/// streamed write without moving the data (any two `u64` dimensions fit).
const WRITTEN_HEADER_LEN: usize = 128;

/// Writes a 2-D `.npy` file (format 1.0) row by row; the row count is filled in by
/// [`NpyWriter::finish`], so the caller need not know it in advance.
#[derive(Debug)]
pub struct NpyWriter {
    path: PathBuf,
    writer: BufWriter<File>,
    dtype: DType,
    cols: usize,
    elems_written: usize,
}

impl NpyWriter {
    /// Creates (or truncates) `path` for an array of `cols` columns of `dtype`.
    pub fn create(path: &Path, dtype: DType, cols: usize) -> Result<NpyWriter> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        writer.write_all(&header_bytes(dtype, 0, cols))?;
        Ok(NpyWriter {
            path: path.to_path_buf(),
            writer,
            dtype,
            cols,
            elems_written: 0,
        })
    }

    /// Appends rows of `f32` (the writer must have been created with [`DType::F32`]).
    pub fn write_f32(&mut self, data: &[f32]) -> Result<()> {
        ensure!(self.dtype == DType::F32, "writer expects {:?}", self.dtype);
        for x in data {
            self.writer.write_all(&x.to_le_bytes())?;
        }
        self.elems_written += data.len();
        Ok(())
    }

    /// Appends rows of `i64` (the writer must have been created with [`DType::I64`]).
    pub fn write_i64(&mut self, data: &[i64]) -> Result<()> {
        ensure!(self.dtype == DType::I64, "writer expects {:?}", self.dtype);
        for x in data {
            self.writer.write_all(&x.to_le_bytes())?;
        }
        self.elems_written += data.len();
        Ok(())
    }

    /// Writes the final shape into the header and flushes; returns the number of rows.
    pub fn finish(mut self) -> Result<usize> {
        ensure!(
            self.cols == 0 || self.elems_written.is_multiple_of(self.cols),
            "{}: wrote {} values, not a whole number of {}-wide rows",
            self.path.display(),
            self.elems_written,
            self.cols
        );
        let rows = self.elems_written.checked_div(self.cols).unwrap_or(0);
        self.writer.flush()?;
        let file = self.writer.get_mut();
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header_bytes(self.dtype, rows, self.cols))?;
        file.flush()
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(rows)
    }
}

fn header_bytes(dtype: DType, rows: usize, cols: usize) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}",
        dtype.descr()
    );
    let mut out = Vec::with_capacity(WRITTEN_HEADER_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    let header_len = (WRITTEN_HEADER_LEN - 10) as u16;
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(WRITTEN_HEADER_LEN - 1, b' ');
    out.push(b'\n');
    out
}

/// Writes a whole `rows x cols` `f32` matrix.
#[cfg(test)]
pub fn write_f32_matrix(path: &Path, cols: usize, data: &[f32]) -> Result<()> {
    let mut writer = NpyWriter::create(path, DType::F32, cols)?;
    writer.write_f32(data)?;
    writer.finish().map(drop)
}

/// Writes a whole `rows x cols` `i64` matrix.
#[cfg(test)]
pub fn write_i64_matrix(path: &Path, cols: usize, data: &[i64]) -> Result<()> {
    let mut writer = NpyWriter::create(path, DType::I64, cols)?;
    writer.write_i64(data)?;
    writer.finish().map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_npy(major: u8, dict: &str, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[major, 0]);
        if major == 1 {
            out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn f32_round_trip_keeps_shape_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 1.0).collect();
        write_f32_matrix(&path, 4, &data).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), WRITTEN_HEADER_LEN + 48);
        let m = read_f32_matrix(&path).unwrap();
        assert_eq!((m.rows, m.dim), (3, 4));
        assert_eq!(m.data, data);
    }

    #[test]
    fn i64_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids.npy");
        write_i64_matrix(&path, 2, &[1, -2, 3, i64::MAX]).unwrap();
        assert_eq!(
            read_i64_matrix(&path).unwrap(),
            (2, 2, vec![1, -2, 3, i64::MAX])
        );
    }

    #[test]
    fn reads_f64_and_version_2_and_3_headers() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = [1.5f64, -2.0, 3.25, 4.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        for major in [1, 2, 3] {
            let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }   \n";
            let path = write(&dir, "f8.npy", &raw_npy(major, dict, &data));
            let m = read_f32_matrix(&path).unwrap();
            assert_eq!((m.rows, m.dim), (2, 2));
            assert_eq!(m.data, vec![1.5, -2.0, 3.25, 4.0]);
        }
    }

    #[test]
    fn streams_rows_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.npy");
        let data: Vec<f32> = (0..30).map(|i| i as f32).collect();
        write_f32_matrix(&path, 3, &data).unwrap();
        let mut reader = NpyReader::open(&path).unwrap();
        let mut out = Vec::new();
        let mut batches = Vec::new();
        loop {
            let n = reader.read_rows(4, &mut out).unwrap();
            if n == 0 {
                break;
            }
            batches.push(n);
        }
        assert_eq!(batches, vec![4, 4, 2]);
        assert_eq!(out, data);
    }

    #[test]
    fn rejects_malformed_headers() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2) ",
                "expected '}'",
            ),
            ("{'descr': '<f4', 'shape': (2, 2), }", "no 'fortran_order'"),
            (
                "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }",
                "True or False",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }",
                "2-D array",
            ),
            (
                "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
                "Fortran",
            ),
        ];
        for (dict, expected) in cases {
            let path = write(&dir, "bad.npy", &raw_npy(1, dict, &[0; 16]));
            let err = format!("{:#}", NpyReader::open(&path).unwrap_err());
            assert!(err.contains(expected), "{dict}: {err}");
        }
        let path = write(&dir, "magic.npy", b"NOTNUMPY\x00\x00");
        let err = format!("{:#}", NpyReader::open(&path).unwrap_err());
        assert!(err.contains("magic"), "{err}");
    }

    #[test]
    fn rejects_wrong_dtypes_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("<f2", "unsupported dtype '<f2'"),
            (">f4", "big-endian"),
            ("<i8", "expected a float32 or float64 array"),
        ];
        for (descr, expected) in cases {
            let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (1, 2), }}");
            let path = write(&dir, "dt.npy", &raw_npy(1, &dict, &[0; 16]));
            let err = format!("{:#}", NpyReader::open(&path).unwrap_err());
            assert!(err.contains(expected), "{descr}: {err}");
        }
        let path = dir.path().join("f.npy");
        write_f32_matrix(&path, 1, &[1.0]).unwrap();
        let err = format!("{:#}", read_i64_matrix(&path).unwrap_err());
        assert!(err.contains("expected an int64 array"), "{err}");
    }

    #[test]
    fn rejects_truncated_data_naming_both_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.npy");
        write_f32_matrix(&path, 4, &[0.0; 8]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = format!("{:#}", NpyReader::open(&path).unwrap_err());
        assert!(err.contains("truncated") && err.contains("32 bytes") && err.contains("29"));
    }
}
