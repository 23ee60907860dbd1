//! Unit tests of the container writer and reader, including damage to every byte.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::StorageError;

const MAGIC: [u8; 8] = *b"PDXTEST\0";
const TAG_A: u32 = u32::from_le_bytes(*b"AAAA");
const TAG_EMPTY: u32 = u32::from_le_bytes(*b"NONE");
const TAG_B: u32 = 0xFFFF_FFFF;

/// Writes a container with an empty section between two odd-sized ones; returns its path.
fn sample(dir: &Path) -> PathBuf {
    let path = dir.join("sample.pdx");
    let mut writer = ContainerWriter::create(&path, MAGIC, 3).unwrap();
    writer.add_section(TAG_A, &[7u8; 100]).unwrap();
    writer.add_section(TAG_EMPTY, &[]).unwrap();
    writer.add_section(TAG_B, b"the last section").unwrap();
    let len = writer.finish().unwrap();
    assert_eq!(len, fs::metadata(&path).unwrap().len());
    path
}

#[test]
fn round_trip_keeps_bytes_order_and_alignment() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(dir.path());
    let container = Container::open(&path, MAGIC, 3).unwrap();
    assert_eq!(container.version(), 3);
    assert_eq!(container.tags(), vec![TAG_A, TAG_EMPTY, TAG_B]);
    assert_eq!(container.section(TAG_A).unwrap(), &[7u8; 100]);
    assert_eq!(container.section(TAG_EMPTY).unwrap(), b"");
    assert_eq!(container.section(TAG_B).unwrap(), b"the last section");
    for tag in container.tags() {
        let ptr = container.section(tag).unwrap().as_ptr() as usize;
        assert_eq!(
            ptr % SECTION_ALIGN as usize,
            0,
            "section {tag:#x} is not 64-byte aligned"
        );
    }
    assert!(container.has_section(TAG_B));
    assert!(!container.has_section(42));
    assert_eq!(container.path(), path);
    assert_eq!(container.file_len(), fs::metadata(&path).unwrap().len());
    match container.section(42) {
        Err(StorageError::MissingSection { path: p, tag: 42 }) => assert_eq!(p, path),
        other => panic!("expected MissingSection, got {other:?}"),
    }
}

#[test]
fn section_offsets_file_identity_and_read_advice() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(dir.path());
    let container = Container::open(&path, MAGIC, 3).unwrap();
    // The offset names where the section's bytes are in the file.
    let file_bytes = fs::read(&path).unwrap();
    let at = container.section_offset(TAG_B).unwrap() as usize;
    assert_eq!(&file_bytes[at..at + 16], b"the last section");
    assert!(matches!(
        container.section_offset(42),
        Err(StorageError::MissingSection { tag: 42, .. })
    ));
    // The identity is the opened file's, and changes when another file takes the name.
    let same = fs::File::open(&path).unwrap();
    assert_eq!(file_id(&same), container.file_id());
    #[cfg(unix)]
    {
        assert!(container.file_id().is_some());
        let other = dir.path().join("other.pdx");
        fs::copy(&path, &other).unwrap();
        fs::rename(&other, &path).unwrap();
        let replaced = fs::File::open(&path).unwrap();
        assert_ne!(file_id(&replaced), container.file_id());
    }
    // Read advice is a hint: the bytes stay the same either way, unknown tags are ignored.
    container.advise_random_reads(TAG_A, true);
    assert_eq!(container.section(TAG_A).unwrap(), &[7u8; 100]);
    container.advise_random_reads(TAG_A, false);
    container.advise_random_reads(42, true);
    assert_eq!(container.section(TAG_B).unwrap(), b"the last section");
}

#[test]
fn a_container_without_sections_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.pdx");
    let len = ContainerWriter::create(&path, MAGIC, 1)
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(len, MIN_FILE_LEN);
    let container = Container::open(&path, MAGIC, 1).unwrap();
    assert!(container.tags().is_empty());
}

