//! `paradox snapshot create|restore`: a collection as one portable file.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;

use crate::output::{bytes, thousands};
use crate::store::{open_collection, GlobalArgs};

/// Snapshot operations.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Write a consistent snapshot of a collection to a file.
    #[command(after_help = "Example:\n  paradox snapshot create --collection docs docs.snap")]
    Create(CreateArgs),
    /// Restore a snapshot file as a new collection.
    #[command(after_help = "Example:\n  paradox snapshot restore docs.snap --as docs_copy")]
    Restore(RestoreArgs),
}

/// `snapshot create` flags.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Collection to snapshot.
    #[arg(long)]
    pub collection: String,
    /// File to write.
    pub out_file: PathBuf,
}

/// `snapshot restore` flags.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Snapshot file to read.
    pub file: PathBuf,
    /// Name for the restored collection (default: the name stored in the snapshot).
    #[arg(long = "as", value_name = "NAME")]
    pub name: Option<String>,
}

/// Runs a `snapshot` subcommand.
pub fn run(command: SnapshotCommand, global: &GlobalArgs) -> Result<()> {
    let engine = match command {
        SnapshotCommand::Create(_) => global.open_existing_engine()?,
        SnapshotCommand::Restore(_) => global.open_engine()?,
    };
    match command {
        SnapshotCommand::Create(args) => {
            open_collection(&engine, &args.collection)?;
            engine
                .snapshot_collection(&args.collection, &args.out_file)
                .with_context(|| {
                    format!(
                        "cannot snapshot `{}` to {}",
                        args.collection,
                        args.out_file.display()
                    )
                })?;
            let size = std::fs::metadata(&args.out_file)
                .map(|m| m.len())
                .unwrap_or(0);
            println!(
                "wrote snapshot of `{}` to {} ({})",
                args.collection,
                args.out_file.display(),
                bytes(size)
            );
        }
        SnapshotCommand::Restore(args) => {
            let collection = engine
                .restore_collection(&args.file, args.name.as_deref())
                .with_context(|| format!("cannot restore snapshot {}", args.file.display()))?;
            let info = collection.info();
            println!(
                "restored collection `{}` ({} points) from {}",
                info.name,
                thousands(info.points as u64),
                args.file.display()
            );
            // Snapshots carry data, not graphs (derived): rebuild them before exiting.
            if collection.pending_index_builds() > 0 {
                eprintln!("building indexes of `{}`...", info.name);
                collection.wait_for_indexes();
            }
        }
    }
    Ok(())
}
