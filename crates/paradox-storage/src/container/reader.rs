//! Reading a container: footer, then table, then every section, all checked before use.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::{
    align_up, SectionEntry, ENTRY_LEN, FOOTER_LEN, FOOTER_MAGIC, HEADER_LEN, MIN_FILE_LEN,
    SECTION_ALIGN,
};
use crate::error::{corrupt, io_at, show_tag, Result, StorageError};

/// A finished container, memory-mapped read-only and fully verified.
///
/// [`open`](Container::open) checks the magic, the version, the table checksum, the layout and
/// the checksum of every section before it returns, so every later [`section`](Container::section)
/// call hands out bytes known to be the ones that were written. Opening therefore reads the
/// whole file once.
#[derive(Debug)]
pub struct Container {
    path: PathBuf,
    version: u32,
    map: Mmap,
    /// Identity of the file mapped (device and inode on Unix), see [`Container::file_id`].
    file_id: Option<(u64, u64)>,
    /// Table entries in file order (which is also the order they were written in).
    sections: Vec<SectionEntry>,
}

impl Container {
    /// Opens and verifies the container at `path`.
    ///
    /// Fails with [`StorageError::BadMagic`] if the file is not of the kind `magic` names,
    /// [`StorageError::UnsupportedVersion`] if its version is above `max_version`, and
    /// [`StorageError::Corrupt`] (with the offset of the damaged structure) if any byte differs
    /// from what the writer wrote, including when the file is truncated or was never finished.
    pub fn open(path: &Path, magic: [u8; 8], max_version: u32) -> Result<Container> {
        let mut file = File::open(path).map_err(io_at(path))?;
        let file_len = file.metadata().map_err(io_at(path))?.len();

        // Read the header with plain I/O first: a short or foreign file gets its precise error
        // here, and an empty file is never mapped (mapping zero bytes is an error on Linux).
        let mut header = [0u8; HEADER_LEN];
        let header_read = read_prefix(&mut file, &mut header).map_err(io_at(path))?;
        let magic_seen = &header[..header_read.min(8)];
        if magic_seen != &magic[..magic_seen.len()] {
            return Err(StorageError::BadMagic {
                path: path.to_path_buf(),
                expected: magic,
                found: magic_seen.to_vec(),
            });
        }
        if file_len < MIN_FILE_LEN {
            return Err(corrupt(
                path,
                file_len,
                format!(
                    "file is {file_len} bytes, shorter than the smallest finished container \
                     ({MIN_FILE_LEN} bytes): it was truncated or never finished"
                ),
            ));
        }
        let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        if version > max_version {
            return Err(StorageError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: max_version,
            });
        }
        if header[12..16] != [0; 4] {
            return Err(corrupt(path, 12, "reserved header field is not zero"));
        }

