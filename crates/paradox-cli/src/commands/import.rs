//! `paradox import`: points from `.npy`, `.fvecs` or `.jsonl`, or a whole `paradoxlf` 0.17
//! store, loaded in batches with a progress bar.

use anyhow::{bail, ensure, Context, Result};
use clap::{ArgGroup, Args};
use paradox_engine::{Collection, CollectionConfig, Engine, NewPoint, PointId};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::formats::fvecs::VecsReader;
use crate::formats::jsonl::JsonlReader;
use crate::formats::npy::NpyReader;
use crate::formats::paradoxlf::ParadoxlfReader;
use crate::formats::VectorFormat;
use crate::output::{duration, progress, thousands};
use crate::store::{open_collection, GlobalArgs, MetricArg};

const EXAMPLES: &str = "\
Examples:
  paradox import --collection docs vectors.npy                 ids = current count, count+1, ...
  paradox import --collection docs --create --dim 128 --metric l2 sift_base.fvecs
  paradox import --collection docs --create points.jsonl       dimension taken from the file
  paradox import --from-paradoxlf ./old_store --dimension 384 --collection legacy

A .jsonl file holds one point per line:
  {\"id\": 1, \"vector\": [0.1, 0.2], \"payload\": {\"title\": \"...\"}}
ids are integers or strings; payload and encoder_version are optional.
.npy files must be 2-D float32 or float64 arrays in C order.";

/// `import` flags.
#[derive(Debug, Args)]
#[command(
    after_help = EXAMPLES,
    group(ArgGroup::new("source").required(true).args(["file", "from_paradoxlf"]))
)]
pub struct ImportArgs {
    /// Target collection.
    #[arg(long)]
    pub collection: String,
    /// File to import: .npy, .fvecs or .jsonl.
    pub file: Option<PathBuf>,
    /// Migrate a paradoxlf 0.17 storage directory (vectors.dat + metadata.json); needs
    /// --dimension. Creates the collection if missing (metric l2 unless --metric).
    #[arg(
        long,
        value_name = "DIR",
        requires = "dim",
        conflicts_with = "id_start"
    )]
    pub from_paradoxlf: Option<PathBuf>,
    /// Create the collection if it does not exist.
    #[arg(long)]
    pub create: bool,
    /// Vector dimension (checked against the file; needed to create from .jsonl only if
    /// the file is empty).
    #[arg(long, visible_alias = "dimension", value_name = "D")]
    pub dim: Option<usize>,
    /// Metric for a created collection [default: cosine; l2 with --from-paradoxlf].
    #[arg(long, value_enum)]
    pub metric: Option<MetricArg>,
    /// Id of the first row of a .npy/.fvecs file [default: the collection's point count].
    #[arg(long, value_name = "ID")]
    pub id_start: Option<u64>,
    /// Points per upsert.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
}

/// Runs `import`.
pub fn run(args: ImportArgs, global: &GlobalArgs) -> Result<()> {
    let engine = global.open_engine()?;
    let started = Instant::now();
    let (collection, imported) = match (&args.from_paradoxlf, &args.file) {
        (Some(dir), _) => import_paradoxlf(&engine, &args, dir)?,
        (None, Some(file)) => match VectorFormat::from_path(file)? {
            VectorFormat::Jsonl => import_jsonl(&engine, &args, file)?,
            format => import_matrix(&engine, &args, file, format)?,
        },
        (None, None) => bail!("give a FILE to import, or --from-paradoxlf DIR"),
    };
    collection
        .flush()
        .with_context(|| format!("flushing `{}`", args.collection))?;
    let elapsed = started.elapsed();
    println!(
        "imported {} points into `{}` in {} ({} points/s); it now holds {} points",
        thousands(imported as u64),
        args.collection,
        duration(elapsed),
        thousands(rate(imported, elapsed)),
        thousands(collection.count(None)? as u64)
    );
    // Graphs of sealed segments are built in the background; a CLI process that exited
    // now would throw that work away. Wait, so the next command finds them on disk.
    if collection.pending_index_builds() > 0 {
        let building = Instant::now();
        eprintln!("building indexes of `{}`...", args.collection);
        collection.wait_for_indexes();
        eprintln!("indexes built in {}", duration(building.elapsed()));
    }
    Ok(())
}

fn rate(count: usize, elapsed: Duration) -> u64 {
    (count as f64 / elapsed.as_secs_f64().max(1e-9)) as u64
}

/// Opens the target collection, creating it (with `--dim`, else `input_dim`) when allowed.
/// Checks `--dim` against an existing collection; the input's own dimension is checked by
/// the caller, which knows where in the input a mismatch is.
fn target_collection(
    engine: &Engine,
    args: &ImportArgs,
    input_dim: Option<usize>,
    may_create: bool,
    default_metric: MetricArg,
) -> Result<Arc<Collection>> {
    if !engine.list_collections().contains(&args.collection) {
        if !may_create {
            return open_collection(engine, &args.collection).context(
                "pass --create (with --dim and --metric as needed) to create it while importing",
            );
        }
        let dim = args.dim.or(input_dim).context(
            "cannot tell the dimension of the new collection: the input is empty; pass --dim",
        )?;
        let metric = args.metric.unwrap_or(default_metric).metric();
        let collection = engine
            .create_collection(CollectionConfig::new(&args.collection, dim, metric))
            .with_context(|| format!("cannot create collection `{}`", args.collection))?;
        eprintln!(
            "created collection `{}` ({dim} dimensions, {metric})",
            args.collection
        );
        return Ok(collection);
    }
    let collection = open_collection(engine, &args.collection)?;
    let expected = collection.info().dimension;
    if let Some(dim) = args.dim {
        ensure!(
            dim == expected,
            "--dim {dim} does not match collection `{}`, which has dimension {expected}",
            args.collection
        );
    }
    Ok(collection)
}

