//! Property tests of containers: whatever is written reads back, and any damage is an error.

use std::collections::BTreeMap;

use paradox_storage::{Container, ContainerWriter, StorageError, SECTION_ALIGN};
use proptest::prelude::*;

const MAGIC: [u8; 8] = *b"PDXPROP\0";

/// Up to 6 sections with unique tags and sizes from 0 to 3000 bytes (sizes near multiples of 64
/// are common enough at this range), each written whole or in random chunks.
fn sections() -> impl Strategy<Value = Vec<(u32, Vec<u8>, usize)>> {
    prop::collection::btree_map(
        any::<u32>(),
        (prop::collection::vec(any::<u8>(), 0..3000), 1usize..700),
        0..6,
    )
    .prop_map(|map: BTreeMap<u32, (Vec<u8>, usize)>| {
        map.into_iter()
            .map(|(tag, (bytes, chunk))| (tag, bytes, chunk))
            .collect()
    })
    .prop_shuffle()
}

fn write(path: &std::path::Path, sections: &[(u32, Vec<u8>, usize)], version: u32) -> u64 {
    let mut writer = ContainerWriter::create_temp(path, MAGIC, version).unwrap();
    for (index, (tag, bytes, chunk)) in sections.iter().enumerate() {
        if index % 2 == 0 {
            writer.add_section(*tag, bytes).unwrap();
        } else {
            writer.begin_section(*tag).unwrap();
            for piece in bytes.chunks(*chunk) {
                writer.write_section_bytes(piece).unwrap();
            }
            writer.end_section().unwrap();
        }
    }
    writer.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip(sections in sections(), version in 0u32..5) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.pdx");
        let len = write(&path, &sections, version);
        let container = Container::open(&path, MAGIC, 4).unwrap();
        prop_assert_eq!(container.file_len(), len);
        prop_assert_eq!(container.version(), version);
        prop_assert_eq!(container.tags(), sections.iter().map(|s| s.0).collect::<Vec<_>>());
        for (tag, bytes, _) in &sections {
            let stored = container.section(*tag).unwrap();
            prop_assert_eq!(stored, bytes.as_slice());
            prop_assert_eq!(stored.as_ptr() as usize % SECTION_ALIGN as usize, 0);
        }
    }

    #[test]
    fn any_flipped_byte_or_cut_is_an_error(
        sections in sections(),
        position in any::<prop::sample::Index>(),
        mask in 1u8..=255,
        cut in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.pdx");
        write(&path, &sections, 1);
        let bytes = std::fs::read(&path).unwrap();

        let mut damaged = bytes.clone();
        damaged[position.index(bytes.len())] ^= mask;
        std::fs::write(&path, &damaged).unwrap();
        let outcome = Container::open(&path, MAGIC, 1);
        prop_assert!(
            matches!(
                outcome,
                Err(StorageError::Corrupt { .. }
                    | StorageError::BadMagic { .. }
                    | StorageError::UnsupportedVersion { .. })
            ),
            "flip at {}: {:?}", position.index(bytes.len()), outcome
        );

        let cut_len = cut.index(bytes.len());
        std::fs::write(&path, &bytes[..cut_len]).unwrap();
        let outcome = Container::open(&path, MAGIC, 1);
        prop_assert!(matches!(outcome, Err(StorageError::Corrupt { .. })), "cut at {}: {:?}", cut_len, outcome);
    }
}