#[test]
fn layout_is_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("golden.pdx");
    let mut writer = ContainerWriter::create(&path, MAGIC, 2).unwrap();
    writer.add_section(0x0A0B_0C0D, b"xyz").unwrap();
    writer.finish().unwrap();
    let bytes = fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 64 + 64 + 4 + 32 + 16);
    assert_eq!(&bytes[0..8], &MAGIC);
    assert_eq!(&bytes[8..16], &[2, 0, 0, 0, 0, 0, 0, 0]);
    assert!(bytes[16..64].iter().all(|&b| b == 0));
    assert_eq!(&bytes[64..67], b"xyz");
    assert!(bytes[67..128].iter().all(|&b| b == 0));
    let table = &bytes[128..164];
    assert_eq!(&table[0..4], &1u32.to_le_bytes());
    assert_eq!(&table[4..8], &0x0A0B_0C0Du32.to_le_bytes());
    assert_eq!(&table[8..12], &[0; 4]);
    assert_eq!(&table[12..20], &64u64.to_le_bytes());
    assert_eq!(&table[20..28], &3u64.to_le_bytes());
    assert_eq!(&table[28..32], &crc32c::crc32c(b"xyz").to_le_bytes());
    assert_eq!(&table[32..36], &[0; 4]);
    let footer = &bytes[164..];
    assert_eq!(&footer[0..8], &128u64.to_le_bytes());
    let table_crc = crc32c::crc32c_append(crc32c::crc32c(&bytes[0..16]), table);
    assert_eq!(&footer[8..12], &table_crc.to_le_bytes());
    assert_eq!(&footer[12..16], b"PDXE");
}

#[test]
fn streamed_sections_write_the_same_bytes_as_whole_sections() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let whole = dir.path().join("whole.pdx");
    let mut writer = ContainerWriter::create(&whole, MAGIC, 1).unwrap();
    writer.add_section(1, &data).unwrap();
    writer.finish().unwrap();
    let streamed = dir.path().join("streamed.pdx");
    let mut writer = ContainerWriter::create(&streamed, MAGIC, 1).unwrap();
    writer.begin_section(1).unwrap();
    for chunk in data.chunks(777) {
        writer.write_section_bytes(chunk).unwrap();
    }
    writer.write_section_bytes(&[]).unwrap();
    writer.end_section().unwrap();
    writer.finish().unwrap();
    assert_eq!(fs::read(&whole).unwrap(), fs::read(&streamed).unwrap());
}

#[test]
fn wrong_magic_and_newer_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(dir.path());
    match Container::open(&path, *b"PDXOTHER", 3) {
        Err(StorageError::BadMagic {
            expected, found, ..
        }) => {
            assert_eq!(expected, *b"PDXOTHER");
            assert_eq!(found, MAGIC.to_vec());
        }
        other => panic!("expected BadMagic, got {other:?}"),
    }
    match Container::open(&path, MAGIC, 2) {
        Err(StorageError::UnsupportedVersion {
            found: 3,
            supported: 2,
            ..
        }) => {}
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    assert_eq!(Container::open(&path, MAGIC, 9).unwrap().version(), 3);

    let foreign = dir.path().join("foreign");
    fs::write(&foreign, b"GIF").unwrap();
    assert!(matches!(
        Container::open(&foreign, MAGIC, 3),
        Err(StorageError::BadMagic { found, .. }) if found == b"GIF"
    ));
    match Container::open(&dir.path().join("missing"), MAGIC, 3) {
        Err(StorageError::Io { path, .. }) => assert!(path.ends_with("missing")),
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn every_truncation_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(dir.path());
    let bytes = fs::read(&path).unwrap();
    let cut_path = dir.path().join("cut.pdx");
    for len in 0..bytes.len() {
        fs::write(&cut_path, &bytes[..len]).unwrap();
        match Container::open(&cut_path, MAGIC, 3) {
            Err(StorageError::Corrupt { path, offset, .. }) => {
                assert_eq!(path, cut_path);
                assert!(offset <= len as u64, "offset {offset} beyond cut {len}");
            }
            other => panic!("truncated to {len} bytes: expected Corrupt, got {other:?}"),
        }
    }
    // Bytes after the footer are damage too.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 5]);
    fs::write(&cut_path, &longer).unwrap();
    assert!(matches!(
        Container::open(&cut_path, MAGIC, 3),
        Err(StorageError::Corrupt { .. })
    ));
}

#[test]
fn every_flipped_byte_is_detected_with_the_right_kind_of_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(dir.path());
    let bytes = fs::read(&path).unwrap();
    let table_offset = {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[bytes.len() - 16..bytes.len() - 8]);
        u64::from_le_bytes(word) as usize
    };
    let damaged_path = dir.path().join("damaged.pdx");
    for position in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xFF] {
            let mut damaged = bytes.clone();
            damaged[position] ^= mask;
            fs::write(&damaged_path, &damaged).unwrap();
            let outcome = Container::open(&damaged_path, MAGIC, 3);
            let region_ok = match (&outcome, position) {
                (Err(StorageError::BadMagic { .. }), 0..=7) => true,
                // A version byte: newer than supported, or older and caught by the table crc.
                (
                    Err(StorageError::UnsupportedVersion { .. } | StorageError::Corrupt { .. }),
                    8..=11,
                ) => true,
                (Err(StorageError::Corrupt { offset, .. }), 12..) => {
                    let at = *offset as usize;
                    match position {
                        12..=15 => at == 12,
                        // Header padding is checked byte by byte.
                        16..=63 => at == position,
                        // A section is reported at its start, its padding at the byte itself.
                        _ if position < table_offset => (64..=position).contains(&at),
                        // Table and footer damage can surface at the table or the footer,
                        // wherever a damaged table offset points.
                        _ => true,
                    }
                }
                _ => false,
            };
            assert!(
                region_ok,
                "flip {mask:#04x} at byte {position}: got {outcome:?}"
            );
        }
    }
}

