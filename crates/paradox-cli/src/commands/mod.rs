//! The human-facing subcommands, one module each.

pub mod collection;
pub mod demo;
pub mod export;
pub mod import;
pub mod info;
pub mod search;
pub mod serve;
pub mod snapshot;
pub mod space;
