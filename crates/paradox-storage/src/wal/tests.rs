//! Unit tests of the write-ahead log. Property tests over random histories live in
//! `tests/wal_props.rs`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::segment::{encode_record, segment_name};
use super::*;

type Records = Vec<(u64, Vec<u8>)>;

fn replay_all(wal: &Wal, from_seq: u64) -> Records {
    let mut records = Vec::new();
    wal.replay(from_seq, |seq, payload| {
        records.push((seq, payload.to_vec()));
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap();
    records
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn path_of(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(segment_name(first_seq))
}

#[test]
fn a_new_log_starts_at_seq_one_and_continues_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, recovery) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    assert_eq!(
        recovery,
        WalRecovery {
            last_seq: None,
            records: 0,
            truncated_bytes: 0,
            truncated_file: None
        }
    );
    assert_eq!(segment_files(dir.path()), vec![segment_name(1)]);
    assert_eq!(wal.next_seq(), 1);
    assert_eq!(wal.append(b"one").unwrap(), WalTicket { seq: 1 });
    assert_eq!(wal.append(b"").unwrap(), WalTicket { seq: 2 });
    assert_eq!(
        wal.append_many(&[b"three", b"four"]).unwrap(),
        WalTicket { seq: 4 }
    );
    assert_eq!(wal.append_many(&[]).unwrap(), WalTicket { seq: 4 });
    assert_eq!(
        wal.size_bytes(),
        fs::metadata(path_of(dir.path(), 1)).unwrap().len()
    );
    drop(wal);

    let (wal, recovery) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    assert_eq!(recovery.last_seq, Some(4));
    assert_eq!(recovery.records, 4);
    assert_eq!(wal.append(b"five").unwrap().seq, 5);
    let expected: Records = vec![
        (1, b"one".to_vec()),
        (2, vec![]),
        (3, b"three".to_vec()),
        (4, b"four".to_vec()),
        (5, b"five".to_vec()),
    ];
    assert_eq!(replay_all(&wal, 0), expected);
    assert_eq!(replay_all(&wal, 4), expected[3..].to_vec());
    assert_eq!(replay_all(&wal, 99), Records::new());
}

#[test]
fn rotate_and_remove_before_manage_whole_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    assert_eq!(
        wal.rotate().unwrap(),
        1,
        "rotating an empty segment is a no-op"
    );
    for i in 1..=3u8 {
        wal.append(&[i]).unwrap();
    }
    assert_eq!(wal.rotate().unwrap(), 4);
    assert_eq!(wal.rotate().unwrap(), 4);
    wal.append(b"4").unwrap();
    wal.append(b"5").unwrap();
    assert_eq!(wal.rotate().unwrap(), 6);
    wal.append(b"6").unwrap();
    assert_eq!(
        segment_files(dir.path()),
        vec![segment_name(1), segment_name(4), segment_name(6)]
    );
    assert!(
        wal.stats().durable_seq >= 5,
        "rotate fsyncs the sealed segment"
    );

    // Segment 1 holds 1..=3: kept while seq 3 is still needed.
    wal.remove_before(3).unwrap();
    assert_eq!(segment_files(dir.path()).len(), 3);
    wal.remove_before(4).unwrap();
    assert_eq!(
        segment_files(dir.path()),
        vec![segment_name(4), segment_name(6)]
    );
    // The current segment is never removed, however large the seq.
    wal.remove_before(1000).unwrap();
    assert_eq!(segment_files(dir.path()), vec![segment_name(6)]);
    let total: u64 = segment_files(dir.path())
        .iter()
        .map(|n| fs::metadata(dir.path().join(n)).unwrap().len())
        .sum();
    assert_eq!(wal.size_bytes(), total);
    assert_eq!(replay_all(&wal, 6), vec![(6, b"6".to_vec())]);
    drop(wal);
    let (wal, recovery) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    assert_eq!(recovery.last_seq, Some(6));
    assert_eq!(recovery.records, 1);
    assert_eq!(wal.next_seq(), 7);
}

#[test]
fn replay_refuses_to_start_before_the_oldest_kept_record() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    wal.append(b"1").unwrap();
    wal.rotate().unwrap();
    wal.append(b"2").unwrap();
    wal.remove_before(2).unwrap();
    match wal.replay(1, |_, _| Ok::<(), std::convert::Infallible>(())) {
        Err(ReplayError::Storage(StorageError::ReplayGap {
            requested: 1,
            oldest: 2,
            ..
        })) => {}
        other => panic!("expected ReplayGap, got {other:?}"),
    }
    assert_eq!(replay_all(&wal, 2), vec![(2, b"2".to_vec())]);
}

