//! Property tests of the write-ahead log against a model (a plain list of records), including
//! recovery after a crash tears or damages the last record.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use paradox_storage::{FsyncPolicy, StorageError, Wal};
use proptest::prelude::*;

type Records = Vec<(u64, Vec<u8>)>;

fn replay(wal: &Wal, from_seq: u64) -> Records {
    let mut records = Vec::new();
    wal.replay(from_seq, |seq, payload| {
        records.push((seq, payload.to_vec()));
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap();
    records
}

/// Segment files of the log in `dir`, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    paths.sort();
    paths
}

fn payload(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    AppendMany(Vec<Vec<u8>>),
    Rotate,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => payload(300).prop_map(Op::Append),
        2 => prop::collection::vec(payload(100), 0..5).prop_map(Op::AppendMany),
        1 => Just(Op::Rotate),
        1 => Just(Op::Reopen),
    ]
}

fn policy() -> impl Strategy<Value = FsyncPolicy> {
    prop_oneof![
        Just(FsyncPolicy::Never),
        Just(FsyncPolicy::Always),
        Just(FsyncPolicy::Interval(Duration::from_millis(1))),
    ]
}

/// A log whose last record is `last`, preceded by `earlier` (with a rotation before record
/// `rotate_at`, if any). Returns the last segment and where the last record starts in it.
fn build_with_last_record(
    dir: &Path,
    earlier: &[Vec<u8>],
    rotate_at: Option<usize>,
    last: &[u8],
) -> (PathBuf, u64) {
    let (wal, _) = Wal::open(dir, FsyncPolicy::Never).unwrap();
    for (index, payload) in earlier.iter().enumerate() {
        if rotate_at == Some(index) {
            wal.rotate().unwrap();
        }
        wal.append(payload).unwrap();
    }
    if rotate_at == Some(earlier.len()) {
        wal.rotate().unwrap();
    }
    let last_segment = segments(dir).pop().unwrap();
    let start = fs::metadata(&last_segment).unwrap().len();
    wal.append(last).unwrap();
    (last_segment, start)
}

