//! Migration: re-encoding points from one space into another in the background, most
//! valuable points first, rate-limited and resumable.
//!
//! A run plans first: it reads the source space's points (ids, payloads, timestamps)
//! and keeps those the target lacks or holds an older copy of, ordered by priority
//! (access counts since open, recency, an importance field). Then it works through the
//! plan in batches: text → the target's encoder; no text but an adapter → a provisional
//! vector mapped through it; neither → skipped. Progress is written to the state document
//! about once a second. Resuming is running again: the plan skips what is done.
//!
//! A point deleted while its batch is in flight may leave a copy in the target; each
//! batch re-checks the source after writing and deletes such copies.

use super::state::{MigrationPhase, MigrationStatus, SpaceState};
use super::{encoded_point, for_each_page, invalid, now_millis, LivingCollection};
use crate::error::{LifecycleError, Result};
use crate::VectorMap;
use paradox_engine::{NewPoint, Point, PointId, ScrollRequest};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How much each signal weighs in a point's migration priority (each signal is scaled
/// to 0..1 over the collection first).
#[derive(Debug, Clone, PartialEq)]
pub struct PriorityWeights {
    /// Hits returned by searches since the collection was opened.
    pub access: f64,
    /// Last write time.
    pub recency: f64,
    /// A numeric payload field (`importance_field`).
    pub importance: f64,
    /// The payload field read by `importance`.
    pub importance_field: Option<String>,
}

impl Default for PriorityWeights {
    fn default() -> Self {
        PriorityWeights {
            access: 1.0,
            recency: 0.5,
            importance: 1.0,
            importance_field: None,
        }
    }
}

/// A migration to start.
#[derive(Debug, Clone)]
pub struct MigrationOptions {
    /// Source space (default: the first space).
    pub from: Option<String>,
    /// Target space (must have an encoder, or an adapter from the source).
    pub to: String,
    /// Points per batch (1 to 10,000; default 256).
    pub batch_size: usize,
    /// Most points per second (`None`: as fast as the encoder goes).
    pub rate_limit: Option<f64>,
    /// Coverage at which the target becomes the default space (0 to 1; default 0.95;
    /// above 1 never).
    pub switch_at: f64,
    /// Priority.
    pub weights: PriorityWeights,
}

impl MigrationOptions {
    /// A migration into `to` with the defaults.
    pub fn to(to: impl Into<String>) -> Self {
        MigrationOptions {
            from: None,
            to: to.into(),
            batch_size: 256,
            rate_limit: None,
            switch_at: 0.95,
            weights: PriorityWeights::default(),
        }
    }
}

/// A running job.
#[derive(Debug)]
pub(crate) struct JobHandle {
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<MigrationStatus>>,
    thread: Option<JoinHandle<()>>,
}

impl JobHandle {
    /// Asks the job to stop after its batch and waits for it (unless called from the job
    /// itself, which then just stops).
    pub(crate) fn stop_and_join(mut self) {
        self.stop.store(true, Ordering::Release);
        self.join();
    }

    fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }

    /// Whether the job has ended. A job whose status already left `Running` is only
    /// saving that status: it is waited for, so a caller that sees "done" over the
    /// status endpoint is never refused as if the migration still ran. (The job takes
    /// only `state_write` from here on; callers must not hold it.)
    fn finished(&mut self) -> bool {
        if self.status.lock().phase != MigrationPhase::Running {
            self.join();
        }
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// The job's latest status.
    pub(crate) fn status(&self) -> MigrationStatus {
        self.status.lock().clone()
    }

    /// The spaces (from, to) the job reads and writes, while it runs.
    pub(crate) fn running_spaces(&mut self) -> Option<(String, String)> {
        if self.finished() {
            return None;
        }
        let status = self.status.lock();
        Some((status.from.clone(), status.to.clone()))
    }
}

