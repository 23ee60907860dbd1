//! Writing a container: sections are streamed to disk as they come, the table goes last.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{
    align_up, encode_header, SectionEntry, ENTRY_LEN, FOOTER_LEN, FOOTER_MAGIC, HEADER_LEN,
    SECTION_ALIGN,
};
use crate::atomic::{rename_durably, temp_path_for};
use crate::error::{io_at, Result, StorageError};

/// Buffer between the writer and the file; large sections bypass it.
const WRITE_BUFFER: usize = 1 << 20;

/// Writes a container file section by section.
///
/// Sections are written to disk as they are added, so a container larger than memory can be
/// built. Nothing is valid until [`finish`](ContainerWriter::finish) has written the table and
/// the footer and fsynced the file; a reader refuses an unfinished file.
///
/// ```
/// use paradox_storage::{Container, ContainerWriter};
/// # let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("seg-1.pdx");
/// const MAGIC: [u8; 8] = *b"PDXSEG\0\0";
/// let ids = u32::from_le_bytes(*b"IDS ");
///
/// let mut writer = ContainerWriter::create_temp(&path, MAGIC, 1)?;
/// writer.add_section(ids, &[1, 2, 3])?;
/// writer.finish()?; // renamed into place only now
///
/// let container = Container::open(&path, MAGIC, 1)?;
/// assert_eq!(container.section(ids)?, &[1, 2, 3]);
/// # Ok::<(), paradox_storage::StorageError>(())
/// ```
#[derive(Debug)]
pub struct ContainerWriter {
    /// Where bytes are being written now.
    path: PathBuf,
    /// `Some(final path)` when writing to a temporary file that `finish` renames.
    final_path: Option<PathBuf>,
    file: BufWriter<File>,
    /// The header bytes, kept because the table checksum covers them.
    header: [u8; HEADER_LEN],
    /// Bytes written so far (the offset of the next byte).
    position: u64,
    sections: Vec<SectionEntry>,
    /// The section being streamed, if any: its tag, start offset and running checksum.
    open_section: Option<(u32, u64, u32)>,
    /// Set after any failed write: the file content is then unknown, so every later call fails.
    poisoned: bool,
    finished: bool,
}

