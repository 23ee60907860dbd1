//! `paradox collection create|list|drop`.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use paradox_engine::CollectionConfig;

use crate::output::{thousands, Table};
use crate::store::{open_collection, GlobalArgs, MetricArg};

/// Collection management.
#[derive(Debug, Subcommand)]
pub enum CollectionCommand {
    /// Create an empty collection.
    #[command(
        after_help = "Example:\n  paradox collection create --name docs --dim 384 --metric cosine"
    )]
    Create(CreateArgs),
    /// List collections with their sizes.
    List(ListArgs),
    /// Delete a collection and all its points.
    Drop(DropArgs),
    /// Change the index of a collection's sealed segments; they are rebuilt in the
    /// background (this command waits for the rebuild) and serve searches meanwhile.
    #[command(
        after_help = "Example:\n  paradox collection set-index --name docs --index '{\"kind\":\"ivf_pq\",\"m\":32}'"
    )]
    SetIndex(SetIndexArgs),
}

/// `collection set-index` flags.
#[derive(Debug, Args)]
pub struct SetIndexArgs {
    /// Name of the collection.
    #[arg(long)]
    pub name: String,
    /// The new index (same forms as `collection create --index`).
    #[arg(long, value_parser = parse_index)]
    pub index: paradox_engine::IndexConfig,
    /// Return at once instead of waiting for the rebuild.
    #[arg(long)]
    pub no_wait: bool,
}

/// `collection create` flags.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Name of the new collection.
    #[arg(long)]
    pub name: String,
    /// Vector dimension.
    #[arg(long, visible_alias = "dimension", value_parser = clap::value_parser!(u32).range(1..))]
    pub dim: u32,
    /// Similarity metric.
    #[arg(long, value_enum, default_value = "cosine")]
    pub metric: MetricArg,
    /// Index for sealed segments: `flat` (exact), `hnsw`, `auto` (HNSW for segments of
    /// 20,000+ points), `ivf_flat`, `ivf_pq`, `ivf_opq_pq`, `ivf_pq4`, `ivf_sq8`. Parameters as JSON
    /// also work: '{"kind":"hnsw","m":32,"ef_construction":400,"ef_search":128}',
    /// '{"kind":"ivf_pq","nlist":1024,"m":16,"nprobe":16,"rerank":4}'.
    #[arg(long, default_value = "auto", value_parser = parse_index)]
    pub index: paradox_engine::IndexConfig,
    /// Keep every past version of every point (for `paradox search --as-of`).
    #[arg(long)]
    pub history: bool,
}

pub(crate) fn parse_index(text: &str) -> std::result::Result<paradox_engine::IndexConfig, String> {
    if let Some(config) = paradox_engine::IndexConfig::parse(text) {
        return Ok(config);
    }
    serde_json::from_str(text).map_err(|e| {
        format!(
            "expected flat, hnsw, auto, ivf_flat, ivf_pq, ivf_opq_pq, ivf_pq4, ivf_sq8 or a JSON \
                 index config ({e})"
        )
    })
}

/// `collection list` flags.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `collection drop` flags.
#[derive(Debug, Args)]
pub struct DropArgs {
    /// Name of the collection to delete.
    #[arg(long)]
    pub name: String,
}

/// Runs a `collection` subcommand.
pub fn run(command: CollectionCommand, global: &GlobalArgs) -> Result<()> {
    let engine = match command {
        CollectionCommand::Create(_) => global.open_engine()?,
        _ => global.open_existing_engine()?,
    };
    match command {
        CollectionCommand::Create(args) => {
            let metric = args.metric.metric();
            engine
                .create_collection(CollectionConfig {
                    index: args.index,
                    history: args.history,
                    ..CollectionConfig::new(&args.name, args.dim as usize, metric)
                })
                .with_context(|| format!("cannot create collection `{}`", args.name))?;
            println!(
                "created collection `{}` ({} dimensions, {metric})",
                args.name, args.dim
            );
        }
        CollectionCommand::List(args) => {
            let mut infos = Vec::new();
            for name in engine.list_collections() {
                infos.push(open_collection(&engine, &name)?.info());
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&infos)?);
            } else if infos.is_empty() {
                println!("no collections in {}", global.data_dir.display());
            } else {
                let mut table = Table::new(&["name", "dimension", "metric", "points"]);
                for info in &infos {
                    table.row(vec![
                        info.name.clone(),
                        info.dimension.to_string(),
                        info.metric.to_string(),
                        thousands(info.points as u64),
                    ]);
                }
                print!("{}", table.render(0));
            }
        }
        CollectionCommand::Drop(args) => {
            open_collection(&engine, &args.name)?;
            engine
                .drop_collection(&args.name)
                .with_context(|| format!("cannot drop collection `{}`", args.name))?;
            println!("dropped collection `{}`", args.name);
        }
        CollectionCommand::SetIndex(args) => {
            let collection = open_collection(&engine, &args.name)?;
            collection
                .set_index_config(args.index)
                .with_context(|| format!("cannot change the index of `{}`", args.name))?;
            if !args.no_wait {
                collection.wait_for_indexes();
            }
            println!(
                "collection `{}` now uses index {}",
                args.name,
                args.index.kind()
            );
        }
    }
    Ok(())
}
