//! The file container of learned parameters (adapters, normalisers): a JSON header and
//! named `f32` tensors, checksummed.
//!
//! [`write_tensor_file`] / [`read_tensor_file`] store a JSON header and named `f32` tensors:
//!
//! ```text
//! offset 0        magic        8 bytes, names the content ("PDXADAPT", "PDXNORML")
//! offset 8        version      u32 LE (currently 1)
//! offset 12       header_len   u32 LE
//! offset 16       header       header_len bytes of UTF-8 JSON, including
//!                              "tensors": [{"name": .., "len": ..}, ..] in payload order
//! then            payload      every tensor's values as f32 LE, back to back
//! last 4 bytes    checksum     CRC-32C of every byte before it
//! ```
//!
//! Any mismatch (checksum, magic, version, lengths, non-finite values) is
//! [`LifecycleError::Corrupt`]. Files are written to `<path>.partial`, synced, then renamed,
//! so a crash leaves either the old file or the new one, never half of one.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{LifecycleError, Result};

/// Version written into every parameter file.
pub const TENSOR_FILE_VERSION: u32 = 1;

/// One tensor's entry in a parameter file header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorEntry {
    /// The tensor's name ("weight", "bias"...).
    pub name: String,
    /// Number of `f32` values.
    pub len: usize,
}

/// Writes `meta` (any JSON object; a `tensors` key is added) and `tensors` to `path` in the
/// layout of the module docs, atomically (via `<path>.partial` and a rename).
pub fn write_tensor_file(
    path: &Path,
    magic: &[u8; 8],
    mut meta: serde_json::Value,
    tensors: &[(&str, &[f32])],
) -> Result<()> {
    let entries: Vec<TensorEntry> = tensors
        .iter()
        .map(|(name, values)| TensorEntry {
            name: (*name).to_string(),
            len: values.len(),
        })
        .collect();
    let object = meta.as_object_mut().ok_or_else(|| {
        LifecycleError::InvalidArgument("parameter file header must be a JSON object".into())
    })?;
    object.insert(
        "tensors".into(),
        serde_json::to_value(&entries).map_err(|e| LifecycleError::Corrupt(e.to_string()))?,
    );
    let header = serde_json::to_vec(&meta).map_err(|e| LifecycleError::Corrupt(e.to_string()))?;
    let header_len = u32::try_from(header.len())
        .map_err(|_| LifecycleError::InvalidArgument("parameter header over 4 GiB".into()))?;
    let payload: usize = tensors.iter().map(|(_, v)| v.len() * 4).sum();
    let mut bytes = Vec::with_capacity(16 + header.len() + payload + 4);
    bytes.extend_from_slice(magic);
    bytes.extend_from_slice(&TENSOR_FILE_VERSION.to_le_bytes());
    bytes.extend_from_slice(&header_len.to_le_bytes());
    bytes.extend_from_slice(&header);
    for (_, values) in tensors {
        for v in values.iter() {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    let checksum = crc32c(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());

    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        Ok(())
    };
    write().map_err(|e| LifecycleError::io(&partial, e))?;
    std::fs::rename(&partial, path).map_err(|e| LifecycleError::io(path, e))
}

/// A parameter file as read back: its JSON header and its tensors, in file order.
#[derive(Debug, Clone)]
pub struct TensorFile {
    /// The header object (including `tensors`).
    pub meta: serde_json::Value,
    /// `(name, values)` in payload order.
    pub tensors: Vec<(String, Vec<f32>)>,
}

impl TensorFile {
    /// Removes and returns the tensor `name`, checking it has `len` values.
    pub fn take(&mut self, name: &str, len: usize) -> Result<Vec<f32>> {
        let at = self
            .tensors
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| LifecycleError::Corrupt(format!("tensor `{name}` is missing")))?;
        let (_, values) = self.tensors.swap_remove(at);
        if values.len() != len {
            return Err(LifecycleError::Corrupt(format!(
                "tensor `{name}` has {} values, expected {len}",
                values.len()
            )));
        }
        Ok(values)
    }
}

/// Reads a file written by [`write_tensor_file`] with the same `magic`, verifying its
/// checksum, version and lengths, and that every value is finite.
pub fn read_tensor_file(path: &Path, magic: &[u8; 8]) -> Result<TensorFile> {
    let bytes = std::fs::read(path).map_err(|e| LifecycleError::io(path, e))?;
    let corrupt = |why: String| LifecycleError::Corrupt(format!("{}: {why}", path.display()));
    if bytes.len() < 20 {
        return Err(corrupt(format!("{} bytes is too short", bytes.len())));
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes(tail.try_into().expect("4 bytes"));
    let computed = crc32c(body);
    if stored != computed {
        return Err(corrupt(format!(
            "checksum mismatch (stored {stored:08x}, computed {computed:08x})"
        )));
    }
    if &body[..8] != magic {
        return Err(corrupt(format!(
            "magic {:?} is not {:?}",
            String::from_utf8_lossy(&body[..8]),
            String::from_utf8_lossy(magic)
        )));
    }
    let version = u32::from_le_bytes(body[8..12].try_into().expect("4 bytes"));
    if version != TENSOR_FILE_VERSION {
        return Err(corrupt(format!(
            "version {version} is not supported (this build reads {TENSOR_FILE_VERSION})"
        )));
    }
    let header_len = u32::from_le_bytes(body[12..16].try_into().expect("4 bytes")) as usize;
    let header = body
        .get(16..16 + header_len)
        .ok_or_else(|| corrupt(format!("header of {header_len} bytes overruns the file")))?;
    let meta: serde_json::Value =
        serde_json::from_slice(header).map_err(|e| corrupt(format!("header: {e}")))?;
    let entries: Vec<TensorEntry> = meta
        .get("tensors")
        .cloned()
        .ok_or_else(|| corrupt("header has no `tensors`".into()))
        .and_then(|t| serde_json::from_value(t).map_err(|e| corrupt(format!("tensors: {e}"))))?;
    let mut payload = &body[16 + header_len..];
    let expected: usize = entries.iter().map(|e| e.len.saturating_mul(4)).sum();
    if expected != payload.len() {
        return Err(corrupt(format!(
            "payload is {} bytes, header describes {expected}",
            payload.len()
        )));
    }
    let mut tensors = Vec::with_capacity(entries.len());
    for entry in entries {
        let (raw, rest) = payload.split_at(entry.len * 4);
        payload = rest;
        let values: Vec<f32> = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(corrupt(format!(
                "tensor `{}` holds a non-finite value",
                entry.name
            )));
        }
        tensors.push((entry.name, values));
    }
    Ok(TensorFile { meta, tensors })
}

/// CRC-32C (Castagnoli) lookup table, built at compile time.
const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0x82F6_3B78 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32C of `bytes` (the checksum of parameter files).
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c = CRC32C_TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }
}
