//! Index maintenance: sealed segments get their HNSW graph or inverted file from the index
//! file when it is there and sound, or from a background build. Searches never wait for a
//! build: until a segment's index is installed, the segment is scanned exactly.

use super::Collection;
use crate::config::{HnswConfig, IndexConfig, IndexPlan, TraversalEncoding};
use crate::error::Result;
use crate::segment::{
    index_file_name, index_file_names, ivf_file_name, read_index_file, read_ivf_file,
    write_index_file, write_ivf_file, BuildQueued, CodesAt, DeletedRows, PayloadGraphs,
    SealedSegment, SegmentGraph, SegmentIndex,
};
use paradox_index::{EncodedVectors, HnswIndex, IvfIndex, IvfParams, ListCache, VectorView};
use parking_lot::{Condvar, Mutex};
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

type BuildJob = Box<dyn FnOnce() + Send>;

/// Local beam of the link repair when a compaction derives a segment's graph from the old
/// one (see [`Collection::derive_graph`]; chosen with `paradox-index`'s
/// `examples/compaction.rs`).
const COMPACTION_REPAIR_EF: usize = 32;

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

/// The rayon pool index builds run on (graphs, inverted files, a compaction's graph
/// repair), one thread per core. Searches run on rayon's global pool: a build there keeps
/// every worker busy with its own split jobs until it ends, and searches queued behind it
/// waited the whole build (seconds to minutes: the server's soak saw requests time out).
/// With a pool of its own, the OS shares the cores between builds and searches.
fn on_build_pool<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("paradox-build-{i}"))
            .start_handler(|_| lower_priority())
            .build()
            .ok()
    });
    match pool {
        Some(pool) => pool.install(work),
        // No threads to be had: build on the current pool, as before.
        None => work(),
    }
}

/// Moves the calling thread to the `SCHED_IDLE` policy (Linux, best effort; if that is
/// refused, 10 nice steps down, at most to 19): a build thread then runs on what searches
/// and writes leave. Nice alone was not enough: the scheduler lets a running task finish
/// its slice (a few ms) before a woken search worker gets the core, and at 20k
/// inserts/s, 1M rows, the builds' slices were most of a search's p99. A `SCHED_IDLE`
/// task is preempted at once by any other waking; it still gets a small share of a
/// saturated machine, so builds slow down there but never stop. Build threads hold no
/// engine lock.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: `sched_setscheduler(0, ..)` changes only this thread's policy, from a
    // valid `sched_param`; an error leaves it as it was.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0 {
            return;
        }
    }
    nice_down(10);
}

/// Moves the calling thread `steps` nice steps down, at most to 19 (Linux, best effort).
fn nice_down(steps: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: `gettid` has no preconditions; `errno` is this thread's own; `getpriority`
    // and `setpriority` on this thread's id read and change only its nice value, and an
    // error (e.g. not permitted) leaves it as it was.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        // -1 is also a valid nice value: only errno tells an error apart.
        *libc::__errno_location() = 0;
        let current = libc::getpriority(libc::PRIO_PROCESS, tid);
        if current != -1 || *libc::__errno_location() == 0 {
            libc::setpriority(libc::PRIO_PROCESS, tid, (current + steps).min(19));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = steps;
}

/// Runs `work` on the write path's rayon pool, one thread per core, each 10 nice steps
/// down, and waits for it: the heavy arithmetic and copying of writes and seals (an
/// upsert's IVF list assignment, a seal's segment file) then gives way to searches on a
/// busy machine instead of taking turns with them, while still getting a share of a
/// saturated one (unlike builds, at `SCHED_IDLE`, writes must not stall). Only work that
/// holds no engine lock goes there: a thread this low could sit on a lock searches need.
pub(super) fn on_write_pool<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("paradox-write-{i}"))
            .start_handler(|_| nice_down(10))
            .build()
            .ok()
    });
    match pool {
        // On any rayon worker (this pool's, or another's: a worker waiting on `install`
        // runs other jobs of its own pool meanwhile, which could need a lock the caller
        // holds), the work runs where it is.
        Some(pool) if rayon::current_thread_index().is_none() => pool.install(work),
        _ => work(),
    }
}

/// Rows a donor's quantisers must have been trained on to be reused: codebooks trained on
/// fewer (256 codewords per sub-quantiser, sampled up to 64 rows each) fit the rows they
/// were trained on noticeably better than new ones; from here on the difference is noise.
const REUSE_MIN_TRAINED_ROWS: usize = 64 * 256;

/// The quantisers (centroids and residual codebooks, no rows) of a collection's last
/// trained IVF build on at least [`REUSE_MIN_TRAINED_ROWS`] rows, and how many rows they
/// were trained on. Training dominates a build (k-means and codebooks: tens of passes
/// over the rows); reusing it, a segment's background build only assigns and encodes its
/// rows, several times faster, which keeps builds up with a sustained insert stream.
/// Merges reuse them too (or copy their sources' codes, [`Collection::carry_ivf`]). A
/// build whose rows drifted from them (mean distance to their centroids above
/// [`REUSE_MAX_DRIFT`] times the training rows') trains afresh and becomes the donor, so
/// the quantisers follow the data. Cleared when the index config changes. After an open,
/// the newest inverted file read whose quantisers qualify (their fit is kept in the file)
/// serves until a build trains new ones.
#[derive(Debug, Default)]
pub(crate) struct IvfDonor(Mutex<Option<Donor>>);

#[derive(Debug)]
struct Donor {
    /// Centroids and codebooks, no rows.
    quantisers: Arc<IvfIndex>,
    /// Rows they were trained on.
    trained_rows: usize,
    /// The segment whose inverted file they were read from at an open; `None` for a
    /// build's.
    read_from: Option<u64>,
}

impl IvfDonor {
    /// The quantisers for a segment of `rows` rows built with `params`: if they make the
    /// index a fresh build would (same codec, the same number of lists for that many
    /// rows, ...) and, for a seal (`merge` false), were trained on at least half as many
    /// rows (a sealed segment much larger than the donor's is better served by its own).
    /// A merge's output, however large, takes them: its rows were filed with them
    /// already, and a drift check follows the build.
    fn get(&self, params: &IvfParams, rows: usize, merge: bool) -> Option<Arc<IvfIndex>> {
        let donor = self.0.lock();
        let donor = donor.as_ref()?;
        ((merge || donor.trained_rows.saturating_mul(2) >= rows)
            && same_ivf_build(donor.quantisers.params(), params, rows))
        .then(|| Arc::clone(&donor.quantisers))
    }