#[test]
fn replay_stops_at_the_first_callback_error() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    for i in 0..5u8 {
        wal.append(&[i]).unwrap();
    }
    let mut calls = 0;
    let outcome = wal.replay(1, |seq, _| {
        calls += 1;
        if seq == 3 {
            Err("bad record")
        } else {
            Ok(())
        }
    });
    match outcome {
        Err(ReplayError::Callback {
            seq: 3,
            error: "bad record",
        }) => {}
        other => panic!("expected Callback error at 3, got {other:?}"),
    }
    assert_eq!(calls, 3);
}

#[test]
fn set_next_seq_only_on_an_empty_log_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    assert!(matches!(
        wal.set_next_seq(0),
        Err(StorageError::InvalidState { .. })
    ));
    wal.set_next_seq(100).unwrap();
    assert_eq!(wal.next_seq(), 100);
    assert_eq!(segment_files(dir.path()), vec![segment_name(100)]);
    assert_eq!(wal.append(b"a").unwrap().seq, 100);
    assert!(matches!(
        wal.set_next_seq(500),
        Err(StorageError::InvalidState { .. })
    ));

    // After a checkpoint empties the log, the seq can jump again.
    wal.rotate().unwrap();
    wal.remove_before(101).unwrap();
    wal.set_next_seq(500).unwrap();
    assert_eq!(wal.append(b"b").unwrap().seq, 500);
    drop(wal);
    let (wal, recovery) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    assert_eq!(recovery.last_seq, Some(500));
    assert_eq!(replay_all(&wal, 500), vec![(500, b"b".to_vec())]);
    assert_eq!(wal.next_seq(), 501);
}

#[test]
fn a_torn_tail_is_cut_off_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    wal.append(b"kept").unwrap();
    wal.append(b"torn record").unwrap();
    drop(wal);
    let path = path_of(dir.path(), 1);
    let full = fs::metadata(&path).unwrap().len();
    let cut = full - 4;
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut)
        .unwrap();

    let (wal, recovery) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    let kept_end = HEADER_LEN + RECORD_HEADER_LEN + 4;
    assert_eq!(recovery.last_seq, Some(1));
    assert_eq!(recovery.truncated_bytes, cut - kept_end);
    assert_eq!(recovery.truncated_file.as_deref(), Some(path.as_path()));
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        kept_end,
        "truncation is applied on disk"
    );
    assert_eq!(wal.append(b"again").unwrap().seq, 2);
    assert_eq!(
        replay_all(&wal, 1),
        vec![(1, b"kept".to_vec()), (2, b"again".to_vec())]
    );
}

#[test]
fn zeroed_tail_after_power_loss_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    wal.append(b"kept").unwrap();
    drop(wal);
    let path = path_of(dir.path(), 1);
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0u8; 4096]);
    fs::write(&path, &bytes).unwrap();
    let (_, recovery) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    assert_eq!(recovery.last_seq, Some(1));
    assert_eq!(recovery.truncated_bytes, 4096);
}

#[test]
fn damage_outside_the_last_tail_is_an_error() {
    // Builds segments 1 (records 1, 2) and 3 (record 3).
    fn build(dir: &Path) {
        let (wal, _) = Wal::open(dir, FsyncPolicy::Never).unwrap();
        wal.append(b"first").unwrap();
        wal.append(b"second").unwrap();
        wal.rotate().unwrap();
        wal.append(b"third").unwrap();
    }
    let expect_corrupt = |dir: &Path, what: &str| match Wal::open(dir, FsyncPolicy::Never) {
        Err(StorageError::Corrupt { .. }) => {}
        other => panic!("{what}: expected Corrupt, got {other:?}"),
    };

    // A flipped payload byte in a sealed segment.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let sealed = path_of(dir.path(), 1);
    let mut bytes = fs::read(&sealed).unwrap();
    bytes[HEADER_LEN as usize + RECORD_HEADER_LEN as usize] ^= 1;
    fs::write(&sealed, &bytes).unwrap();
    expect_corrupt(dir.path(), "flipped byte in sealed segment");

    // A sealed segment that lost its tail.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let sealed = path_of(dir.path(), 1);
    let len = fs::metadata(&sealed).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&sealed)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    expect_corrupt(dir.path(), "truncated sealed segment");

    // A missing segment in the middle.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    wal.rotate().unwrap();
    wal.append(b"fourth").unwrap();
    drop(wal);
    fs::remove_file(path_of(dir.path(), 3)).unwrap();
    expect_corrupt(dir.path(), "missing middle segment");

    // A record with a valid checksum but the wrong seq, in the last segment.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let mut record = Vec::new();
    encode_record(&mut record, 7, b"stray");
    let last = path_of(dir.path(), 3);
    let mut bytes = fs::read(&last).unwrap();
    bytes.extend_from_slice(&record);
    fs::write(&last, &bytes).unwrap();
    expect_corrupt(dir.path(), "record with an unexpected seq");
}