/// A row-major float file read in batches.
enum MatrixSource {
    Npy(NpyReader),
    Fvecs(VecsReader),
}

impl MatrixSource {
    fn open(path: &Path, format: VectorFormat) -> Result<MatrixSource> {
        Ok(match format {
            VectorFormat::Npy => MatrixSource::Npy(NpyReader::open(path)?),
            _ => MatrixSource::Fvecs(VecsReader::open(path)?),
        })
    }

    fn shape(&self) -> (usize, usize) {
        match self {
            MatrixSource::Npy(r) => (r.header().rows, r.header().cols),
            MatrixSource::Fvecs(r) => (r.rows(), r.dim()),
        }
    }

    fn read_rows(&mut self, max_rows: usize, out: &mut Vec<f32>) -> Result<usize> {
        match self {
            MatrixSource::Npy(r) => r.read_rows(max_rows, out),
            MatrixSource::Fvecs(r) => r.read_f32_rows(max_rows, out),
        }
    }
}

fn import_matrix(
    engine: &Engine,
    args: &ImportArgs,
    path: &Path,
    format: VectorFormat,
) -> Result<(Arc<Collection>, usize)> {
    let mut source = MatrixSource::open(path, format)?;
    let (rows, dim) = source.shape();
    if let Some(flag) = args.dim {
        ensure!(
            rows == 0 || flag == dim,
            "--dim {flag} does not match {}, which has dimension {dim}",
            path.display()
        );
    }
    let file_dim = (rows > 0).then_some(dim);
    let collection = target_collection(engine, args, file_dim, args.create, MetricArg::Cosine)
        .with_context(|| format!("importing {}", path.display()))?;
    let expected = collection.info().dimension;
    ensure!(
        rows == 0 || dim == expected,
        "dimension mismatch: collection `{}` expects {expected}, {} has dimension {dim}",
        args.collection,
        path.display()
    );
    let id_start = match args.id_start {
        Some(start) => start,
        None => collection.count(None)? as u64,
    };
    let bar = progress(Some(rows as u64), &format!("importing {}", path.display()));
    let mut buffer = Vec::with_capacity(args.batch as usize * dim);
    let mut done = 0usize;
    loop {
        buffer.clear();
        let n = source.read_rows(args.batch as usize, &mut buffer)?;
        if n == 0 {
            break;
        }
        let points: Vec<NewPoint> = buffer
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, row)| NewPoint::new(id_start + (done + i) as u64, row.to_vec()))
            .collect();
        collection.upsert(points).with_context(|| {
            format!(
                "upserting rows {}..{} of {} into `{}`",
                done,
                done + n,
                path.display(),
                args.collection
            )
        })?;
        done += n;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok((collection, done))
}

fn import_jsonl(
    engine: &Engine,
    args: &ImportArgs,
    path: &Path,
) -> Result<(Arc<Collection>, usize)> {
    ensure!(
        args.id_start.is_none(),
        "--id-start applies to .npy and .fvecs files; a .jsonl file carries its own ids"
    );
    let mut reader = JsonlReader::open(path)?;
    let mut batch = reader.read_batch(args.batch as usize)?;
    let file_dim = batch.first().map(|p| p.point.vector.len());
    let collection = target_collection(engine, args, file_dim, args.create, MetricArg::Cosine)
        .with_context(|| format!("importing {}", path.display()))?;
    let expected = collection.info().dimension;
    let bar = progress(None, &format!("importing {}", path.display()));
    let mut done = 0usize;
    while !batch.is_empty() {
        for record in &batch {
            let got = record.point.vector.len();
            ensure!(
                got == expected,
                "{} line {}: vector has dimension {got}, collection `{}` expects {expected}",
                path.display(),
                record.line,
                args.collection
            );
        }
        let (first, last) = (batch[0].line, batch[batch.len() - 1].line);
        let n = batch.len();
        let points: Vec<NewPoint> = batch.into_iter().map(|r| r.point).collect();
        collection.upsert(points).with_context(|| {
            format!(
                "upserting lines {first}..={last} of {} into `{}`",
                path.display(),
                args.collection
            )
        })?;
        done += n;
        bar.inc(n as u64);
        batch = reader.read_batch(args.batch as usize)?;
    }
    bar.finish_and_clear();
    Ok((collection, done))
}

fn import_paradoxlf(
    engine: &Engine,
    args: &ImportArgs,
    dir: &Path,
) -> Result<(Arc<Collection>, usize)> {
    let dim = args
        .dim
        .context("--from-paradoxlf needs --dimension: paradoxlf 0.17 does not record it")?;
    let mut reader = ParadoxlfReader::open(dir, dim)?;
    let collection = target_collection(engine, args, Some(dim), true, MetricArg::L2)
        .with_context(|| format!("migrating {}", dir.display()))?;
    let total = reader.point_count();
    let bar = progress(Some(total as u64), &format!("migrating {}", dir.display()));
    let mut done = 0usize;
    loop {
        let points = reader.read_batch(args.batch as usize)?;
        if points.is_empty() {
            break;
        }
        let n = points.len();
        let first: PointId = points[0].id.clone();
        collection.upsert(points).with_context(|| {
            format!(
                "upserting paradoxlf points from id {first} into `{}`",
                args.collection
            )
        })?;
        done += n;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok((collection, done))
}