    /// The quantisers, whatever they fit (they file new rows of the growing segment).
    pub(crate) fn current(&self) -> Option<Arc<IvfIndex>> {
        self.0.lock().as_ref().map(|d| Arc::clone(&d.quantisers))
    }

    /// Keeps `index`'s quantisers (trained on `rows` rows) for later builds, if they were
    /// trained on enough rows; quantisers of a smaller build leave the donor as it was.
    fn offer(&self, index: &IvfIndex, rows: usize) {
        if rows < REUSE_MIN_TRAINED_ROWS {
            return;
        }
        if let Some(quantisers) = Self::quantisers_of(index) {
            *self.0.lock() = Some(Donor {
                quantisers,
                trained_rows: rows,
                read_from: None,
            });
        }
    }

    /// Offers the quantisers of an inverted file read at an open for segment `segment`:
    /// taken when their fit is known (files from format 3 on), they were trained on
    /// enough rows, and the donor is empty or was read from an older segment (a build's
    /// quantisers are newer than any file's).
    fn restore(&self, index: &IvfIndex, segment: u64) {
        let fit = index.fit();
        let Some(rows) = fit.trained_rows.and_then(|r| usize::try_from(r).ok()) else {
            return;
        };
        if rows < REUSE_MIN_TRAINED_ROWS || fit.trained_error.is_none() {
            return;
        }
        let mut donor = self.0.lock();
        if donor
            .as_ref()
            .is_some_and(|d| d.read_from.is_none_or(|from| from > segment))
        {
            return;
        }
        if let Some(quantisers) = Self::quantisers_of(index) {
            *donor = Some(Donor {
                quantisers,
                trained_rows: rows,
                read_from: Some(segment),
            });
        }
    }

    /// `index`'s quantisers without its rows.
    fn quantisers_of(index: &IvfIndex) -> Option<Arc<IvfIndex>> {
        let empty = VectorView {
            data: &[],
            dim: index.dim(),
            metric: index.metric(),
        };
        index.build_like(empty).ok().map(Arc::new)
    }

    /// Forgets the quantisers (the index config changed).
    fn clear(&self) {
        *self.0.lock() = None;
    }
}

/// Marks a build finished when dropped, whether the build returned or panicked.
struct FinishOnDrop(Arc<IndexBuilds>);