#[test]
fn a_damaged_section_is_reported_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    // TAG_A starts at 64; TAG_EMPTY at 192 with no bytes; TAG_B at 192.
    bytes[64 + 50] ^= 0x10;
    fs::write(&path, &bytes).unwrap();
    match Container::open(&path, MAGIC, 3) {
        Err(StorageError::Corrupt {
            offset: 64, reason, ..
        }) => {
            assert!(reason.contains("\"AAAA\""), "{reason}")
        }
        other => panic!("expected Corrupt at 64, got {other:?}"),
    }
}

#[test]
fn writer_misuse_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("misuse.pdx");
    let mut writer = ContainerWriter::create(&path, MAGIC, 1).unwrap();
    let invalid = |r: crate::Result<()>| matches!(r, Err(StorageError::InvalidState { .. }));
    assert!(invalid(writer.write_section_bytes(b"x")));
    assert!(invalid(writer.end_section()));
    writer.begin_section(1).unwrap();
    assert!(invalid(writer.begin_section(2)));
    writer.end_section().unwrap();
    assert!(matches!(
        writer.add_section(1, b"again"),
        Err(StorageError::DuplicateSection { tag: 1, .. })
    ));
    writer.begin_section(3).unwrap();
    assert!(matches!(
        writer.finish(),
        Err(StorageError::InvalidState { .. })
    ));
}

#[test]
fn create_temp_publishes_only_on_finish() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg.pdx");
    let mut writer = ContainerWriter::create_temp(&path, MAGIC, 1).unwrap();
    writer.add_section(1, b"abc").unwrap();
    assert!(!path.exists(), "final path must not exist before finish");
    writer.finish().unwrap();
    assert_eq!(
        Container::open(&path, MAGIC, 1)
            .unwrap()
            .section(1)
            .unwrap(),
        b"abc"
    );

    // An abandoned writer leaves neither the final file nor its temporary file behind.
    let other = dir.path().join("abandoned.pdx");
    let mut writer = ContainerWriter::create_temp(&other, MAGIC, 1).unwrap();
    writer.add_section(1, b"abc").unwrap();
    drop(writer);
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("seg.pdx")]);
}

#[test]
fn create_replaces_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(dir.path());
    let mut writer = ContainerWriter::create(&path, MAGIC, 1).unwrap();
    writer.add_section(9, b"new").unwrap();
    writer.finish().unwrap();
    let container = Container::open(&path, MAGIC, 1).unwrap();
    assert_eq!(container.tags(), vec![9]);
}

#[test]
fn container_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Container>();
    assert_send_sync::<ContainerWriter>();
}

#[test]
fn entries_round_trip_and_reject_nonzero_reserved_fields() {
    let entry = SectionEntry {
        tag: 0xDEAD_BEEF,
        offset: 64 * 1_000_001,
        len: u64::MAX - 3,
        crc: 0x1234_5678,
    };
    let bytes = entry.encode();
    assert_eq!(SectionEntry::decode(&bytes), Some(entry));
    for reserved in [4, 28] {
        let mut damaged = bytes;
        damaged[reserved] = 1;
        assert_eq!(SectionEntry::decode(&damaged), None);
    }
}

#[test]
fn align_up_rounds_to_64() {
    assert_eq!(align_up(0), 0);
    assert_eq!(align_up(1), 64);
    assert_eq!(align_up(64), 64);
    assert_eq!(align_up(65), 128);
}
