//! Crash test: a child process writes batches and reports each acknowledged one on stdout;
//! the parent SIGKILLs it at random moments, reopens the store and checks that every
//! acknowledged write is there and the store always opens. The child is this same test
//! binary, re-run with `PARADOX_CRASH_CHILD` set.

use paradox_engine::{
    payload, CollectionConfig, Engine, EngineOptions, FsyncPolicy, Metric, NewPoint, PointId,
};
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DIM: usize = 16;
const BATCH: usize = 200;

fn vector_for(id: u64) -> Vec<f32> {
    (0..DIM)
        .map(|j| ((id * 31 + j as u64) % 97) as f32 / 97.0 + 0.01)
        .collect()
}

fn child(dir: &str, start_batch: u64) {
    let options = EngineOptions {
        fsync: FsyncPolicy::Never,
        seal_threshold: 1500,
        parallel_threshold: 4096,
        ..Default::default()
    };
    let engine = Engine::open_with(dir, options).expect("child opens the store");
    let col = match engine.collection("crash") {
        Ok(c) => c,
        Err(_) => engine
            .create_collection(CollectionConfig::new("crash", DIM, Metric::L2))
            .unwrap(),
    };
    println!("CRASH-READY");
    for batch in start_batch.. {
        let points = (0..BATCH as u64)
            .map(|i| {
                let id = batch * BATCH as u64 + i;
                NewPoint::new(id, vector_for(id)).with_payload(payload(json!({"batch": batch})))
            })
            .collect();
        col.upsert(points).unwrap();
        if batch % 7 == 3 {
            // Deletes and overwrites are part of the workload too.
            let victim = (batch - 1) * BATCH as u64;
            col.delete(&[victim.into()]).unwrap();
            println!("CRASH-DELETED {victim}");
        }
        if batch % 11 == 5 {
            col.compact().unwrap();
        }
        println!("CRASH-ACKED {batch}");
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if let Ok(dir) = std::env::var("PARADOX_CRASH_CHILD") {
        let start: u64 = std::env::var("PARADOX_CRASH_START")
            .unwrap()
            .parse()
            .unwrap();
        child(&dir, start);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xC0FFEE);
    let mut acked_batches: u64 = 0; // batches 0..acked_batches are acknowledged
    let mut deleted: Vec<u64> = Vec::new();
    let kills = 24;
    for round in 0..kills {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "acknowledged_writes_survive_sigkill",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("PARADOX_CRASH_CHILD", dir.path())
            .env("PARADOX_CRASH_START", acked_batches.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait until the child has opened the store, then let it write for a random time.
        let started = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.contains("CRASH-READY") => break,
                Ok(_) => {}
                Err(e) => panic!("round {round}: child never became ready: {e}"),
            }
            assert!(started.elapsed() < Duration::from_secs(60));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(5..250)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            // libtest may print its own text before ours on the same line.
            if let Some((_, b)) = line.split_once("CRASH-ACKED ") {
                acked_batches = acked_batches.max(b.trim().parse::<u64>().unwrap() + 1);
            } else if let Some((_, id)) = line.split_once("CRASH-DELETED ") {
                deleted.push(id.trim().parse().unwrap());
            }
        }
        // The store must open, and hold every acknowledged write.
        let engine = Engine::open_with(
            dir.path(),
            EngineOptions {
                fsync: FsyncPolicy::Never,
                seal_threshold: 1500,
                parallel_threshold: 4096,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("round {round}: store failed to open after SIGKILL: {e}"));
        let Ok(col) = engine.collection("crash") else {
            assert_eq!(
                acked_batches, 0,
                "collection lost after {acked_batches} acknowledged batches"
            );
            continue;
        };
        let ids: Vec<PointId> = (0..acked_batches * BATCH as u64)
            .map(PointId::Num)
            .collect();
        let got = col.get(&ids).unwrap();
        for (id, point) in ids.iter().zip(&got) {
            let PointId::Num(n) = id else { unreachable!() };
            // A delete whose acknowledgement the kill cut off may or may not have happened.
            let maybe_deleted = n % BATCH as u64 == 0 && (n / BATCH as u64 + 1) % 7 == 3;
            if deleted.contains(n) {
                assert!(
                    point.is_none(),
                    "round {round}: deleted point {n} came back"
                );
            } else if maybe_deleted && point.is_none() {
                continue;
            } else {
                let point = point
                    .as_ref()
                    .unwrap_or_else(|| panic!("round {round}: acknowledged point {n} lost"));
                assert_eq!(point.vector, vector_for(*n));
            }
        }
    }
    assert!(
        acked_batches > kills as u64,
        "the child made too little progress: {acked_batches} batches"
    );
}