/// Ends a segment's queued build, then wakes the maintenance worker (see
/// [`SealedSegment::build_queued`]).
struct WakeOnDrop(Arc<super::maintenance::Maintenance>, Option<BuildQueued>);

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        drop(self.1.take());
        self.0.wake();
    }
}

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
    /// Gives `segment` the index the collection's index config calls for: keeps the one
    /// it has if it already fits, loads the index file, or (missing, damaged or built with
    /// other parameters) starts a background build. Under `flat` (or `auto` below its
    /// threshold) the segment's index is dropped.
    pub(crate) fn ensure_index(&self, segment: &Arc<SealedSegment>) {
        if segment.is_frozen() {
            // Scanned exactly until its file is written; the seal indexes that.
            return;
        }
        let current = segment.index();
        match self.index_config().plan_for(segment.len()) {
            None => {
                segment.advise_random_reads(false);
                if current.is_some() {
                    segment.clear_index();
                    remove_index_files(&self.dir, segment.id(), None);
                }
            }
            Some(IndexPlan::Hnsw(hnsw)) => {
                segment.advise_random_reads(false);
                if !matches!(current.as_deref(), Some(SegmentIndex::Graph(g)) if graph_fits(g, &hnsw))
                {
                    self.ensure_graph(segment, hnsw);
                }
            }
            Some(IndexPlan::Ivf(params)) => {
                let codes_at = self.codes_at();
                // Data left on disk is read a row at a time (re-rank): a fault must not
                // read megabytes around its row.
                segment.advise_random_reads(!matches!(codes_at, CodesAt::Ram));
                if !matches!(current.as_deref(), Some(SegmentIndex::Ivf(i))
                    if same_ivf_build(i.params(), &params, segment.len())
                        && (i.code_bytes() == 0 || codes_at.holds(i)))
                {
                    self.ensure_ivf(segment, params, codes_at);
                }
            }
        }
    }

    /// Changes the index sealed segments get. Each segment keeps serving searches with
    /// its current index (or exact scans) until its new one is built in the background
    /// and swapped in; search-time settings (`ef_search`, `nprobe`, `rerank`) apply at
    /// once without a rebuild. The change is persisted in the manifest.
    pub fn set_index_config(&self, index: IndexConfig) -> Result<()> {
        index.validate(self.config.dimension)?;
        {
            let mut writer = self.writer.lock();
            self.check_writable()?;
            let mut manifest = writer.manifest.clone();
            manifest.config.index = index;
            manifest.write(&self.dir)?;
            writer.manifest = manifest;
            *self.index_config.write() = index;
            self.index_generation.fetch_add(1, Ordering::SeqCst);
            self.ivf_donor.clear();
            // Lists filed with the old quantisers would be searched with the new
            // `nprobe`: segments not indexed yet are scanned exactly until they are.
            let mut state = self.state.write();
            state.growing.drop_partition();
            for entry in &state.sealed {
                entry.segment.set_interim(None);
            }
        }
        for segment in &self.sealed_segments() {
            self.ensure_index(segment);
        }
        Ok(())
    }

    fn ensure_graph(&self, segment: &Arc<SealedSegment>, hnsw: HnswConfig) {
        let path = self.dir.join(index_file_name(segment.id()));
        if path.exists() {
            match read_index_file(&path, segment.len(), self.config.dimension, segment.nonce()) {
                Ok(index) if graph_fits(&index, &hnsw) => {
                    segment.set_index(SegmentIndex::Graph(index));
                    remove_index_files(&self.dir, segment.id(), Some(&path));
                    return;
                }
                // Damaged, or built with other parameters: rebuild (derived data).
                _ => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        self.build_in_background(segment, path, self.graph_build(hnsw));
    }

    /// The build of an HNSW graph (and its traversal encoding) for a segment: builds,
    /// writes the graph file at the given path, returns the index.
    fn graph_build(
        &self,
        hnsw: HnswConfig,
    ) -> impl FnOnce(&SealedSegment, &Path) -> Option<SegmentIndex> + Send + 'static {
        let (dim, metric, params) = (self.config.dimension, self.config.metric, hnsw.params());
        let encoding = hnsw.encoding;
        move |segment, path| {
            let view = VectorView {
                data: segment.vectors(),
                dim,
                metric,
            };
            let index = on_build_pool(|| SegmentGraph {
                hnsw: HnswIndex::build(view, params),
                encoded: (encoding != TraversalEncoding::F32)
                    .then(|| EncodedVectors::encode(view, encoding.to_index())),
                payload: PayloadGraphs::build(segment.payload_index(), view, params),
            });
            // A failed write only costs a rebuild at the next open.
            let _ = write_index_file(path, &index, segment.nonce());
            Some(SegmentIndex::Graph(index))
        }
    }

    /// Where the config wants IVF codes: in RAM, in the mapped files, or paged into the
    /// collection's list cache (made, or remade for a new budget, here).
    pub(crate) fn codes_at(&self) -> CodesAt {
        let Some(ivf) = self.index_config().ivf().filter(|c| c.on_disk) else {
            *self.list_cache.lock() = None;
            return CodesAt::Ram;
        };
        if ivf.cache_bytes == 0 {
            *self.list_cache.lock() = None;
            return CodesAt::Mapped;
        }
        let budget = usize::try_from(ivf.cache_bytes).unwrap_or(usize::MAX);
        let mut cache = self.list_cache.lock();
        match &*cache {
            Some(c) if c.budget() == budget => CodesAt::Paged(Arc::clone(c)),
            _ => {
                let fresh = ListCache::new(budget);
                *cache = Some(Arc::clone(&fresh));
                CodesAt::Paged(fresh)
            }
        }
    }

    /// The list cache's counters, when the config pages IVF codes into one.
    pub(crate) fn list_cache_info(&self) -> Option<super::ListCacheInfo> {
        let ivf = self.index_config().ivf()?;
        if !ivf.on_disk || ivf.cache_bytes == 0 {
            return None;
        }
        let cache = self.list_cache.lock();
        cache.as_ref().map(|c| c.stats().into())
    }

    fn ensure_ivf(&self, segment: &Arc<SealedSegment>, params: IvfParams, codes_at: CodesAt) {
        let path = self.dir.join(ivf_file_name(segment.id()));
        if path.exists() {
            match read_ivf_file(&path, segment.len(), segment.nonce(), &codes_at) {
                // nprobe and rerank are search-time settings; the rest shapes the file.
                Ok(index) if same_ivf_build(index.params(), &params, segment.len()) => {
                    index.prepare_search();
                    self.ivf_donor.restore(&index, segment.id());
                    segment.set_index(SegmentIndex::Ivf(index));
                    remove_index_files(&self.dir, segment.id(), Some(&path));
                    return;
                }
                _ => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        self.build_in_background(segment, path, self.ivf_build(params, codes_at, false));
    }

    /// The build of an inverted file for a segment (a sealed one, or a `merge`'s
    /// output): builds, writes the index file at the given path, returns the index
    /// (served from that file unless `codes_at` is RAM). The build takes the quantisers
    /// of the collection's last trained build when they fit ([`IvfDonor::get`]) and only
    /// files and encodes the rows; it trains instead when there are none, or when the rows
    /// drifted from them ([`REUSE_MAX_DRIFT`]), and its quantisers become the ones later
    /// builds reuse.
    fn ivf_build(
        &self,
        params: IvfParams,
        codes_at: CodesAt,
        merge: bool,
    ) -> impl FnOnce(&SealedSegment, &Path) -> Option<SegmentIndex> + Send + 'static {
        let (dim, metric) = (self.config.dimension, self.config.metric);
        let donor = Arc::clone(&self.ivf_donor);
        move |segment, path| {
            let view = VectorView {
                data: segment.vectors(),
                dim,
                metric,
            };
            // Parameters are validated against the dimension when the collection is
            // created; a build that still fails leaves the segment to exact scans.
            let reused = donor.get(&params, segment.len(), merge);
            let index = on_build_pool(|| {
                // `build_like` cannot fail (same dimension and metric); trained afresh
                // if it did.
                // Rows the interim partition filed with these quantisers keep their
                // lists (not assigned again).
                let filed = reused
                    .and_then(|quantisers| {
                        let lists = segment
                            .interim()
                            .filter(|p| {
                                Arc::ptr_eq(p.quantisers(), &quantisers)
                                    || p.quantisers().quantisers_id() == quantisers.quantisers_id()
                            })
                            .map_or_else(Vec::new, |p| p.row_lists(segment.len()));
                        quantisers.build_like_listed(view, &lists).ok()
                    })
                    .filter(|index| index.fit().drift().is_some_and(|d| d <= REUSE_MAX_DRIFT));
                match filed {
                    Some(index) => Ok(index),
                    None => IvfIndex::build(view, params).inspect(|index| {
                        donor.offer(index, segment.len());
                    }),
                }
            })
            .ok()?;
            debug_assert!(same_ivf_build(index.params(), &params, segment.len()));
            Some(serve_ivf(index, segment, path, &codes_at))
        }
    }

    /// Gives `output` — rows of merged or compacted `sources` (`places[i]` = the source
    /// and its row that output row `i` came from) — an inverted file made of the
    /// sources' codes copied list by list ([`IvfIndex::merged`]) instead of one trained
    /// and encoded anew, and writes its index file. Only when the config asks for an
    /// inverted file of the build every source has (same quantisers, not pq4) and the
    /// output's rows still fit them: their mean distance to their centroids at most
    /// [`REUSE_MAX_DRIFT`] times the training rows' (unknown after a restart: then it
    /// trains, as it does when the data drifted). Returns whether it did (else the
    /// caller builds).
    ///
    /// At 20k inserts/s into 1M rows, merges trained afresh kept a core busy (k-means
    /// over 262k sampled rows, then encoding every row) while queries ran.
    pub(crate) fn carry_ivf(
        &self,
        sources: &[Arc<SealedSegment>],
        places: &[(usize, u32)],
        output: &SealedSegment,
    ) -> bool {
        let Some(IndexPlan::Ivf(params)) = self.index_config().plan_for(output.len()) else {
            return false;
        };
        let indexes: Vec<Arc<SegmentIndex>> = sources.iter().filter_map(|s| s.index()).collect();
        if indexes.len() != sources.len() || places.len() != output.len() {
            return false;
        }
        let mut maps: Vec<Vec<u32>> = sources.iter().map(|s| vec![u32::MAX; s.len()]).collect();
        for (row, &(source, source_row)) in places.iter().enumerate() {
            match maps
                .get_mut(source)
                .and_then(|m| m.get_mut(source_row as usize))
            {
                Some(slot) => *slot = row as u32,
                None => return false,
            }
        }
        let mut parts = Vec::with_capacity(sources.len());
        for (index, map) in indexes.iter().zip(&maps) {
            match &**index {
                SegmentIndex::Ivf(ivf) if same_ivf_build(ivf.params(), &params, output.len()) => {
                    parts.push((ivf, map.as_slice()))
                }
                _ => return false,
            }
        }
        let Ok(merged) = IvfIndex::merged(&parts, output.len()) else {
            return false;
        };
        if !merged.fit().drift().is_some_and(|d| d <= REUSE_MAX_DRIFT) {
            return false;
        }
        let path = self.dir.join(ivf_file_name(output.id()));
        let codes_at = self.codes_at();
        output.advise_random_reads(!matches!(codes_at, CodesAt::Ram));
        output.set_index(serve_ivf(merged, output, &path, &codes_at));
        self.maintenance
            .ivf_codes_kept
            .fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Builds the index the config calls for on this thread (a merge's output, indexed
    /// before it is swapped in) and installs it.
    pub(crate) fn build_index_now(&self, segment: &SealedSegment) {
        let index = match self.index_config().plan_for(segment.len()) {
            None => None,
            Some(IndexPlan::Hnsw(hnsw)) => {
                let path = self.dir.join(index_file_name(segment.id()));
                self.graph_build(hnsw)(segment, &path)
            }
            Some(IndexPlan::Ivf(params)) => {
                let path = self.dir.join(ivf_file_name(segment.id()));
                let codes_at = self.codes_at();
                segment.advise_random_reads(!matches!(codes_at, CodesAt::Ram));
                self.ivf_build(params, codes_at, true)(segment, &path)
            }
        };
        if let Some(index) = index {
            segment.set_index(index);
        }
    }

    /// Installs on `output` — `source` rewritten without its rows in `dropped`, the others
    /// in order — the source's graph with those rows taken out ([`HnswIndex::compacted`])
    /// instead of a graph built anew, and writes its index file. Only when the source's
    /// graph is installed and built as the collection's index config says, and `output`
    /// should get a graph; returns whether it did (else the caller builds).
    ///
    /// Compacting a segment this way costs a fraction of a build (about the share of rows
    /// that linked to dropped ones, at a short repair beam): the background compaction
    /// of a large segment with a fifth of its rows deleted stops being a full rebuild.
    pub(crate) fn derive_graph(
        &self,
        source: &SealedSegment,
        dropped: &DeletedRows,
        output: &SealedSegment,
    ) -> bool {
        let Some(IndexPlan::Hnsw(hnsw)) = self.index_config().plan_for(output.len()) else {
            return false;
        };
        let Some(index) = source.index() else {
            return false;
        };
        let SegmentIndex::Graph(graph) = &*index else {
            return false;
        };
        if !graph_fits(graph, &hnsw) || source.len() - dropped.len() != output.len() {
            return false;
        }
        let (dim, metric) = (self.config.dimension, self.config.metric);
        let source_view = VectorView {
            data: source.vectors(),
            dim,
            metric,
        };
        let keep = |row: u32| !dropped.contains(row);
        let output_view = VectorView {
            data: output.vectors(),
            dim,
            metric,
        };
        let derived = on_build_pool(|| SegmentGraph {
            hnsw: graph
                .hnsw
                .compacted(source_view, &keep, COMPACTION_REPAIR_EF),
            encoded: (hnsw.encoding != TraversalEncoding::F32)
                .then(|| EncodedVectors::encode(output_view, hnsw.encoding.to_index())),
            // Rows are renumbered: the payload graphs are built anew (they are small).
            payload: PayloadGraphs::build(output.payload_index(), output_view, hnsw.params()),
        });
        // A failed write only costs a rebuild at the next open.
        let _ = write_index_file(
            &self.dir.join(index_file_name(output.id())),
            &derived,
            output.nonce(),
        );
        output.set_index(SegmentIndex::Graph(derived));
        self.maintenance.graphs_kept.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The sealed segments, oldest first.
    fn sealed_segments(&self) -> Vec<Arc<SealedSegment>> {
        let state = self.state.read();
        state.sealed.iter().map(|e| e.segment.clone()).collect()
    }

    /// Queues `build` on the index-builder thread; its result is installed unless the
    /// segment was retired meanwhile (then its file, written at `path`, is removed).
    fn build_in_background(
        &self,
        segment: &Arc<SealedSegment>,
        path: PathBuf,
        build: impl FnOnce(&SealedSegment, &std::path::Path) -> Option<SegmentIndex> + Send + 'static,
    ) {
        let builds = self.index_builds.clone();
        let segment = segment.clone();
        let generation = self.index_generation.clone();
        let started_at = generation.load(Ordering::SeqCst);
        let dir = self.dir.clone();
        let maintenance = self.maintenance.clone();
        builds.start();
        let queued = segment.queue_build();
        let job: BuildJob = Box::new(move || {
            let _done = FinishOnDrop(builds);
            // Merges wait for the segment's build: once it ended, the worker looks again.
            let _wake = WakeOnDrop(maintenance, Some(queued));
            let stale = || generation.load(Ordering::SeqCst) != started_at;
            // A retired segment (replaced by compaction while queued) needs no index, and
            // a build for an index config changed since is superseded.
            if segment.is_retired() || stale() {
                return;
            }
            let index = build(&segment, &path);
            // Compaction may have replaced the segment meanwhile; it removes the index
            // files it knows of, and this one may have landed after it looked. Checking
            // after the write covers both orders.
            if segment.is_retired() {
                let _ = std::fs::remove_file(&path);
                return;
            }
            if let Some(index) = index {
                // The config may have changed during the build: its own ensure_index
                // either queued a build behind this one or found nothing to do, so a
                // stale result is dropped (its file is checked against the new config
                // at the next open).
                if !stale() {
                    segment.set_index(index);
                    remove_index_files(&dir, segment.id(), Some(&path));
                }
            }
        });
        submit(job);
    }

    /// Blocks until the maintenance worker has nothing due (seals, merges, compactions
    /// done) and every background index build started so far has finished. Searches do
    /// not need this (they scan unindexed segments exactly); benchmarks and tests do.
    pub fn wait_for_indexes(&self) {
        loop {
            self.wait_for_maintenance();
            {
                let mut pending = self.index_builds.pending.lock();
                while *pending > 0 {
                    self.index_builds.idle.wait(&mut pending);
                }
            }
            // A merge may have waited for a build that just landed: its end woke the
            // worker (before the count dropped), which may be running that merge now.
            if !self.maintenance.busy() && !self.maintenance_due() {
                return;
            }
        }
    }

    /// Background index builds in flight.
    pub fn pending_index_builds(&self) -> usize {
        self.index_builds.pending()
    }
}

/// Whether an inverted file built with `built` serves a segment of `rows` rows asking for
/// `wanted` (search-time settings aside).
fn same_ivf_build(built: &IvfParams, wanted: &IvfParams, rows: usize) -> bool {
    built.codec == wanted.codec
        && built.nlist == wanted.nlist.min(rows).max(1)
        && built.train_iterations == wanted.train_iterations
        && built.balanced == wanted.balanced
}

/// How far a segment's rows may have drifted from reused quantisers (the donor's, or a
/// merge's sources') and still be filed with them: the rows' mean squared distance to
/// their centroids over the training rows' ([`paradox_index::IvfFit::drift`]). Beyond
/// it the build trains afresh.
pub(crate) const REUSE_MAX_DRIFT: f32 = 1.25;

/// Writes `index`'s file at `path` and returns it as `segment`'s index: served from that
/// file unless `codes_at` keeps codes in RAM (the codes then leave RAM).
fn serve_ivf(
    index: IvfIndex,
    segment: &SealedSegment,
    path: &Path,
    codes_at: &CodesAt,
) -> SegmentIndex {
    let written = write_ivf_file(path, &index, segment.nonce());
    // What its first search would otherwise make (codes in RAM only; a no-op for the rest).
    on_build_pool(|| index.prepare_search());
    if !matches!(codes_at, CodesAt::Ram) && written.is_ok() {
        // On the build pool: with many lists the read rebuilds the coarse graph.
        let read = || read_ivf_file(path, segment.len(), segment.nonce(), codes_at);
        if let Ok(on_disk) = on_build_pool(read) {
            return SegmentIndex::Ivf(on_disk);
        }
    }
    SegmentIndex::Ivf(index)
}

/// Whether a graph was built with the parameters `hnsw` asks for (search-time settings
/// aside).
fn graph_fits(graph: &SegmentGraph, hnsw: &HnswConfig) -> bool {
    graph.hnsw.params().m == hnsw.m
        && graph.hnsw.params().ef_construction == hnsw.ef_construction
        && graph.encoded.as_ref().map(|e| e.encoding())
            == (hnsw.encoding != TraversalEncoding::F32).then(|| hnsw.encoding.to_index())
}

/// Removes segment `id`'s index files except `keep` (an index of another kind, or of a
/// config no longer in force, is derived data nobody will read).
fn remove_index_files(dir: &Path, id: u64, keep: Option<&Path>) {
    for name in index_file_names(id) {
        let path = dir.join(name);
        if Some(path.as_path()) != keep {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{CollectionConfig, EngineOptions, IndexConfig, IvfConfig};
    use crate::point::{NewPoint, PointId};
    use crate::segment::SegmentIndex;
    use crate::FsyncPolicy;
    use crate::{Metric, SearchRequest};
    use paradox_index::IvfIndex;
    use std::sync::Arc;

    fn ivf_of(index: Option<Arc<SegmentIndex>>) -> Arc<SegmentIndex> {
        let index = index.expect("segment indexed");
        assert!(matches!(*index, SegmentIndex::Ivf(_)));
        index
    }

    fn quantisers(index: &SegmentIndex) -> &IvfIndex {
        match index {
            SegmentIndex::Ivf(ivf) => ivf,
            SegmentIndex::Graph(_) => unreachable!("checked by ivf_of"),
        }
    }

    /// Distinct 8-d vectors around 5 centres.
    fn point(i: u64) -> NewPoint {
        let v: Vec<f32> = (0..8u64)
            .map(|d| {
                let h = (i * 8 + d).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
                (i % 5) as f32 * 10.0 + h as f32 / (1u64 << 24) as f32
            })
            .collect();
        NewPoint::new(i, v)
    }

    /// An `ivf_pq` collection (16 lists, nprobe 4) sealing just past the rows a donor
    /// needs, with no maintenance worker.
    fn ivf_collection(dir: &std::path::Path) -> Arc<super::Collection> {
        let options = EngineOptions {
            fsync: FsyncPolicy::Never,
            seal_threshold: super::REUSE_MIN_TRAINED_ROWS + 100,
            maintenance_worker: false,
            ..Default::default()
        };
        let config = CollectionConfig {
            index: IndexConfig::IvfPq(IvfConfig {
                nlist: 16,
                nprobe: 4,
                m: 4,
                rerank: 8,
                ..IvfConfig::default()
            }),
            ..CollectionConfig::new("v", 8, Metric::L2)
        };
        super::Collection::create(&dir.join("v"), config, options).unwrap()
    }

    /// An [`ivf_collection`] holding three sealed, indexed segments of `rows` points each
    /// (ids `0..3 * rows`); returns it and `rows`.
    fn three_indexed_segments(dir: &std::path::Path) -> (Arc<super::Collection>, u64) {
        let col = ivf_collection(dir);
        let rows = super::REUSE_MIN_TRAINED_ROWS as u64 + 100;
        for batch in 0..3u64 {
            col.upsert((batch * rows..(batch + 1) * rows).map(point).collect())
                .unwrap();
            col.wait_for_indexes();
        }
        (col, rows)
    }

    /// The write pool runs the work (nested calls included, on the same thread) and
    /// hands its result back; on Linux its threads run below the caller's priority.
    #[test]
    fn the_write_pool_runs_work_below_the_callers_priority() {
        assert_eq!(super::on_write_pool(|| super::on_write_pool(|| 7)), 7);
        #[cfg(target_os = "linux")]
        {
            // SAFETY: `getpriority` on the calling thread's id only reads its nice value.
            let nice =
                || unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
            let caller = nice();
            let pooled = super::on_write_pool(nice);
            assert_eq!(pooled, (caller + 10).min(19), "caller at {caller}");
        }
    }

    /// A segment whose index build is queued or running takes no part in merges (a merge
    /// would build its rows again from scratch instead of carrying their codes); once
    /// the build ended it does again.
    #[test]
    fn merges_wait_for_queued_builds() {
        let dir = tempfile::tempdir().unwrap();
        let (col, rows) = three_indexed_segments(dir.path());
        col.upsert((3 * rows..4 * rows).map(point).collect())
            .unwrap();
        col.wait_for_indexes();
        let segments = col.sealed_segments();
        let all: Vec<u64> = segments.iter().map(|s| s.id()).collect();
        let planned = |col: &super::Collection| -> Vec<u64> {
            col.planned_jobs()
                .iter()
                .flat_map(|job| job.sources())
                .collect()
        };
        // Four small segments of one tier (the merge factor): a merge of them is due.
        assert!(!planned(&col).is_empty());
        let queued = segments[1].queue_build();
        assert!(segments[1].build_queued());
        assert!(!planned(&col).contains(&all[1]));
        drop(queued);
        assert!(!segments[1].build_queued());
        assert!(planned(&col).contains(&all[1]));
    }

    /// Segments with the same quantisers are searched as a group (`ivf_group`): each
    /// point is found by its own vector, deleted rows of a grouped segment are skipped,
    /// and so are those of a segment with too many deletions to be grouped (searched on
    /// its own).
    #[test]
    fn grouped_segments_find_their_points_and_skip_deleted_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (col, rows) = three_indexed_segments(dir.path());
        // A few deletions in the first segment (grouped), half of the last (on its own).
        let deleted: Vec<u64> = (0..5u64).chain((2 * rows..3 * rows).step_by(2)).collect();
        col.delete(&deleted.iter().map(|&i| i.into()).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(col.state.read().sealed.len(), 3, "no compaction ran");
        for &i in deleted.iter().take(8).chain(deleted.iter().rev().take(8)) {
            let request = SearchRequest::new(point(i).vector, 10);
            let hits = col.search(&request).unwrap();
            assert_eq!(hits.len(), 10);
            assert!(
                hits.iter()
                    .all(|h| deleted.iter().all(|&d| h.id != PointId::Num(d))),
                "a deleted point came back for point {i}"
            );
        }
        for i in (5..3 * rows).step_by(97).filter(|i| !deleted.contains(i)) {
            let hits = col
                .search(&SearchRequest::new(point(i).vector, 10))
                .unwrap();
            assert!(hits.iter().any(|h| h.id == i.into()), "point {i}");
        }
    }

    /// Segments sealed after the first reuse its trained quantisers; a merge trains afresh
    /// and its quantisers are the ones reused next.
    #[test]
    fn sealed_segments_reuse_the_last_trained_quantisers() {
        let dir = tempfile::tempdir().unwrap();
        let (col, rows) = three_indexed_segments(dir.path());
        let sealed: Vec<_> = col
            .state
            .read()
            .sealed
            .iter()
            .map(|e| ivf_of(e.segment.index()))
            .collect();
        assert_eq!(sealed.len(), 3);
        assert!(quantisers(&sealed[0]).same_quantisers(quantisers(&sealed[1])));
        assert!(quantisers(&sealed[0]).same_quantisers(quantisers(&sealed[2])));
        // Every point is found by its own vector through the reused quantisers.
        for i in [0u64, rows + 7, 3 * rows - 1] {
            let mut request = SearchRequest::new(point(i).vector, 1);
            request.with_payload = false;
            let hits = col.search(&request).unwrap();
            assert_eq!(hits[0].id, i.into(), "point {i}");
        }
        // Compaction rewrites a segment with deleted rows: it keeps its codes (the rows
        // did not drift), so every segment still shares the quantisers the next seal
        // reuses. (A merge that trains afresh: `merges_keep_shared_codes_unless_...`.)
        col.delete(&[0u64.into(), 1u64.into()]).unwrap();
        col.compact().unwrap();
        col.wait_for_indexes();
        assert_eq!(col.maintenance_info().ivf_codes_kept, 1);
        assert!(col.state.read().sealed.iter().all(
            |e| quantisers(&ivf_of(e.segment.index())).same_quantisers(quantisers(&sealed[0]))
        ));
        let merged = sealed[0].clone();
        col.upsert((3 * rows..4 * rows).map(point).collect())
            .unwrap();
        col.wait_for_indexes();
        let last = ivf_of(col.state.read().sealed.last().unwrap().segment.index());
        assert!(quantisers(&last).same_quantisers(quantisers(&merged)));
        // A segment with fewer rows than lists gets the lists a fresh build would give it
        // (one per row), not the donor's, and does not become the donor.
        col.upsert((4 * rows..4 * rows + 10).map(point).collect())
            .unwrap();
        col.flush().unwrap();
        col.wait_for_indexes();
        let small = ivf_of(col.state.read().sealed.last().unwrap().segment.index());
        assert_eq!(quantisers(&small).nlist(), 10);
        assert!(!quantisers(&small).same_quantisers(quantisers(&merged)));
        col.upsert((5 * rows..6 * rows).map(point).collect())
            .unwrap();
        col.wait_for_indexes();
        let next = ivf_of(col.state.read().sealed.last().unwrap().segment.index());
        assert!(quantisers(&next).same_quantisers(quantisers(&merged)));
    }

    /// After a reopen, the quantisers read from the newest inverted file are the donor:
    /// new rows are filed in their lists at once and the next seal reuses them (no
    /// training).
    #[test]
    fn a_reopened_collection_reuses_the_quantisers_of_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let (col, rows) = three_indexed_segments(dir.path());
        let first = ivf_of(col.state.read().sealed[0].segment.index());
        let options = col.options.clone();
        drop(col);
        let col = super::Collection::open(&dir.path().join("v"), options).unwrap();
        col.wait_for_indexes();
        let donor = col.ivf_donor.current().expect("restored from the files");
        assert!(donor.same_quantisers(quantisers(&first)));
        col.upsert((3 * rows..3 * rows + 500).map(point).collect())
            .unwrap();
        assert!(col.state.read().growing.partition().is_some());
        col.upsert((3 * rows + 500..4 * rows).map(point).collect())
            .unwrap();
        col.wait_for_indexes();
        let last = ivf_of(col.state.read().sealed.last().unwrap().segment.index());
        assert!(quantisers(&last).same_quantisers(quantisers(&first)));
        // A donor read from an older segment gives way to a newer one, never to a build's.
        let d = super::IvfDonor::default();
        let read_from = || d.0.lock().as_ref().and_then(|donor| donor.read_from);
        let a = quantisers(&first);
        d.restore(a, 5);
        d.restore(a, 3);
        assert_eq!(read_from(), Some(5));
        d.restore(a, 9);
        assert_eq!(read_from(), Some(9));
        d.offer(a, super::REUSE_MIN_TRAINED_ROWS);
        d.restore(a, 12);
        assert!(d.current().is_some() && read_from().is_none());
    }

    /// The donor serves a seal only up to twice the rows it was trained on, a merge's
    /// output at any size (its rows were filed with the donor already; the build's drift
    /// check decides), and never a build of another codec or list count.
    #[test]
    fn the_donor_serves_merges_of_any_size() {
        let trained = super::REUSE_MIN_TRAINED_ROWS;
        let data: Vec<f32> = (0..trained as u64).flat_map(|i| point(i).vector).collect();
        let params = paradox_index::IvfParams {
            nlist: 16,
            codec: paradox_index::IvfCodec::Pq { m: 4 },
            ..Default::default()
        };
        let view = paradox_index::VectorView {
            data: &data,
            dim: 8,
            metric: Metric::L2,
        };
        let index = IvfIndex::build(view, params).unwrap();
        let donor = super::IvfDonor::default();
        assert!(
            donor.get(&params, trained, false).is_none(),
            "nothing offered yet"
        );
        donor.offer(&index, trained);
        assert!(donor.get(&params, 2 * trained, false).is_some());
        assert!(donor.get(&params, 2 * trained + 1, false).is_none());
        let big = donor
            .get(&params, 10 * trained, true)
            .expect("a merge takes the donor");
        assert!(big.same_quantisers(&index));
        let other = paradox_index::IvfParams {
            nlist: 32,
            ..params
        };
        assert!(donor.get(&other, 10 * trained, true).is_none());
    }

    /// A merge of segments filed with the same quantisers copies their codes (no
    /// training, no encoding); one whose rows drifted from them trains afresh.
    #[test]
    fn merges_keep_shared_codes_unless_the_rows_drifted() {
        let dir = tempfile::tempdir().unwrap();
        let (col, rows) = three_indexed_segments(dir.path());
        let ids = |col: &super::Collection| -> Vec<u64> {
            col.state
                .read()
                .sealed
                .iter()
                .map(|e| e.segment.id())
                .collect()
        };
        let donor = ivf_of(col.state.read().sealed[0].segment.index());
        // Two segments, a few rows deleted: merged by copying codes.
        col.delete(&[(rows + 1).into(), (2 * rows + 2).into()])
            .unwrap();
        col.flush().unwrap();
        let before = ids(&col);
        col.merge(&before[1..3], usize::MAX).unwrap().unwrap();
        assert_eq!(col.maintenance_info().ivf_codes_kept, 1);
        let merged = ivf_of(col.state.read().sealed.last().unwrap().segment.index());
        assert!(quantisers(&merged).same_quantisers(quantisers(&donor)));
        assert_eq!(quantisers(&merged).len() as u64, 2 * rows - 2);
        // (k = 3: the test points have near-twins 1e-8 away.)
        let found = |col: &super::Collection, v: Vec<f32>, i: u64| {
            let hits = col.search(&SearchRequest::new(v, 3)).unwrap();
            hits.iter().any(|h| h.id == i.into())
        };
        for i in [rows, rows + 7, 2 * rows - 1, 2 * rows, 3 * rows - 1] {
            assert!(found(&col, point(i).vector, i), "point {i} after the merge");
        }
        let mut request = SearchRequest::new(point(rows + 1).vector, 1);
        request.params.exact = true;
        assert_ne!(col.search(&request).unwrap()[0].id, (rows + 1).into());
        drop(merged);
        // Rows far from every centroid: the build of their segment tries the shared
        // quantisers, finds the rows drifted and trains its own; a merge with them
        // trains anew as well.
        let far = |i: u64| {
            let mut p = point(i);
            p.vector.iter_mut().for_each(|x| *x = *x * 3.0 + 500.0);
            p
        };
        col.upsert((3 * rows..4 * rows).map(far).collect()).unwrap();
        col.wait_for_indexes();
        let last = ivf_of(col.state.read().sealed.last().unwrap().segment.index());
        assert!(!quantisers(&last).same_quantisers(quantisers(&donor)));
        let now = ids(&col);
        col.merge(&now[now.len() - 2..], usize::MAX)
            .unwrap()
            .unwrap();
        assert_eq!(col.maintenance_info().ivf_codes_kept, 1);
        let retrained = ivf_of(col.state.read().sealed.last().unwrap().segment.index());
        assert!(!quantisers(&retrained).same_quantisers(quantisers(&donor)));
        assert!(!quantisers(&retrained).same_quantisers(quantisers(&last)));
        for i in [rows + 7, 3 * rows + 5] {
            let v = if i >= 3 * rows {
                far(i).vector
            } else {
                point(i).vector
            };
            let hits = col.search(&SearchRequest::new(v, 1)).unwrap();
            assert_eq!(hits[0].id, i.into(), "point {i} after the retrained merge");
        }
    }

    /// A seal maps the next growing segment's pages ahead; once writes pause, the
    /// maintenance gives them back (after a second look finds no write since the first,
    /// here with no minimum pause), and writing again works as before.
    #[test]
    #[cfg(target_os = "linux")]
    fn pages_mapped_ahead_are_given_back_once_writes_pause() {
        let dir = tempfile::tempdir().unwrap();
        let col = ivf_collection(dir.path());
        let rows = super::REUSE_MIN_TRAINED_ROWS as u64 + 100;
        // Past the threshold: sealed on this thread (no worker), the next segment mapped.
        col.upsert((0..rows).map(point).collect()).unwrap();
        let resident = || col.state.read().growing.resident_spare_pages();
        let mapped = resident();
        assert!(mapped > 100, "{mapped} pages mapped ahead");
        col.release_idle_memory(std::time::Duration::ZERO);
        assert_eq!(resident(), mapped, "released on the first look");
        col.upsert(vec![point(rows)]).unwrap();
        col.release_idle_memory(std::time::Duration::ZERO);
        assert!(resident() + 2 >= mapped, "released right after a write");
        col.release_idle_memory(std::time::Duration::ZERO);
        assert!(resident() < 4, "{} pages still resident", resident());
        col.upsert((rows + 1..rows + 500).map(point).collect())
            .unwrap();
        for i in [rows, rows + 1, rows + 499] {
            let hits = col.search(&SearchRequest::new(point(i).vector, 1)).unwrap();
            assert_eq!(hits[0].id, i.into());
        }
    }

    /// New points go in while a search holds the state (under its read lock): a stream
    /// of inserts never makes searches wait. A write that replaces stored rows waits for
    /// the search, so no search sees a point twice or not at all.
    #[test]
    fn new_points_go_in_while_a_search_holds_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let col = ivf_collection(dir.path());
        let rows = super::REUSE_MIN_TRAINED_ROWS as u64 + 100;
        col.upsert((0..rows).map(point).collect()).unwrap();
        col.wait_for_indexes();
        let upsert_in_background = |ids: std::ops::Range<u64>| {
            let (col, (tx, rx)) = (col.clone(), std::sync::mpsc::channel());
            std::thread::spawn(move || tx.send(col.upsert(ids.map(point).collect())));
            rx
        };
        let search = col.state.read();
        let done = upsert_in_background(rows..rows + 2_000)
            .recv_timeout(std::time::Duration::from_secs(60));
        assert_eq!(done.unwrap().unwrap().count, 2_000);
        assert_eq!(search.growing.len(), 2_000);
        let partition = search.growing.partition().expect("rows filed");
        assert_eq!(partition.unassigned(), 0);
        let replacing = upsert_in_background(5..6);
        assert!(replacing
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err());
        drop(search);
        replacing
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap()
            .unwrap();
        for i in (rows..rows + 2_000).step_by(97).chain([5]) {
            let hits = col.search(&SearchRequest::new(point(i).vector, 1)).unwrap();
            assert_eq!(hits[0].id, i.into(), "point {i}");
        }
        assert_eq!(col.info().points, rows as usize + 2_000);
    }

    /// Once trained quantisers exist, new rows are filed in their lists as they are
    /// written: the growing segment, then the frozen one, are searched through those lists
    /// (not scanned whole), every new point is found by its own vector, and the lists are
    /// dropped once the segment's index is installed.
    #[test]
    fn new_rows_are_searched_through_the_trained_lists() {
        let dir = tempfile::tempdir().unwrap();
        let col = ivf_collection(dir.path());
        let rows = super::REUSE_MIN_TRAINED_ROWS as u64 + 100;
        // No quantisers yet: nothing is filed.
        col.upsert((0..rows).map(point).collect()).unwrap();
        col.wait_for_indexes();
        assert!(col.state.read().growing.partition().is_none());
        col.upsert((rows..rows + 2_000).map(point).collect())
            .unwrap();
        {
            let state = col.state.read();
            let partition = state.growing.partition().expect("rows filed");
            assert_eq!((partition.nlist(), partition.unassigned()), (16, 0));
        }
        let found = |col: &super::Collection, i: u64| {
            let hits = col.search(&SearchRequest::new(point(i).vector, 1)).unwrap();
            hits[0].id == i.into()
        };
        for i in (rows..rows + 2_000).step_by(97) {
            assert!(found(&col, i), "point {i} in the growing segment");
        }
        // The lists are what is searched: with nprobe 1 and a k above every candidate,
        // the new rows returned are exactly those filed in the query's nearest list (a
        // whole scan would return every new row among its best k).
        let query = point(rows + 7).vector;
        let filed = {
            let state = col.state.read();
            state
                .growing
                .partition()
                .unwrap()
                .candidates(&query, 1, usize::MAX)
                .len()
        };
        assert!(
            filed > 0 && filed < 2_000,
            "{filed} rows in the nearest list"
        );
        let mut request = SearchRequest::new(query, crate::MAX_K);
        request.params.nprobe = Some(1);
        let new_hits = col
            .search(&request)
            .unwrap()
            .iter()
            .filter(|hit| (rows..rows + 2_000).any(|i| hit.id == i.into()))
            .count();
        assert_eq!(new_hits, filed);
        request.params.exact = true;
        let scanned = col.search(&request).unwrap();
        let new_exact = scanned
            .iter()
            .filter(|hit| (rows..rows + 2_000).any(|i| hit.id == i.into()))
            .count();
        assert!(
            new_exact > filed,
            "an exact scan reaches {new_exact} new rows"
        );
        // A deleted row is not returned through its list; its replacement is.
        col.delete(&[(rows + 7).into()]).unwrap();
        assert!(
            !found(&col, rows + 7),
            "deleted point {} came back",
            rows + 7
        );
        col.upsert(vec![point(rows + 7)]).unwrap();
        assert!(found(&col, rows + 7), "re-inserted point {}", rows + 7);
        // Frozen: the same lists serve it.
        // (What a seal's first phase does.)
        let id = {
            let mut writer = col.writer.lock();
            writer.next_segment_id += 1;
            writer.next_segment_id - 1
        };
        let shape = col.state.read().growing_shape();
        let next = crate::collection::State::next_growing(shape);
        col.state.write().freeze_growing(id, Some(next));
        {
            let state = col.state.read();
            assert!(state.growing.partition().is_none());
            assert!(state.sealed.last().unwrap().segment.interim().is_some());
        }
        for i in (rows..rows + 2_000).step_by(89) {
            assert!(found(&col, i), "point {i} in the frozen segment");
        }
        // An index config change drops the lists filed with the old quantisers.
        col.set_index_config(col.index_config()).unwrap();
        {
            let state = col.state.read();
            assert!(state.sealed.last().unwrap().segment.interim().is_none());
        }
        for i in (rows..rows + 2_000).step_by(89) {
            assert!(found(&col, i), "point {i} scanned exactly");
        }
        // Written and indexed: the lists are dropped.
        col.flush().unwrap();
        col.wait_for_indexes();
        let state = col.state.read();
        for entry in &state.sealed {
            assert!(entry.segment.interim().is_none());
            ivf_of(entry.segment.index());
        }
    }
}