#[test]
fn damaged_headers_are_refused_with_precise_errors() {
    let make = || {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
        wal.append(b"x").unwrap();
        drop(wal);
        let path = path_of(dir.path(), 1);
        let bytes = fs::read(&path).unwrap();
        (dir, path, bytes)
    };
    let (dir, path, mut bytes) = make();
    bytes[0] = b'X';
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), FsyncPolicy::Never),
        Err(StorageError::BadMagic { .. })
    ));

    let (dir, path, mut bytes) = make();
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), FsyncPolicy::Never),
        Err(StorageError::UnsupportedVersion {
            found: 2,
            supported: 1,
            ..
        })
    ));

    for (offset, what) in [(8, "version 0"), (12, "reserved"), (16, "first seq")] {
        let (dir, path, mut bytes) = make();
        if offset == 8 {
            bytes[8] = 0;
        } else {
            bytes[offset] ^= 1;
        }
        fs::write(&path, &bytes).unwrap();
        match Wal::open(dir.path(), FsyncPolicy::Never) {
            Err(StorageError::Corrupt { offset: at, .. }) => {
                assert_eq!(at, offset as u64, "{what}")
            }
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        }
    }

    let (dir, path, bytes) = make();
    fs::write(&path, &bytes[..10]).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), FsyncPolicy::Never),
        Err(StorageError::Corrupt { .. })
    ));
}

#[test]
fn leftover_temporary_segments_are_removed_and_other_files_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join(format!(".{}.123.0.tmp", segment_name(5)));
    fs::write(&temp, b"half a header").unwrap();
    fs::write(dir.path().join("README"), b"not a segment").unwrap();
    let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    assert!(!temp.exists());
    assert_eq!(
        segment_files(dir.path()),
        vec!["README".to_string(), segment_name(1)]
    );
    assert_eq!(wal.next_seq(), 1);
}

#[test]
fn record_length_limit_is_enforced_on_both_sides() {
    // Appending a real 1 GiB payload would be rude on a shared machine; the check is a
    // function of the length alone.
    let dir = Path::new("/wal");
    assert!(check_record_len(dir, MAX_WAL_RECORD_LEN).is_ok());
    match check_record_len(dir, MAX_WAL_RECORD_LEN + 1) {
        Err(StorageError::RecordTooLarge { len, max, .. }) => {
            assert_eq!((len, max), (MAX_WAL_RECORD_LEN + 1, 1 << 30))
        }
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }

    // On reading, an absurd length field in the last segment is a torn tail.
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    wal.append(b"ok").unwrap();
    drop(wal);
    let path = path_of(dir.path(), 1);
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&((1u32 << 30) + 1).to_le_bytes());
    bytes.extend_from_slice(&[0; 12]);
    fs::write(&path, &bytes).unwrap();
    let (_, recovery) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    assert_eq!(recovery.last_seq, Some(1));
    assert_eq!(recovery.truncated_bytes, 16);
}

