//! `paradox space ...` (vector spaces, encoders, adapters, migration) and `paradox drift`.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use paradox_engine::{Engine, Payload, PointId};
use paradox_lifecycle::drift::{DriftConfig, DriftReport};
use paradox_lifecycle::encoder::EncoderInfo;
use paradox_lifecycle::living::{
    DriftWindow, LivingCollection, LivingOptions, LivingSearch, MigrationOptions, MigrationPhase,
    PriorityWeights, SpaceSpec,
};
use paradox_lifecycle::minilm::{MiniLmEncoder, MiniLmOptions};
use paradox_lifecycle::spec::{adapter_kind_from_spec, encoder_from_spec};
use serde_json::json;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::formats::jsonl::point_id_to_json;
use crate::output::{excerpt, thousands, Table};
use crate::store::GlobalArgs;

const EXAMPLES: &str = "\
Examples:
  paradox collection create --name docs --dim 384
  paradox space init --collection docs --space minilm@1 --encoder minilm:3 --text-field text
  paradox space ingest --collection docs --file sentences.txt
  paradox space add --collection docs --space minilm@2 --encoder minilm
  paradox space fit-adapter --collection docs --from minilm@1 --to minilm@2 --pairs 5000
  paradox space search --collection docs --space minilm@2 --text 'a man eating bread'
  paradox space migrate --collection docs --to minilm@2 --rate 500
  paradox space default --collection docs minilm@1
  paradox space remove --collection docs minilm@2
  paradox drift --collection docs --space minilm@1 --window 500";

/// Vector spaces of a collection.
#[derive(Debug, Subcommand)]
#[command(after_help = EXAMPLES)]
pub enum SpaceCommand {
    /// Start managing a collection's spaces: its vectors become the first space.
    Init(InitArgs),
    /// Register a new space (a new encoder version), backed by a companion collection.
    Add(AddArgs),
    /// List the spaces, adapters, migration progress and coverage.
    List(CollectionArg),
    /// Encode texts (one per line, or JSON lines with `id`, `text`, `payload`) into every
    /// space that has an encoder.
    Ingest(IngestArgs),
    /// Fit adapters between two spaces (both directions) from calibration pairs.
    FitAdapter(FitArgs),
    /// Re-encode points into a space, most valuable first (foreground, with progress;
    /// interrupt and run again to resume).
    Migrate(MigrateArgs),
    /// Search a space with text (through the adapter while the space is filling).
    Search(SpaceSearchArgs),
    /// Make a space the one searches use when they name none.
    Default(SpaceNameArgs),
    /// Remove a space: its companion collection, the adapters from or into it and the
    /// overlays on it (never the first space, the default space, or a space a running
    /// migration uses).
    Remove(SpaceNameArgs),
}

/// `--collection` and a space's name.
#[derive(Debug, Args)]
pub struct SpaceNameArgs {
    /// The collection.
    #[arg(long)]
    pub collection: String,
    /// The space, e.g. `minilm@2`.
    pub name: String,
}

/// `--collection`.
#[derive(Debug, Args)]
pub struct CollectionArg {
    /// The collection.
    #[arg(long)]
    pub collection: String,
}

/// `space init` flags.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The collection (must exist).
    #[arg(long)]
    pub collection: String,
    /// Name of its vectors' space, e.g. `minilm@1`.
    #[arg(long)]
    pub space: String,
    /// The encoder that made them: `hashing:DIM`, `minilm` (6 layers) or `minilm:N`
    /// (first N layers).
    #[arg(long)]
    pub encoder: Option<String>,
    /// Directory with model.safetensors, tokenizer.json, config.json (default:
    /// $PARADOX_MINILM_DIR or .cache/models/all-MiniLM-L6-v2).
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// Payload field holding each point's text (what re-encoding reads).
    #[arg(long)]
    pub text_field: Option<String>,
}

/// `space add` flags.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The collection.
    #[arg(long)]
    pub collection: String,
    /// Name of the new space, e.g. `minilm@2`.
    #[arg(long)]
    pub space: String,
    /// Its encoder (`hashing:DIM`, `minilm`, `minilm:N`).
    #[arg(long)]
    pub encoder: Option<String>,
    /// Model directory for `minilm`.
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// Dimension, for a space without an encoder.
    #[arg(long)]
    pub dim: Option<usize>,
}

