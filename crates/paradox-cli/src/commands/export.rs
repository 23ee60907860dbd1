//! `paradox export`: a collection to `.jsonl` (ids, vectors, payloads) or to `.npy` /
//! `.fvecs` (vectors only, with the ids in a JSON sidecar `OUT.ids.json`), in scroll order.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use paradox_engine::{Point, ScrollRequest};
use serde_json::Value;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::formats::fvecs::VecsWriter;
use crate::formats::jsonl::{point_id_to_json, write_point};
use crate::formats::npy::{DType, NpyWriter};
use crate::output::{progress, thousands};
use crate::store::{open_collection, GlobalArgs};

/// Points fetched per scroll page.
const PAGE: usize = 1000;

/// `export` flags.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    paradox export --collection docs --format jsonl docs.jsonl\n  \
    paradox export --collection docs --format npy docs.npy      (ids in docs.npy.ids.json)")]
pub struct ExportArgs {
    /// Collection to export.
    #[arg(long)]
    pub collection: String,
    /// Output format [default: from OUT's extension].
    #[arg(long, value_enum)]
    pub format: Option<ExportFormat>,
    /// File to write.
    pub out: PathBuf,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per point: id, vector, payload.
    Jsonl,
    /// A float32 matrix; ids in OUT.ids.json.
    Npy,
    /// fvecs records; ids in OUT.ids.json.
    Fvecs,
}

impl ExportFormat {
    fn from_path(path: &Path) -> Result<ExportFormat> {
        match crate::formats::VectorFormat::from_path(path)
            .context("pass --format jsonl|npy|fvecs")?
        {
            crate::formats::VectorFormat::Npy => Ok(ExportFormat::Npy),
            crate::formats::VectorFormat::Fvecs => Ok(ExportFormat::Fvecs),
            crate::formats::VectorFormat::Jsonl => Ok(ExportFormat::Jsonl),
        }
    }
}

/// Where exported points go.
enum Sink {
    Jsonl(BufWriter<File>),
    Npy(NpyWriter, Vec<Value>),
    Fvecs(VecsWriter, Vec<Value>),
}

impl Sink {
    fn write(&mut self, point: &Point) -> Result<()> {
        match self {
            Sink::Jsonl(out) => write_point(out, point),
            Sink::Npy(out, ids) => {
                ids.push(point_id_to_json(&point.id));
                out.write_f32(&point.vector)
            }
            Sink::Fvecs(out, ids) => {
                ids.push(point_id_to_json(&point.id));
                out.write_f32_rows(&point.vector)
            }
        }
    }

    /// Flushes; returns the sidecar path written, if any.
    fn finish(self, out: &Path) -> Result<Option<PathBuf>> {
        let ids = match self {
            Sink::Jsonl(mut writer) => {
                writer.flush()?;
                return Ok(None);
            }
            Sink::Npy(writer, ids) => {
                writer.finish()?;
                ids
            }
            Sink::Fvecs(writer, ids) => {
                writer.finish()?;
                ids
            }
        };
        let mut sidecar = out.as_os_str().to_owned();
        sidecar.push(".ids.json");
        let sidecar = PathBuf::from(sidecar);
        std::fs::write(&sidecar, serde_json::to_vec(&ids)?)
            .with_context(|| format!("cannot write {}", sidecar.display()))?;
        Ok(Some(sidecar))
    }
}

/// Runs `export`.
pub fn run(args: ExportArgs, global: &GlobalArgs) -> Result<()> {
    let format = match args.format {
        Some(format) => format,
        None => ExportFormat::from_path(&args.out)?,
    };
    let engine = global.open_existing_engine()?;
    let collection = open_collection(&engine, &args.collection)?;
    let dim = collection.info().dimension;
    let mut sink = match format {
        ExportFormat::Jsonl => Sink::Jsonl(BufWriter::with_capacity(
            1 << 20,
            File::create(&args.out)
                .with_context(|| format!("cannot create {}", args.out.display()))?,
        )),
        ExportFormat::Npy => Sink::Npy(NpyWriter::create(&args.out, DType::F32, dim)?, Vec::new()),
        ExportFormat::Fvecs => Sink::Fvecs(VecsWriter::create(&args.out, dim)?, Vec::new()),
    };
    let total = collection.count(None)?;
    let bar = progress(
        Some(total as u64),
        &format!("exporting `{}`", args.collection),
    );
    let mut request = ScrollRequest {
        after: None,
        limit: PAGE,
        filter: None,
        with_vector: true,
    };
    let mut written = 0usize;
    loop {
        let page = collection
            .scroll(&request)
            .with_context(|| format!("reading `{}`", args.collection))?;
        for point in &page.points {
            sink.write(point)
                .with_context(|| format!("writing {}", args.out.display()))?;
        }
        written += page.points.len();
        bar.inc(page.points.len() as u64);
        match page.next {
            Some(next) => request.after = Some(next),
            None => break,
        }
    }
    bar.finish_and_clear();
    let sidecar = sink.finish(&args.out)?;
    println!(
        "exported {} points from `{}` to {}{}",
        thousands(written as u64),
        args.collection,
        args.out.display(),
        sidecar
            .map(|p| format!(" (ids in {})", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}