#[test]
fn group_commit_shares_fsyncs_between_concurrent_writers() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Always).unwrap();
    let wal = Arc::new(wal);
    let fsyncs_before = wal.stats().fsyncs;
    let handles: Vec<_> = (0..THREADS)
        .map(|thread| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let payload = format!("thread {thread} record {i}");
                    let ticket = wal.append(payload.as_bytes()).unwrap();
                    wal.wait_durable(&ticket).unwrap();
                    assert!(
                        wal.stats().durable_seq >= ticket.seq,
                        "returned before durable"
                    );
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let stats = wal.stats();
    let appends = (THREADS * PER_THREAD) as u64;
    assert_eq!(stats.records_appended, appends);
    assert_eq!(stats.durable_seq, appends);
    let fsyncs = stats.fsyncs - fsyncs_before;
    assert!(fsyncs >= 1);
    assert!(
        fsyncs < appends,
        "group commit made {fsyncs} fsyncs for {appends} appends"
    );

    // Every record is there once, in seq order, and each thread's records in its own order.
    let records = replay_all(&wal, 1);
    assert_eq!(records.len() as u64, appends);
    let mut next_per_thread = [0usize; THREADS];
    for (index, (seq, payload)) in records.iter().enumerate() {
        assert_eq!(*seq, index as u64 + 1);
        let text = String::from_utf8(payload.clone()).unwrap();
        let mut words = text.split(' ');
        let thread: usize = words.nth(1).unwrap().parse().unwrap();
        let i: usize = words.nth(1).unwrap().parse().unwrap();
        assert_eq!(
            i, next_per_thread[thread],
            "thread {thread} records out of order"
        );
        next_per_thread[thread] += 1;
    }
}

#[test]
fn a_failed_fsync_is_sticky() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Always).unwrap();
    let first = wal.append(b"durable").unwrap();
    wal.wait_durable(&first).unwrap();
    let second = wal.append(b"doomed").unwrap();
    wal.inject_fsync_failure();
    assert!(matches!(
        wal.wait_durable(&second),
        Err(StorageError::Io { .. })
    ));
    // Retrying cannot make it durable, and nothing new is accepted.
    assert!(matches!(
        wal.wait_durable(&second),
        Err(StorageError::WalFailed { .. })
    ));
    assert!(matches!(
        wal.wait_durable(&first),
        Err(StorageError::WalFailed { .. })
    ));
    assert!(matches!(
        wal.append(b"more"),
        Err(StorageError::WalFailed { .. })
    ));
    assert!(matches!(wal.sync(), Err(StorageError::WalFailed { .. })));
    assert!(matches!(wal.rotate(), Err(StorageError::WalFailed { .. })));
    let message = wal.append(b"more").unwrap_err().to_string();
    assert!(message.contains("injected fsync failure"), "{message}");
    drop(wal);

    // Reopening recovers from the disk.
    let (wal, recovery) = Wal::open(dir.path(), FsyncPolicy::Always).unwrap();
    assert_eq!(recovery.last_seq, Some(2));
    assert_eq!(wal.append(b"after reopen").unwrap().seq, 3);
}

#[test]
fn a_failed_fsync_in_the_interval_thread_is_sticky_too() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Interval(Duration::from_millis(1))).unwrap();
    wal.inject_fsync_failure();
    let ticket = wal.append(b"x").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while wal.wait_durable(&ticket).is_ok() {
        assert!(
            Instant::now() < deadline,
            "interval thread never hit the injected failure"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(matches!(
        wal.append(b"y"),
        Err(StorageError::WalFailed { .. })
    ));
}

#[test]
fn interval_policy_syncs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Interval(Duration::from_millis(5))).unwrap();
    let ticket = wal.append(b"x").unwrap();
    wal.wait_durable(&ticket).unwrap(); // returns at once
    let deadline = Instant::now() + Duration::from_secs(10);
    while wal.stats().durable_seq < ticket.seq {
        assert!(Instant::now() < deadline, "background fsync never happened");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(wal.stats().fsyncs >= 1);
}

#[test]
fn never_policy_fsyncs_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    assert_eq!(wal.policy(), FsyncPolicy::Never);
    let ticket = wal.append(b"x").unwrap();
    wal.wait_durable(&ticket).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(wal.stats().fsyncs, 0);
    assert_eq!(wal.stats().durable_seq, 0);
    wal.sync().unwrap();
    assert_eq!(wal.stats().fsyncs, 1);
    assert_eq!(wal.stats().durable_seq, 1);
    wal.sync().unwrap();
    assert_eq!(wal.stats().fsyncs, 1, "nothing new to sync");
}

#[test]
fn waiting_for_a_ticket_that_was_never_issued_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Always).unwrap();
    wal.append(b"x").unwrap();
    assert!(matches!(
        wal.wait_durable(&WalTicket { seq: 2 }),
        Err(StorageError::InvalidState { .. })
    ));
}

#[test]
fn reopening_syncs_what_survived_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    wal.append(b"x").unwrap();
    drop(wal);
    let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    assert_eq!(wal.stats().durable_seq, 1);
    assert_eq!(wal.stats().last_seq, 1);
}

#[test]
fn wal_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Wal>();
}