/// `space ingest` flags.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The collection.
    #[arg(long)]
    pub collection: String,
    /// Text file: one text per line (ids 0, 1, ...), or `.jsonl` with `id`, `text`,
    /// optional `payload`.
    #[arg(long)]
    pub file: PathBuf,
    /// Texts per write.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Model directory for `minilm` encoders.
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
}

/// `space fit-adapter` flags.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// The collection.
    #[arg(long)]
    pub collection: String,
    /// Source space.
    #[arg(long)]
    pub from: String,
    /// Target space.
    #[arg(long)]
    pub to: String,
    /// `procrustes`, `affine`, `low_rank:RANK` or `mlp:HIDDEN`.
    #[arg(long, default_value = "affine")]
    pub kind: String,
    /// Calibration pairs (points encoded in both spaces).
    #[arg(long, default_value_t = 5000)]
    pub pairs: usize,
    /// Model directory for `minilm` encoders.
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
}

/// `space migrate` flags.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The collection.
    #[arg(long)]
    pub collection: String,
    /// Target space.
    #[arg(long)]
    pub to: String,
    /// Source space (default: the first).
    #[arg(long)]
    pub from: Option<String>,
    /// Most points per second.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Coverage at which the target becomes the default space.
    #[arg(long, default_value_t = 0.95)]
    pub switch_at: f64,
    /// Numeric payload field raising a point's priority.
    #[arg(long)]
    pub importance_field: Option<String>,
    /// Points per batch.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Model directory for `minilm` encoders.
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
}

/// `space search` flags.
#[derive(Debug, Args)]
pub struct SpaceSearchArgs {
    /// The collection.
    #[arg(long)]
    pub collection: String,
    /// Space (default: the collection's default).
    #[arg(long)]
    pub space: Option<String>,
    /// The query text.
    #[arg(long)]
    pub text: String,
    /// Hits.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// A named context overlay.
    #[arg(long)]
    pub context: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Model directory for `minilm` encoders.
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
}