impl ContainerWriter {
    /// Creates (or truncates) `path` and writes the header.
    ///
    /// The file is written in place: until [`finish`](Self::finish) returns, `path` holds an
    /// unfinished container that readers refuse. Use [`create_temp`](Self::create_temp) when
    /// `path` must never be observed half written.
    pub fn create(path: &Path, magic: [u8; 8], version: u32) -> Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(io_at(path))?;
        Self::start(path.to_path_buf(), None, file, magic, version)
    }

    /// Writes to a temporary file next to `final_path`; [`finish`](Self::finish) renames it to
    /// `final_path` and fsyncs the directory, so `final_path` appears complete or not at all.
    /// Dropping the writer without finishing deletes the temporary file.
    pub fn create_temp(final_path: &Path, magic: [u8; 8], version: u32) -> Result<Self> {
        let temp = temp_path_for(final_path)?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(io_at(&temp))?;
        Self::start(temp, Some(final_path.to_path_buf()), file, magic, version)
    }

    fn start(
        path: PathBuf,
        final_path: Option<PathBuf>,
        file: File,
        magic: [u8; 8],
        version: u32,
    ) -> Result<Self> {
        let header = encode_header(magic, version);
        let mut writer = ContainerWriter {
            path,
            final_path,
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            header,
            position: 0,
            sections: Vec::new(),
            open_section: None,
            poisoned: false,
            finished: false,
        };
        writer.write_raw(&header)?;
        writer.pad_to_alignment()?;
        Ok(writer)
    }

    /// Adds a whole section at once. Equivalent to `begin_section`, `write_section_bytes`,
    /// `end_section`.
    pub fn add_section(&mut self, tag: u32, bytes: &[u8]) -> Result<()> {
        self.begin_section(tag)?;
        self.write_section_bytes(bytes)?;
        self.end_section()
    }

    /// Starts a section that will be filled by [`write_section_bytes`](Self::write_section_bytes).
    /// Tags must be unique within a container.
    pub fn begin_section(&mut self, tag: u32) -> Result<()> {
        self.check_usable()?;
        if let Some((open_tag, _, _)) = self.open_section {
            return Err(self.misuse(format!(
                "begin_section({}) called while section {} is still open; call end_section first",
                crate::error::show_tag(tag),
                crate::error::show_tag(open_tag)
            )));
        }
        if self.sections.iter().any(|s| s.tag == tag) {
            return Err(StorageError::DuplicateSection {
                path: self.path.clone(),
                tag,
            });
        }
        self.open_section = Some((tag, self.position, 0));
        Ok(())
    }

    /// Appends bytes to the open section; its checksum is updated incrementally.
    pub fn write_section_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.check_usable()?;
        let Some((_, _, crc)) = self.open_section.as_mut() else {
            return Err(self.misuse(
                "write_section_bytes called with no open section; call begin_section first".into(),
            ));
        };
        *crc = crc32c::crc32c_append(*crc, bytes);
        self.write_raw(bytes)
    }

    /// Closes the open section and pads the file to the next 64-byte boundary.
    pub fn end_section(&mut self) -> Result<()> {
        self.check_usable()?;
        let Some((tag, offset, crc)) = self.open_section.take() else {
            return Err(self.misuse(
                "end_section called with no open section; call begin_section first".into(),
            ));
        };
        self.sections.push(SectionEntry {
            tag,
            offset,
            len: self.position - offset,
            crc,
        });
        self.pad_to_alignment()
    }

    /// Writes the section table and footer, fsyncs the file and (for
    /// [`create_temp`](Self::create_temp)) renames it into place and fsyncs the directory.
    /// Returns the file length.
    pub fn finish(mut self) -> Result<u64> {
        self.check_usable()?;
        if let Some((tag, _, _)) = self.open_section {
            return Err(self.misuse(format!(
                "finish called while section {} is still open; call end_section first",
                crate::error::show_tag(tag)
            )));
        }
        let table_offset = self.position;
        debug_assert_eq!(table_offset % SECTION_ALIGN, 0);
        let count = u32::try_from(self.sections.len())
            .map_err(|_| self.misuse("more than 2^32 - 1 sections".into()))?;

        let mut table = Vec::with_capacity(4 + self.sections.len() * ENTRY_LEN);
        table.extend_from_slice(&count.to_le_bytes());
        for entry in &self.sections {
            table.extend_from_slice(&entry.encode());
        }
        // The table checksum also covers the header so that a damaged version field is caught.
        let table_crc = crc32c::crc32c_append(crc32c::crc32c(&self.header), &table);
        let mut footer = [0u8; FOOTER_LEN];
        footer[0..8].copy_from_slice(&table_offset.to_le_bytes());
        footer[8..12].copy_from_slice(&table_crc.to_le_bytes());
        footer[12..16].copy_from_slice(&FOOTER_MAGIC);
        self.write_raw(&table)?;
        self.write_raw(&footer)?;

        let path = self.path.clone();
        self.file.flush().map_err(io_at(&path))?;
        self.file.get_ref().sync_all().map_err(io_at(&path))?;
        if let Some(final_path) = self.final_path.clone() {
            rename_durably(&path, &final_path)?;
        }
        self.finished = true;
        Ok(self.position)
    }

    fn pad_to_alignment(&mut self) -> Result<()> {
        const ZEROS: [u8; SECTION_ALIGN as usize] = [0; SECTION_ALIGN as usize];
        let padding = (align_up(self.position) - self.position) as usize;
        self.write_raw(&ZEROS[..padding])
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        if let Err(source) = self.file.write_all(bytes) {
            self.poisoned = true;
            return Err(StorageError::Io {
                path: self.path.clone(),
                source,
            });
        }
        self.position += bytes.len() as u64;
        Ok(())
    }

    fn check_usable(&self) -> Result<()> {
        if self.poisoned {
            return Err(self.misuse(
                "an earlier write to this container failed; start a new container".into(),
            ));
        }
        Ok(())
    }

    fn misuse(&self, reason: String) -> StorageError {
        StorageError::InvalidState {
            path: self.path.clone(),
            reason,
        }
    }
}

impl Drop for ContainerWriter {
    fn drop(&mut self) {
        if !self.finished && self.final_path.is_some() {
            // An abandoned temporary file is garbage; errors here have no one to go to.
            let _ = fs::remove_file(&self.path);
        }
    }
}