impl LivingCollection {
    /// Starts migrating points into `options.to` in a background thread. Fails if one
    /// is running. Returns the status at start.
    pub fn migrate(self: &Arc<Self>, options: MigrationOptions) -> Result<MigrationStatus> {
        if options.batch_size == 0 || options.batch_size > super::MAX_WRITE_BATCH {
            return Err(invalid(format!(
                "batch_size must be 1 to {}, got {}",
                super::MAX_WRITE_BATCH,
                options.batch_size
            )));
        }
        if let Some(rate) = options.rate_limit {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(invalid(format!(
                    "rate_limit must be a positive number, got {rate}"
                )));
            }
        }
        if !(options.switch_at.is_finite() && options.switch_at >= 0.0) {
            return Err(invalid(format!(
                "switch_at must be 0 or more, got {}",
                options.switch_at
            )));
        }
        let mut job = self.job.lock();
        if job.as_mut().is_some_and(|j| !j.finished()) {
            return Err(invalid("a migration is already running"));
        }
        let (from, to) = {
            let state = self.state.read();
            let from = options
                .from
                .clone()
                .unwrap_or_else(|| state.spaces[0].name.clone());
            (
                state.space(&from)?.clone(),
                state.space(&options.to)?.clone(),
            )
        };
        if from.name == to.name {
            return Err(invalid("a migration needs two different spaces"));
        }
        let has_adapter = self.adapter(&from.name, &to.name)?.is_some();
        if to.encoder.is_none() && !has_adapter {
            return Err(invalid(format!(
                "space `{}` has no encoder and there is no adapter from `{}`: nothing can \
                 fill it",
                to.name, from.name
            )));
        }
        let plan = plan(self, &from, &to, &options.weights)?;
        let status = MigrationStatus {
            from: from.name.clone(),
            to: to.name.clone(),
            phase: MigrationPhase::Running,
            pending_at_start: plan.len(),
            reencoded: 0,
            adapted: 0,
            skipped: 0,
            coverage: self.coverage(&to.name)?,
            switch_at: options.switch_at,
            switched: false,
            rate_limit: options.rate_limit,
            started_at: now_millis(),
            updated_at: now_millis(),
            error: None,
        };
        self.save_status(&status)?;
        let shared = Arc::new(Mutex::new(status.clone()));
        let stop = Arc::new(AtomicBool::new(false));
        let weak = Arc::downgrade(self);
        let thread = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("migrate-{}", self.name))
                .spawn(move || run(weak, from, to, plan, options, shared, stop))
                .map_err(|e| LifecycleError::Numerical(format!("cannot start a thread: {e}")))?
        };
        *job = Some(JobHandle {
            stop,
            status: shared,
            thread: Some(thread),
        });
        Ok(status)
    }

    /// The running or last migration's progress.
    pub fn migration_status(&self) -> Option<MigrationStatus> {
        if let Some(job) = self.job.lock().as_ref() {
            return Some(job.status.lock().clone());
        }
        self.state.read().migration.clone()
    }

    /// Stops a running migration after its current batch (it can be resumed by calling
    /// `migrate` again); returns once it stopped.
    pub fn pause_migration(&self) {
        if let Some(job) = self.job.lock().take() {
            job.stop_and_join();
        }
    }

    /// Waits until the running migration (if any) ends, and returns its final status.
    pub fn wait_for_migration(&self) -> Option<MigrationStatus> {
        let mut job = self.job.lock();
        if let Some(job) = job.as_mut() {
            job.join();
        }
        drop(job);
        self.migration_status()
    }

    pub(crate) fn job_running(&self) -> bool {
        self.job.lock().as_mut().is_some_and(|j| !j.finished())
    }

    fn save_status(&self, status: &MigrationStatus) -> Result<()> {
        let _guard = self.state_write.lock();
        self.update_state(|s| {
            s.migration = Some(status.clone());
            Ok(())
        })
    }
}