/// `drift` flags.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  paradox drift --collection docs --space minilm@1 --window 500")]
pub struct DriftArgs {
    /// The collection.
    #[arg(long)]
    pub collection: String,
    /// Space (default: the collection's default; a collection without spaces is read
    /// directly).
    #[arg(long)]
    pub space: Option<String>,
    /// Points per window: the oldest N against the newest N by creation time.
    #[arg(long, default_value_t = 500)]
    pub window: usize,
    /// Permutations of the MMD test.
    #[arg(long, default_value_t = 200)]
    pub permutations: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `space` subcommand.
pub fn run(command: SpaceCommand, global: &GlobalArgs) -> Result<()> {
    let engine = Arc::new(global.open_existing_engine()?);
    match command {
        SpaceCommand::Init(args) => {
            let encoder = args
                .encoder
                .as_deref()
                .map(|spec| encoder_from_spec(spec, &args.space, args.model_dir.as_deref()))
                .transpose()?;
            let living = LivingCollection::init(
                engine,
                &args.collection,
                LivingOptions {
                    space: args.space.clone(),
                    encoder: encoder.map(|e| e.info().clone()),
                    text_field: args.text_field,
                },
            )?;
            println!(
                "collection `{}`: first space `{}`",
                living.name(),
                living.default_space()
            );
            Ok(())
        }
        SpaceCommand::Add(args) => {
            let living = LivingCollection::open(engine, &args.collection)?;
            let encoder = args
                .encoder
                .as_deref()
                .map(|spec| encoder_from_spec(spec, &args.space, args.model_dir.as_deref()))
                .transpose()?;
            let space = living.add_space(SpaceSpec {
                name: args.space,
                encoder: encoder.map(|e| e.info().clone()),
                dim: args.dim,
                index: None,
            })?;
            println!(
                "space `{}` ({}-d) added, stored in collection `{}`",
                space.name, space.dim, space.collection
            );
            Ok(())
        }
        SpaceCommand::List(args) => list(&*LivingCollection::open(engine, &args.collection)?),
        SpaceCommand::Ingest(args) => ingest(engine, args),
        SpaceCommand::FitAdapter(args) => {
            let living = open_with_model(engine, &args.collection, args.model_dir.as_ref())?;
            let kind = adapter_kind_from_spec(&args.kind)?;
            let started = Instant::now();
            let (forward, backward) =
                living.fit_adapters(&args.from, &args.to, kind, args.pairs)?;
            for a in [forward, backward] {
                println!(
                    "adapter {} -> {} v{}: {} pairs, held-out cosine {:.4}, R² {:.4}",
                    a.from, a.to, a.version, a.fit.pairs, a.fit.holdout_cosine, a.fit.holdout_r2
                );
            }
            println!("fitted in {:.1} s", started.elapsed().as_secs_f64());
            Ok(())
        }
        SpaceCommand::Migrate(args) => migrate(engine, args),
        SpaceCommand::Search(args) => search(engine, args),
        SpaceCommand::Default(args) => {
            let living = LivingCollection::open(engine, &args.collection)?;
            living.set_default_space(&args.name)?;
            println!(
                "collection `{}`: searches use space `{}` by default",
                living.name(),
                args.name
            );
            Ok(())
        }
        SpaceCommand::Remove(args) => {
            let living = LivingCollection::open(engine, &args.collection)?;
            let space = living.remove_space(&args.name)?;
            println!(
                "space `{}` removed from collection `{}`, with its collection `{}`, its \
                 adapters and overlays",
                space.name,
                living.name(),
                space.collection
            );
            Ok(())
        }
    }
}

/// Opens a living collection and attaches MiniLM encoders loaded from `model_dir` where
/// their stored directory is not readable here.
fn open_with_model(
    engine: Arc<Engine>,
    collection: &str,
    model_dir: Option<&PathBuf>,
) -> Result<Arc<LivingCollection>> {
    let living = LivingCollection::open(engine, collection)?;
    let Some(dir) = model_dir else {
        return Ok(living);
    };
    for space in living.spaces() {
        if let Some(info) = space.encoder.as_ref().filter(|i| i.kind == "minilm") {
            let layers = info.params.get("layers").and_then(|v| v.as_u64());
            let encoder = load_minilm(dir, info, layers.map(|l| l as usize))?;
            living.attach_encoder(&space.name, Arc::new(encoder))?;
        }
    }
    Ok(living)
}

fn load_minilm(
    dir: &std::path::Path,
    info: &EncoderInfo,
    layers: Option<usize>,
) -> Result<MiniLmEncoder> {
    let options = MiniLmOptions {
        layers,
        ..MiniLmOptions::default()
    };
    Ok(MiniLmEncoder::load(dir, &info.name, info.version, options)?)
}

fn list(living: &LivingCollection) -> Result<()> {
    let default = living.default_space();
    let mut table = Table::new(&[
        "space",
        "dim",
        "encoder",
        "points",
        "coverage",
        "collection",
    ]);
    for space in living.spaces() {
        let marker = if space.name == default {
            " (default)"
        } else {
            ""
        };
        table.row(vec![
            format!("{}{marker}", space.name),
            space.dim.to_string(),
            space
                .encoder
                .as_ref()
                .map(|e| format!("{} ({})", e.space(), e.kind))
                .unwrap_or_else(|| "-".into()),
            thousands(living.count(&space.name)? as u64),
            format!("{:.1}%", 100.0 * living.coverage(&space.name)?),
            space.collection,
        ]);
    }
    println!("{}", table.render(0));
    let adapters = living.adapters();
    if !adapters.is_empty() {
        let mut table = Table::new(&["adapter", "kind", "pairs", "held-out cosine", "R²"]);
        for a in adapters {
            table.row(vec![
                format!("{} -> {} v{}", a.from, a.to, a.version),
                serde_json::to_value(a.kind)?["kind"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string(),
                a.fit.pairs.to_string(),
                format!("{:.4}", a.fit.holdout_cosine),
                format!("{:.4}", a.fit.holdout_r2),
            ]);
        }
        println!("{}", table.render(0));
    }
    if let Some(m) = living.migration_status() {
        println!(
            "migration {} -> {}: {:?}, {} re-encoded, {} adapted, {} skipped of {} pending; \
             coverage {:.1}%{}",
            m.from,
            m.to,
            m.phase,
            m.reencoded,
            m.adapted,
            m.skipped,
            m.pending_at_start,
            100.0 * m.coverage,
            m.error
                .map(|e| format!(" (error: {e})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn ingest(engine: Arc<Engine>, args: IngestArgs) -> Result<()> {
    if args.batch == 0 || args.batch > paradox_lifecycle::living::MAX_WRITE_BATCH {
        bail!(
            "--batch must be 1 to {}",
            paradox_lifecycle::living::MAX_WRITE_BATCH
        );
    }
    let living = open_with_model(engine, &args.collection, args.model_dir.as_ref())?;
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let jsonl = args.file.extension().is_some_and(|e| e == "jsonl");
    let started = Instant::now();
    let mut batch: Vec<(PointId, String, Payload)> = Vec::new();
    let mut written = 0usize;
    for (line_no, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line =
            line.with_context(|| format!("{}: line {}", args.file.display(), line_no + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        batch.push(if jsonl {
            parse_jsonl_text(&line)
                .with_context(|| format!("{}: line {}", args.file.display(), line_no + 1))?
        } else {
            (PointId::Num(line_no as u64), line, Payload::new())
        });
        if batch.len() == args.batch {
            written += living.upsert_texts(std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        written += living.upsert_texts(batch)?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} texts encoded into {} space(s) in {secs:.1} s ({:.0}/s)",
        thousands(written as u64),
        living
            .spaces()
            .iter()
            .filter(|s| s.encoder.is_some())
            .count(),
        written as f64 / secs.max(1e-9)
    );
    Ok(())
}

fn parse_jsonl_text(line: &str) -> Result<(PointId, String, Payload)> {
    let value: serde_json::Value = serde_json::from_str(line).context("not JSON")?;
    let id = match value.get("id") {
        Some(serde_json::Value::Number(n)) => PointId::Num(
            n.as_u64()
                .context("`id` must be a non-negative integer or a string")?,
        ),
        Some(serde_json::Value::String(s)) => PointId::Str(s.clone()),
        _ => bail!("each line needs an `id` (integer or string)"),
    };
    let text = value
        .get("text")
        .and_then(|t| t.as_str())
        .context("each line needs a `text` string")?
        .to_string();
    let payload = match value.get("payload") {
        None | Some(serde_json::Value::Null) => Payload::new(),
        Some(serde_json::Value::Object(map)) => map.clone(),
        Some(_) => bail!("`payload` must be a JSON object"),
    };
    Ok((id, text, payload))
}

fn migrate(engine: Arc<Engine>, args: MigrateArgs) -> Result<()> {
    let living = open_with_model(engine, &args.collection, args.model_dir.as_ref())?;
    let options = MigrationOptions {
        from: args.from,
        to: args.to,
        batch_size: args.batch,
        rate_limit: args.rate,
        switch_at: args.switch_at,
        weights: PriorityWeights {
            importance_field: args.importance_field,
            ..PriorityWeights::default()
        },
    };
    let start = living.migrate(options)?;
    let bar = crate::output::progress(Some(start.pending_at_start as u64), "points");
    loop {
        let status = living
            .migration_status()
            .context("the migration vanished")?;
        bar.set_position((status.reencoded + status.adapted + status.skipped) as u64);
        if status.phase != MigrationPhase::Running {
            bar.finish_and_clear();
            println!(
                "{:?}: {} re-encoded, {} adapted, {} skipped; coverage {:.1}%; default space: {}{}",
                status.phase,
                status.reencoded,
                status.adapted,
                status.skipped,
                100.0 * status.coverage,
                living.default_space(),
                status
                    .error
                    .map(|e| format!("; error: {e}"))
                    .unwrap_or_default()
            );
            if status.phase == MigrationPhase::Failed {
                bail!("the migration failed");
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn search(engine: Arc<Engine>, args: SpaceSearchArgs) -> Result<()> {
    let living = open_with_model(engine, &args.collection, args.model_dir.as_ref())?;
    let started = Instant::now();
    let hits = living.search(&LivingSearch {
        space: args.space,
        text: Some(args.text),
        k: args.k,
        with_payload: true,
        context: args.context,
        ..Default::default()
    })?;
    let took = started.elapsed();
    if args.json {
        let out: Vec<_> = hits
            .iter()
            .map(|h| {
                json!({"id": point_id_to_json(&h.id), "score": h.score, "source": h.source,
                       "payload": h.payload})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let mut table = Table::new(&["#", "id", "score", "via", "payload"]);
    for (rank, h) in hits.iter().enumerate() {
        table.row(vec![
            (rank + 1).to_string(),
            h.id.to_string(),
            format!("{:.4}", h.score),
            serde_json::to_value(h.source)?
                .as_str()
                .unwrap_or("?")
                .to_string(),
            h.payload
                .as_ref()
                .map(|p| excerpt(&serde_json::Value::Object(p.clone()), 60))
                .unwrap_or_default(),
        ]);
    }
    println!("{}", table.render(0));
    println!("{} hits in {:.2} ms", hits.len(), took.as_secs_f64() * 1e3);
    Ok(())
}

/// Runs `paradox drift`.
pub fn run_drift(args: DriftArgs, global: &GlobalArgs) -> Result<()> {
    let engine = Arc::new(global.open_existing_engine()?);
    let config = DriftConfig {
        permutations: args.permutations,
        ..DriftConfig::default()
    };
    let report = match LivingCollection::open(engine.clone(), &args.collection) {
        Ok(living) => {
            let space = args.space.unwrap_or_else(|| living.default_space());
            living.drift(&space, DriftWindow::Stored { n: args.window }, &config)?
        }
        Err(paradox_lifecycle::LifecycleError::InvalidArgument(_)) if args.space.is_none() => {
            // A plain collection: its vectors are the only space.
            let collection = engine.collection(&args.collection)?;
            stored_drift(&collection, args.window, &config)?
        }
        Err(e) => return Err(e.into()),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print_drift(&report);
    Ok(())
}

/// The oldest `n` points against the newest `n` of a plain collection.
fn stored_drift(
    collection: &paradox_engine::Collection,
    n: usize,
    config: &DriftConfig,
) -> Result<DriftReport> {
    let dim = collection.config().dimension;
    let mut rows: Vec<(i64, Vec<f32>)> = Vec::new();
    let mut after = None;
    loop {
        let page = collection.scroll(&paradox_engine::ScrollRequest {
            after: after.clone(),
            limit: 4096,
            filter: None,
            with_vector: true,
        })?;
        rows.extend(page.points.into_iter().map(|p| (p.created_at, p.vector)));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if rows.len() < 2 * n {
        bail!(
            "collection holds {} points; two windows of {n} need {}",
            rows.len(),
            2 * n
        );
    }
    rows.sort_by_key(|(t, _)| *t);
    let old: Vec<f32> = rows[..n]
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .collect();
    let new: Vec<f32> = rows[rows.len() - n..]
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .collect();
    Ok(paradox_lifecycle::drift::detect_drift(
        &old, &new, dim, config,
    )?)
}

fn print_drift(r: &DriftReport) {
    let mut table = Table::new(&["test", "score", "threshold", "flag"]);
    let flag = |over: bool| if over { "DRIFT" } else { "ok" }.to_string();
    table.row(vec![
        "mean shift".into(),
        format!("{:.4}", r.mean_shift),
        format!("{:.4}", r.mean_shift_threshold),
        flag(r.mean_shift > r.mean_shift_threshold),
    ]);
    table.row(vec![
        format!("MMD² (RBF), p = {:.3}", r.mmd_p_value),
        format!("{:.5}", r.mmd),
        format!("{:.5}", r.mmd_threshold),
        flag(r.mmd > r.mmd_threshold),
    ]);
    table.row(vec![
        "classifier AUC".into(),
        format!("{:.3}", r.auc),
        format!("{:.3}", r.auc_threshold),
        flag(r.auc > r.auc_threshold),
    ]);
    println!(
        "reference: {} oldest points, recent: {} newest\n{}",
        r.reference,
        r.recent,
        table.render(0)
    );
    println!(
        "verdict: {}",
        if r.drifted {
            "drift (the MMD permutation test rejects)"
        } else {
            "no drift detected"
        }
    );
}
