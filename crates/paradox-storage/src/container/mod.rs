//! Containers: immutable files of named, checksummed, 64-byte-aligned sections.
//!
//! ```text
//! offset 0   header   magic [u8; 8] | version u32 | reserved u32 (= 0) | zero padding to 64
//! offset 64  section  bytes | zero padding to the next multiple of 64
//!            section  ...
//! table_off  table    count u32 | count × entry (tag u32, reserved u32, offset u64, len u64,
//!                                                crc32c u32, reserved u32)
//! len - 16   footer   table_off u64 | table_crc u32 | "PDXE"
//! ```
//!
//! `table_crc` covers the 16 header bytes followed by the table (count and entries); each
//! entry's `crc32c` covers its section's bytes; padding must be zero. Together these cover every
//! byte of the file, so a reader detects any single damaged byte. `docs/formats.md` is the
//! normative description.

mod reader;
mod writer;

pub use reader::{file_id, Container};
pub use writer::ContainerWriter;

/// Every section (and the table) starts at a multiple of this many bytes, so a reader may
/// reinterpret a section as `&[f32]`, `&[u64]` or SIMD lanes without copying.
pub const SECTION_ALIGN: u64 = 64;

/// Bytes of `magic`, `version` and `reserved` at the start of the file.
const HEADER_LEN: usize = 16;
/// Bytes of one table entry.
const ENTRY_LEN: usize = 32;
/// Bytes of the footer: `table_offset u64`, `table_crc u32`, `FOOTER_MAGIC`.
const FOOTER_LEN: usize = 16;
/// Last four bytes of every finished container; a file without them was never finished.
const FOOTER_MAGIC: [u8; 4] = *b"PDXE";
/// The smallest finished container: padded header, empty table, footer.
const MIN_FILE_LEN: u64 = SECTION_ALIGN + 4 + FOOTER_LEN as u64;

/// One row of the section table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SectionEntry {
    tag: u32,
    offset: u64,
    len: u64,
    crc: u32,
}

impl SectionEntry {
    fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0u8; ENTRY_LEN];
        out[0..4].copy_from_slice(&self.tag.to_le_bytes());
        // out[4..8]: reserved, zero.
        out[8..16].copy_from_slice(&self.offset.to_le_bytes());
        out[16..24].copy_from_slice(&self.len.to_le_bytes());
        out[24..28].copy_from_slice(&self.crc.to_le_bytes());
        // out[28..32]: reserved, zero.
        out
    }

    /// Decodes an entry; `None` when a reserved field is not zero.
    fn decode(bytes: &[u8; ENTRY_LEN]) -> Option<SectionEntry> {
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let u64_at = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(word)
        };
        if u32_at(4) != 0 || u32_at(28) != 0 {
            return None;
        }
        Some(SectionEntry {
            tag: u32_at(0),
            offset: u64_at(8),
            len: u64_at(16),
            crc: u32_at(24),
        })
    }
}

/// The 16 header bytes for `magic` and `version`.
fn encode_header(magic: [u8; 8], version: u32) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[0..8].copy_from_slice(&magic);
    out[8..12].copy_from_slice(&version.to_le_bytes());
    out
}

/// Rounds `n` up to the next multiple of [`SECTION_ALIGN`].
fn align_up(n: u64) -> u64 {
    n.div_ceil(SECTION_ALIGN) * SECTION_ALIGN
}

#[cfg(test)]
mod tests;