        // SAFETY: the mapping is read-only and private to this process. Containers are
        // immutable once finished: this crate never opens a finished container for writing, and
        // the engine replaces containers only by renaming new files over old names and deletes
        // them by unlinking, neither of which changes the bytes of an inode that is mapped.
        // Modification by another program is outside the contract of a Paradox data directory.
        let map = unsafe { Mmap::map(&file) }.map_err(io_at(path))?;
        if map.len() as u64 != file_len {
            return Err(corrupt(
                path,
                map.len() as u64,
                format!(
                    "file changed size while being opened ({file_len} then {} bytes)",
                    map.len()
                ),
            ));
        }
        let sections = verify_layout(path, &map)?;
        Ok(Container {
            path: path.to_path_buf(),
            version,
            map,
            file_id: file_id(&file),
            sections,
        })
    }

    /// The format version recorded in the file.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The bytes of the section tagged `tag`.
    ///
    /// The slice starts at a 64-byte-aligned address (mappings are page aligned and sections
    /// start at multiples of 64 in the file), so it may be reinterpreted as `&[f32]` and the
    /// like without copying.
    pub fn section(&self, tag: u32) -> Result<&[u8]> {
        let entry = self.sections.iter().find(|s| s.tag == tag).ok_or_else(|| {
            StorageError::MissingSection {
                path: self.path.clone(),
                tag,
            }
        })?;
        // Bounds were verified in `open`; `get` keeps even a logic error from panicking.
        usize::try_from(entry.offset)
            .ok()
            .zip(usize::try_from(entry.offset + entry.len).ok())
            .and_then(|(start, end)| self.map.get(start..end))
            .ok_or_else(|| corrupt(&self.path, entry.offset, "section lies outside the file"))
    }

    /// Identity of the file that was opened and mapped: device and inode on Unix (`None`
    /// elsewhere). A caller that opens the path again (to read part of it with plain I/O)
    /// compares it with [`file_id`] of its handle, so a file renamed over the path in
    /// between is noticed rather than read at the old file's offsets.
    pub fn file_id(&self) -> Option<(u64, u64)> {
        self.file_id
    }

    /// Tells the OS how the section tagged `tag` will be read: `random` (a row here and
    /// there: a page fault reads only its page, instead of up to the disk's read-ahead
    /// around it, 8 MiB on some disks) or back to the default (sequential read-ahead).
    /// A hint: unknown sections and platforms without `madvise` are ignored.
    pub fn advise_random_reads(&self, tag: u32, random: bool) {
        #[cfg(unix)]
        if let Some(entry) = self.sections.iter().find(|s| s.tag == tag) {
            let advice = if random {
                memmap2::Advice::Random
            } else {
                memmap2::Advice::Normal
            };
            if let (Ok(offset), Ok(len)) =
                (usize::try_from(entry.offset), usize::try_from(entry.len))
            {
                // Bounds were verified in `open`; an error only means the hint was not taken.
                let _ = self.map.advise_range(advice, offset, len);
            }
        }
        #[cfg(not(unix))]
        let _ = (tag, random);
    }

    /// Where the section tagged `tag` starts in the file (for reading part of it with
    /// plain I/O instead of through the mapping).
    pub fn section_offset(&self, tag: u32) -> Result<u64> {
        self.sections
            .iter()
            .find(|s| s.tag == tag)
            .map(|s| s.offset)
            .ok_or_else(|| StorageError::MissingSection {
                path: self.path.clone(),
                tag,
            })
    }

    /// Whether a section tagged `tag` exists.
    pub fn has_section(&self, tag: u32) -> bool {
        self.sections.iter().any(|s| s.tag == tag)
    }

    /// All section tags, in the order the sections were written.
    pub fn tags(&self) -> Vec<u32> {
        self.sections.iter().map(|s| s.tag).collect()
    }

    /// The path the container was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The length of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.map.len() as u64
    }
}