/// Points `from` holds that `to` lacks or holds older, most valuable first.
fn plan(
    living: &LivingCollection,
    from: &SpaceState,
    to: &SpaceState,
    weights: &PriorityWeights,
) -> Result<Vec<PointId>> {
    let source = living.engine.collection(&from.collection)?;
    let target = living.engine.collection(&to.collection)?;
    let access = living.access.lock().clone();
    struct Row {
        id: PointId,
        access: f64,
        updated_at: i64,
        importance: f64,
    }
    let mut rows = Vec::new();
    for_each_page(&source, false, |page| {
        let ids: Vec<PointId> = page.iter().map(|p| p.id.clone()).collect();
        let have = target.get(&ids)?;
        for (p, t) in page.iter().zip(have) {
            if t.is_some_and(|t| t.updated_at >= p.updated_at) {
                continue;
            }
            let importance = weights
                .importance_field
                .as_ref()
                .and_then(|f| p.payload.get(f))
                .and_then(|v| v.as_f64())
                .filter(|x| x.is_finite())
                .unwrap_or(0.0);
            rows.push(Row {
                id: p.id.clone(),
                access: f64::from(access.get(&p.id).copied().unwrap_or(0)),
                updated_at: p.updated_at,
                importance,
            });
        }
        Ok(())
    })?;
    let max_access = rows.iter().map(|r| r.access).fold(0.0, f64::max);
    let (t_min, t_max) = rows.iter().fold((i64::MAX, i64::MIN), |(lo, hi), r| {
        (lo.min(r.updated_at), hi.max(r.updated_at))
    });
    let max_importance = rows.iter().map(|r| r.importance.abs()).fold(0.0, f64::max);
    let scale = |x: f64, max: f64| if max > 0.0 { x / max } else { 0.0 };
    let mut scored: Vec<(f64, PointId)> = rows
        .into_iter()
        .map(|r| {
            let recency = if t_max > t_min {
                (r.updated_at - t_min) as f64 / (t_max - t_min) as f64
            } else {
                0.0
            };
            let priority = weights.access * scale(r.access.ln_1p(), max_access.ln_1p())
                + weights.recency * recency
                + weights.importance * scale(r.importance, max_importance);
            (priority, r.id)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    Ok(scored.into_iter().map(|(_, id)| id).collect())
}

/// What a batch did.
#[derive(Debug, Default)]
struct BatchOutcome {
    reencoded: usize,
    adapted: usize,
    skipped: usize,
}

/// Migrates one batch of ids.
fn migrate_batch(
    living: &LivingCollection,
    from: &SpaceState,
    to: &SpaceState,
    ids: &[PointId],
) -> Result<BatchOutcome> {
    let source = living.engine.collection(&from.collection)?;
    let target = living.engine.collection(&to.collection)?;
    let text_field = living.text_field();
    let points: Vec<Point> = source.get(ids)?.into_iter().flatten().collect();
    let mut outcome = BatchOutcome::default();
    let (mut with_text, mut without) = (Vec::new(), Vec::new());
    for p in points {
        let text = text_field
            .as_ref()
            .and_then(|f| p.payload.get(f))
            .and_then(|v| v.as_str())
            .map(str::to_string);
        match text {
            Some(t) if to.encoder.is_some() => with_text.push((p, t)),
            _ => without.push(p),
        }
    }
    let mut writes = Vec::with_capacity(with_text.len() + without.len());
    if !with_text.is_empty() {
        let texts: Vec<&str> = with_text.iter().map(|(_, t)| t.as_str()).collect();
        let vectors = living.encode_into(to, &texts)?;
        for ((p, _), v) in with_text.into_iter().zip(vectors.chunks_exact(to.dim)) {
            writes.push(carry(p, v.to_vec(), to, "reencode"));
            outcome.reencoded += 1;
        }
    }
    let adapter = living.adapter(&from.name, &to.name)?;
    for p in without {
        match &adapter {
            Some(adapter) => {
                let v = adapter.map(&p.vector);
                writes.push(carry(p, v, to, "adapter"));
                outcome.adapted += 1;
            }
            None => outcome.skipped += 1,
        }
    }
    if writes.is_empty() {
        return Ok(outcome);
    }
    let written: Vec<PointId> = writes.iter().map(|w| w.id.clone()).collect();
    target.upsert(writes)?;
    // Points deleted from the source meanwhile must not live on in the target.
    let gone: Vec<PointId> = source
        .get(&written)?
        .into_iter()
        .zip(written)
        .filter_map(|(p, id)| p.is_none().then_some(id))
        .collect();
    if !gone.is_empty() {
        target.delete(&gone)?;
    }
    Ok(outcome)
}

/// The source point's payload and provenance source, with a vector of the target.
fn carry(point: Point, vector: Vec<f32>, to: &SpaceState, pipeline: &str) -> NewPoint {
    let source = point.provenance.and_then(|p| p.source);
    let mut new = encoded_point(point.id, vector, point.payload, to, pipeline);
    if let Some(p) = &mut new.provenance {
        p.source = source;
    }
    new
}

/// The job's body.
fn run(
    living: Weak<LivingCollection>,
    from: SpaceState,
    to: SpaceState,
    plan: Vec<PointId>,
    options: MigrationOptions,
    status: Arc<Mutex<MigrationStatus>>,
    stop: Arc<AtomicBool>,
) {
    let started = Instant::now();
    let mut last_save = Instant::now();
    let mut done = 0usize;
    let mut outcome: Result<()> = Ok(());
    for batch in plan.chunks(options.batch_size) {
        if stop.load(Ordering::Acquire) {
            break;
        }
        let Some(living) = living.upgrade() else {
            return;
        };
        let step = migrate_batch(&living, &from, &to, batch).and_then(|b| {
            let coverage = living.coverage(&to.name)?;
            let switch = {
                let mut s = status.lock();
                s.reencoded += b.reencoded;
                s.adapted += b.adapted;
                s.skipped += b.skipped;
                s.coverage = coverage;
                s.updated_at = now_millis();
                !s.switched && coverage >= s.switch_at
            };
            if switch {
                living.set_default_space(&to.name)?;
                status.lock().switched = true;
            }
            if last_save.elapsed() >= Duration::from_secs(1) {
                living.save_status(&status.lock().clone())?;
                last_save = Instant::now();
            }
            Ok(())
        });
        if let Err(e) = step {
            outcome = Err(e);
            break;
        }
        done += batch.len();
        if let Some(rate) = options.rate_limit {
            let due = Duration::from_secs_f64(done as f64 / rate);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                // Sleep in short steps so a pause is prompt.
                let until = Instant::now() + wait;
                while Instant::now() < until && !stop.load(Ordering::Acquire) {
                    std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
                }
            }
        }
    }
    let Some(living) = living.upgrade() else {
        return;
    };
    let finished = {
        let mut s = status.lock();
        match outcome {
            Err(e) => {
                s.phase = MigrationPhase::Failed;
                s.error = Some(e.to_string());
            }
            Ok(()) if done < plan.len() => s.phase = MigrationPhase::Paused,
            Ok(()) => s.phase = MigrationPhase::Done,
        }
        s.updated_at = now_millis();
        s.clone()
    };
    let _ = living.save_status(&finished);
}

/// Pairs of vectors of the same points in `from` and `to` (row-major, `from.dim` and
/// `to.dim` wide): points both hold, topped up by encoding the text of points only
/// `from` holds (those new vectors are written to `to`).
pub(crate) fn calibration_pairs(
    living: &LivingCollection,
    from: &SpaceState,
    to: &SpaceState,
    pairs: usize,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let source = living.engine.collection(&from.collection)?;
    let target = living.engine.collection(&to.collection)?;
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let mut paired: HashMap<PointId, ()> = HashMap::new();
    // Points both spaces already hold.
    let mut after = None;
    while paired.len() < pairs {
        let page = target.scroll(&ScrollRequest {
            after: after.clone(),
            limit: 1024.min(pairs - paired.len()).max(1),
            filter: None,
            with_vector: true,
        })?;
        let ids: Vec<PointId> = page.points.iter().map(|p| p.id.clone()).collect();
        for (t, s) in page.points.iter().zip(source.get(&ids)?) {
            // A provisional vector made by an adapter is not a calibration pair.
            let adapted =
                t.provenance.as_ref().and_then(|p| p.pipeline.as_deref()) == Some("adapter");
            if let (Some(s), false) = (s, adapted) {
                xs.extend_from_slice(&s.vector);
                ys.extend_from_slice(&t.vector);
                paired.insert(t.id.clone(), ());
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    // Top up by encoding text, highest priority first.
    if paired.len() < pairs && to.encoder.is_some() && living.text_field().is_some() {
        let order = plan(living, from, to, &PriorityWeights::default())?;
        let wanted: Vec<PointId> = order
            .into_iter()
            .filter(|id| !paired.contains_key(id))
            .take(pairs - paired.len())
            .collect();
        for chunk in wanted.chunks(256) {
            migrate_batch(living, from, to, chunk)?;
            let fresh = target.get(chunk)?;
            let old = source.get(chunk)?;
            for (t, s) in fresh.into_iter().zip(old) {
                if let (Some(t), Some(s)) = (t, s) {
                    let reencoded = t.provenance.as_ref().and_then(|p| p.pipeline.as_deref())
                        == Some("reencode");
                    if reencoded {
                        xs.extend_from_slice(&s.vector);
                        ys.extend_from_slice(&t.vector);
                    }
                }
            }
        }
    }
    Ok((xs, ys))
}
