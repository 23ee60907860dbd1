//! `paradox`: the command-line face of Paradox.
//!
//! Every subcommand opens the data directory (`--data-dir`, default `./paradox-data`),
//! does one job through the engine's public API, and exits: 0 on success, 1 on a runtime
//! error (printed with its chain of causes), 2 on a usage error (clap's convention). The
//! `bench` subcommands are the exception to the human-first output: they print exactly one
//! JSON object on stdout for the harness in `bench/`, and their notes go to stderr.

mod bench;
mod commands;
mod formats;
mod output;
mod store;
mod synth;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  paradox demo                                  load 100k clustered vectors and search them
  paradox collection create --name docs --dim 384 --metric cosine
  paradox import --collection docs vectors.npy
  paradox import --collection docs --create --dim 384 points.jsonl
  paradox search --collection docs --id 42 -k 5 --filter '{\"key\": \"lang\", \"eq\": \"en\"}'
  paradox info --json
  paradox export --collection docs --format jsonl docs.jsonl
  paradox snapshot create --collection docs docs.snap
  paradox serve --config paradox.toml            REST + gRPC server
  paradox bench ingest --dim 128 --count 100000 --fsync never";

/// Paradox: latent memory for AI agents. Store embeddings with their metadata and find
/// neighbours fast.
#[derive(Debug, Parser)]
#[command(name = "paradox", version, after_help = EXAMPLES)]
struct Cli {
    #[command(flatten)]
    global: store::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load ~100k clustered vectors into a `demo` collection and show searches, filters and
    /// timings.
    Demo(commands::demo::DemoArgs),
    /// Import points from .npy, .fvecs or .jsonl, or migrate a paradoxlf 0.17 store.
    Import(commands::import::ImportArgs),
    /// Export a collection as .jsonl (everything) or .npy/.fvecs (vectors + an ids sidecar).
    Export(commands::export::ExportArgs),
    /// Find the nearest neighbours of a vector, a row of a file, or a stored point.
    Search(commands::search::SearchArgs),
    /// Show collection statistics (all collections unless --collection is given).
    Info(commands::info::InfoArgs),
    /// Create, list or drop collections.
    #[command(subcommand)]
    Collection(commands::collection::CollectionCommand),
    /// Write a collection to a snapshot file, or restore one.
    #[command(subcommand)]
    Snapshot(commands::snapshot::SnapshotCommand),
    /// Serve the data directory over REST and gRPC (auth, TLS, limits, metrics).
    Serve(commands::serve::ServeArgs),
    /// Vector spaces (encoder versions): add, ingest text, fit adapters, migrate, search.
    #[command(subcommand)]
    Space(commands::space::SpaceCommand),
    /// Report drift: a space's oldest points against its newest (mean shift, MMD, AUC).
    Drift(commands::space::DriftArgs),
    /// Machine-readable micro-benchmarks: one JSON object on stdout.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => commands::demo::run(args, &cli.global),
        Command::Import(args) => commands::import::run(args, &cli.global),
        Command::Export(args) => commands::export::run(args, &cli.global),
        Command::Search(args) => commands::search::run(args, &cli.global),
        Command::Info(args) => commands::info::run(args, &cli.global),
        Command::Collection(command) => commands::collection::run(command, &cli.global),
        Command::Snapshot(command) => commands::snapshot::run(command, &cli.global),
        Command::Serve(args) => commands::serve::run(args, &cli.global),
        Command::Space(command) => commands::space::run(command, &cli.global),
        Command::Drift(args) => commands::space::run_drift(args, &cli.global),
        Command::Bench(command) => bench::run(command, &cli.global),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