/// Reads as many bytes as are available into `buf`; returns how many were read.
fn read_prefix(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Checks footer, table and sections of a mapped file at least [`MIN_FILE_LEN`] bytes long
/// whose magic, version and reserved header field were already checked.
fn verify_layout(path: &Path, bytes: &[u8]) -> Result<Vec<SectionEntry>> {
    let len = bytes.len() as u64;
    let u32_at =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);

    // Footer.
    let footer_at = bytes.len() - FOOTER_LEN;
    let footer = &bytes[footer_at..];
    if footer[12..16] != FOOTER_MAGIC {
        return Err(corrupt(
            path,
            footer_at as u64 + 12,
            "footer magic \"PDXE\" not found at the end of the file: it was truncated or never \
             finished",
        ));
    }
    let mut word = [0u8; 8];
    word.copy_from_slice(&footer[0..8]);
    let table_offset = u64::from_le_bytes(word);
    let table_crc = u32::from_le_bytes([footer[8], footer[9], footer[10], footer[11]]);
    let table_fits = table_offset >= SECTION_ALIGN
        && table_offset % SECTION_ALIGN == 0
        && table_offset <= footer_at as u64 - 4;
    if !table_fits {
        return Err(corrupt(
            path,
            footer_at as u64,
            format!("footer points to a section table at offset {table_offset}, which is not a 64-byte-aligned offset inside the file"),
        ));
    }

    // Table: exactly `count` entries between `table_offset` and the footer.
    let table_at = table_offset as usize;
    let count = u32_at(table_at) as u64;
    let table_end = table_offset + 4 + count * ENTRY_LEN as u64;
    if table_end != footer_at as u64 {
        return Err(corrupt(
            path,
            table_offset,
            format!(
                "section table claims {count} entries, which would end at offset {table_end}, \
                 but the footer starts at {footer_at}"
            ),
        ));
    }
    let table = &bytes[table_at..footer_at];
    let computed = crc32c::crc32c_append(crc32c::crc32c(&bytes[..HEADER_LEN]), table);
    if computed != table_crc {
        return Err(corrupt(
            path,
            table_offset,
            format!(
                "checksum of header and section table is {computed:#010x}, footer says \
                 {table_crc:#010x}"
            ),
        ));
    }

    // Entries: sections follow each other in file order, each at the first 64-byte boundary
    // after the previous one, and the table follows the last. Being this strict makes every
    // padding byte's position known, so padding can be checked too.
    let mut sections = Vec::with_capacity(count as usize);
    let mut expected_offset = SECTION_ALIGN;
    check_zero_padding(path, bytes, HEADER_LEN as u64, SECTION_ALIGN)?;
    for (index, raw) in table[4..].chunks_exact(ENTRY_LEN).enumerate() {
        let entry_at = table_offset + 4 + (index * ENTRY_LEN) as u64;
        let mut entry_bytes = [0u8; ENTRY_LEN];
        entry_bytes.copy_from_slice(raw);
        let entry = SectionEntry::decode(&entry_bytes).ok_or_else(|| {
            corrupt(
                path,
                entry_at,
                "reserved field of a table entry is not zero",
            )
        })?;
        let end = entry
            .offset
            .checked_add(entry.len)
            .filter(|&end| end <= table_offset);
        let Some(end) = end.filter(|_| entry.offset == expected_offset) else {
            return Err(corrupt(
                path,
                entry_at,
                format!(
                    "section {} claims bytes {}..{}+{}, but the next section must start at \
                     offset {expected_offset} and end before the table at {table_offset}",
                    show_tag(entry.tag),
                    entry.offset,
                    entry.offset,
                    entry.len
                ),
            ));
        };
        if sections.iter().any(|s: &SectionEntry| s.tag == entry.tag) {
            return Err(corrupt(
                path,
                entry_at,
                format!("section {} appears twice in the table", show_tag(entry.tag)),
            ));
        }
        let data = &bytes[entry.offset as usize..end as usize];
        let computed = crc32c::crc32c(data);
        if computed != entry.crc {
            return Err(corrupt(
                path,
                entry.offset,
                format!(
                    "section {} ({} bytes) has checksum {computed:#010x}, table says {:#010x}",
                    show_tag(entry.tag),
                    entry.len,
                    entry.crc
                ),
            ));
        }
        expected_offset = align_up(end);
        check_zero_padding(path, bytes, end, expected_offset)?;
        sections.push(entry);
    }
    if expected_offset != table_offset {
        return Err(corrupt(
            path,
            table_offset,
            format!(
                "section table starts at offset {table_offset}, but the sections end at \
                 {expected_offset}"
            ),
        ));
    }
    debug_assert!(table_end + FOOTER_LEN as u64 == len);
    Ok(sections)
}

/// Padding is written as zeros; anything else there is damage.
fn check_zero_padding(path: &Path, bytes: &[u8], start: u64, end: u64) -> Result<()> {
    let padding = &bytes[start as usize..end as usize];
    match padding.iter().position(|&b| b != 0) {
        None => Ok(()),
        Some(at) => Err(corrupt(path, start + at as u64, "padding byte is not zero")),
    }
}

/// Device and inode of an open file (Unix; `None` elsewhere or if unknown).
pub fn file_id(file: &File) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        file.metadata().ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        None
    }
}
