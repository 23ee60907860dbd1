//! Index maintenance: sealed segments get their HNSW graph from the index file when it is
//! there and sound, or from a background build. Searches never wait for a build: until a
//! segment's graph is installed, the segment is scanned exactly.

use super::Collection;
use crate::config::TraversalEncoding;
use crate::segment::{
    index_file_name, read_index_file, write_index_file, SealedSegment, SegmentGraph,
};
use paradox_index::{EncodedVectors, HnswIndex, VectorView};
use parking_lot::{Condvar, Mutex};
use std::sync::{Arc, OnceLock};

type BuildJob = Box<dyn FnOnce() + Send>;

/// Sends a build to the process-wide build worker. Builds run one at a time (each uses
/// every core through the rayon pool), so a burst of seals queues its builds instead of
/// running many at once and starving the write path.
fn submit(job: BuildJob) {
    static QUEUE: OnceLock<Mutex<std::sync::mpsc::Sender<BuildJob>>> = OnceLock::new();
    let sender = QUEUE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<BuildJob>();
        let spawned = std::thread::Builder::new()
            .name("paradox-index-builder".into())
            .spawn(move || {
                for job in rx {
                    // A panicking build must not take the worker (and every later build)
                    // down with it; its pending count is released by `FinishOnDrop`.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            });
        // If the worker could not start, `rx` is gone and every send below fails: each
        // build then gets a thread of its own.
        drop(spawned);
        Mutex::new(tx)
    });
    if let Err(std::sync::mpsc::SendError(job)) = sender.lock().send(job) {
        // The worker is gone (it could not start): run the build on its own thread.
        let _ = std::thread::Builder::new()
            .name("paradox-index-build".into())
            .spawn(job);
    }
}

/// Marks a build finished when dropped, whether the build returned or panicked.
struct FinishOnDrop(Arc<IndexBuilds>);

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// Count of background builds in flight, to let callers wait for them.
#[derive(Debug, Default)]
pub(crate) struct IndexBuilds {
    pending: Mutex<usize>,
    idle: Condvar,
}

impl IndexBuilds {
    fn start(&self) {
        *self.pending.lock() += 1;
    }

    fn finish(&self) {
        let mut pending = self.pending.lock();
        *pending -= 1;
        if *pending == 0 {
            self.idle.notify_all();
        }
    }

    pub fn pending(&self) -> usize {
        *self.pending.lock()
    }
}

impl Collection {
    /// Gives `segment` its graph if the collection's index config calls for one: loads the
    /// index file, or (missing or damaged) starts a background build.
    pub(crate) fn ensure_index(&self, segment: &Arc<SealedSegment>) {
        let Some(hnsw) = self.config.index.hnsw_for(segment.len()) else {
            return;
        };
        if segment.index().is_some() {
            return;
        }
        let path = self.dir.join(index_file_name(segment.id()));
        if path.exists() {
            match read_index_file(&path, segment.len(), segment.nonce()) {
                Ok(index)
                    if index.hnsw.params().m == hnsw.m
                        && index.hnsw.params().ef_construction == hnsw.ef_construction
                        && index.encoded.as_ref().map(|e| e.encoding())
                            == (hnsw.encoding != TraversalEncoding::F32)
                                .then(|| hnsw.encoding.to_index()) =>
                {
                    segment.set_index(index);
                    return;
                }
                // Damaged, or built with other parameters: rebuild (derived data).
                _ => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let builds = self.index_builds.clone();
        let segment = segment.clone();
        let (dim, metric, params) = (self.config.dimension, self.config.metric, hnsw.params());
        let encoding = hnsw.encoding;
        builds.start();
        let job: BuildJob = Box::new(move || {
            let _done = FinishOnDrop(builds);
            // A retired segment (replaced by compaction while queued) needs no graph.
            if !segment.is_retired() {
                let view = VectorView {
                    data: segment.vectors(),
                    dim,
                    metric,
                };
                let index = SegmentGraph {
                    hnsw: HnswIndex::build(view, params),
                    encoded: (encoding != TraversalEncoding::F32)
                        .then(|| EncodedVectors::encode(view, encoding.to_index())),
                };
                // A failed write only costs a rebuild at the next open; the graph is
                // installed either way.
                let _ = write_index_file(&path, &index, segment.nonce());
                // Compaction may have replaced the segment meanwhile; it removes the index
                // files it knows of, and this one may have landed after it looked.
                // Checking after the write covers both orders.
                if segment.is_retired() {
                    let _ = std::fs::remove_file(&path);
                }
                segment.set_index(index);
            }
        });
        submit(job);
    }

    /// Blocks until every background index build started so far has finished. Searches do
    /// not need this (they scan unindexed segments exactly); benchmarks and tests do.
    pub fn wait_for_indexes(&self) {
        let mut pending = self.index_builds.pending.lock();
        while *pending > 0 {
            self.index_builds.idle.wait(&mut pending);
        }
    }

    /// Background index builds in flight.
    pub fn pending_index_builds(&self) -> usize {
        self.index_builds.pending()
    }
}