/// After recovery from a damaged last record: the earlier records are intact, the damaged one
/// is gone, and the log goes on from its seq.
fn check_recovered(
    dir: &Path,
    earlier: &[Vec<u8>],
    expected_truncated: u64,
) -> Result<(), TestCaseError> {
    let (wal, recovery) = Wal::open(dir, FsyncPolicy::Never).unwrap();
    let kept = earlier.len() as u64;
    prop_assert_eq!(recovery.last_seq, (kept > 0).then_some(kept));
    prop_assert_eq!(recovery.truncated_bytes, expected_truncated);
    let mut expected: Records = earlier
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, p)| (i as u64 + 1, p))
        .collect();
    prop_assert_eq!(replay(&wal, 1), expected.clone());
    let ticket = wal.append(b"after recovery").unwrap();
    prop_assert_eq!(ticket.seq, kept + 1);
    expected.push((kept + 1, b"after recovery".to_vec()));
    prop_assert_eq!(replay(&wal, 1), expected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn replay_returns_what_was_appended(
        ops in prop::collection::vec(op(), 0..40),
        policy in policy(),
        from in 0u64..60,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut model: Records = Vec::new();
        let (mut wal, _) = Wal::open(dir.path(), policy).unwrap();
        for op in ops {
            match op {
                Op::Append(payload) => {
                    let ticket = wal.append(&payload).unwrap();
                    wal.wait_durable(&ticket).unwrap();
                    model.push((ticket.seq, payload));
                }
                Op::AppendMany(batch) => {
                    let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                    let ticket = wal.append_many(&refs).unwrap();
                    wal.wait_durable(&ticket).unwrap();
                    let first = ticket.seq + 1 - batch.len() as u64;
                    model.extend((first..).zip(batch));
                }
                Op::Rotate => {
                    prop_assert_eq!(wal.rotate().unwrap(), model.len() as u64 + 1);
                }
                Op::Reopen => {
                    drop(wal);
                    let (reopened, recovery) = Wal::open(dir.path(), policy).unwrap();
                    prop_assert_eq!(recovery.truncated_bytes, 0);
                    prop_assert_eq!(recovery.records, model.len() as u64);
                    wal = reopened;
                }
            }
            // Seqs are dense and 1-based.
            prop_assert_eq!(wal.next_seq(), model.len() as u64 + 1);
        }
        drop(wal);
        let (wal, recovery) = Wal::open(dir.path(), policy).unwrap();
        prop_assert_eq!(recovery.last_seq, model.last().map(|r| r.0));
        prop_assert_eq!(replay(&wal, 1), model.clone());
        let tail: Records = model.iter().filter(|r| r.0 >= from).cloned().collect();
        prop_assert_eq!(replay(&wal, from), tail);
        prop_assert_eq!(wal.append(b"next").unwrap().seq, model.len() as u64 + 1);
        let on_disk: u64 = segments(dir.path()).iter().map(|p| fs::metadata(p).unwrap().len()).sum();
        prop_assert_eq!(wal.size_bytes(), on_disk);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn recovery_after_cutting_the_last_record_at_every_offset(
        earlier in prop::collection::vec(payload(40), 0..4),
        rotate_at in prop::option::of(0usize..5),
        last in payload(100),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (last_segment, start) = build_with_last_record(dir.path(), &earlier, rotate_at, &last);
        let full = fs::read(&last_segment).unwrap();
        prop_assert_eq!(full.len() as u64, start + 16 + last.len() as u64);
        for cut in start..full.len() as u64 {
            fs::write(&last_segment, &full[..cut as usize]).unwrap();
            check_recovered(dir.path(), &earlier, cut - start)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn recovery_after_damaging_a_byte_of_the_last_record(
        earlier in prop::collection::vec(payload(40), 0..4),
        rotate_at in prop::option::of(0usize..5),
        last in payload(100),
        position in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (last_segment, start) = build_with_last_record(dir.path(), &earlier, rotate_at, &last);
        let mut bytes = fs::read(&last_segment).unwrap();
        let record_len = bytes.len() - start as usize;
        bytes[start as usize + position.index(record_len)] ^= mask;
        fs::write(&last_segment, &bytes).unwrap();
        check_recovered(dir.path(), &earlier, record_len as u64)?;
    }

    #[test]
    fn damage_in_a_sealed_segment_is_an_error(
        first in prop::collection::vec(payload(60), 1..5),
        second in prop::collection::vec(payload(60), 0..3),
        segment_pick in any::<prop::sample::Index>(),
        position in any::<prop::sample::Index>(),
        mask in 1u8..=255,
        cut_instead in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
        for payload in &first {
            wal.append(payload).unwrap();
        }
        wal.rotate().unwrap();
        for payload in &second {
            wal.append(payload).unwrap();
        }
        wal.rotate().unwrap();
        drop(wal);
        let all = segments(dir.path());
        let sealed = &all[..all.len() - 1];
        let victim = &sealed[segment_pick.index(sealed.len())];
        let mut bytes = fs::read(victim).unwrap();
        prop_assume!(bytes.len() > 24); // a sealed segment always holds a record; be explicit
        let at = position.index(bytes.len());
        if cut_instead {
            // Cut inside the records, not at the header (a short header is checked elsewhere).
            let cut = 24 + at % (bytes.len() - 24);
            bytes.truncate(cut);
        } else {
            bytes[at] ^= mask;
        }
        fs::write(victim, &bytes).unwrap();
        let outcome = Wal::open(dir.path(), FsyncPolicy::Never);
        let expected_kind = match outcome {
            Err(StorageError::Corrupt { ref path, .. }) => path == victim || cut_instead,
            Err(StorageError::BadMagic { .. }) => !cut_instead && at < 8,
            Err(StorageError::UnsupportedVersion { .. }) => !cut_instead && (8..12).contains(&at),
            _ => false,
        };
        prop_assert!(expected_kind, "damage at {} (cut: {}) in {:?}: {:?}", at, cut_instead, victim, outcome);
    }
}
