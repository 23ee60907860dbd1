//! `paradox info`: what a collection holds and what it costs on disk.

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use crate::output::{bytes, thousands};
use crate::store::{open_collection, GlobalArgs};

/// `info` flags.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  paradox info\n  paradox info --collection docs --json")]
pub struct InfoArgs {
    /// Only this collection (default: all).
    #[arg(long)]
    pub collection: Option<String>,
    /// Print JSON (an object with --collection, else an array).
    #[arg(long)]
    pub json: bool,
}

/// Runs `info`.
pub fn run(args: InfoArgs, global: &GlobalArgs) -> Result<()> {
    let engine = global.open_existing_engine()?;
    let names = match &args.collection {
        Some(name) => vec![name.clone()],
        None => engine.list_collections(),
    };
    let mut infos = Vec::with_capacity(names.len());
    for name in &names {
        infos.push(serde_json::to_value(
            open_collection(&engine, name)?.info(),
        )?);
    }
    if args.json {
        let value = match (&args.collection, infos.len()) {
            (Some(_), 1) => infos.remove(0),
            _ => Value::Array(infos),
        };
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    if infos.is_empty() {
        println!(
            "no collections in {} (try `paradox demo`)",
            global.data_dir.display()
        );
    }
    for (i, info) in infos.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", render_info(info));
    }
    Ok(())
}

/// Renders collection info as aligned `key: value` lines. Works from the serialised form so
/// fields the engine adds later show up without a change here.
pub fn render_info(info: &Value) -> String {
    let Some(fields) = info.as_object() else {
        return format!("{info}\n");
    };
    let name = fields.get("name").and_then(Value::as_str).unwrap_or("?");
    let mut out = format!("collection `{name}`\n");
    let width = fields.keys().map(|k| k.len()).max().unwrap_or(0);
    for (key, value) in fields.iter().filter(|(k, _)| k.as_str() != "name") {
        out.push_str(&format!("  {key:<width$}  {}\n", render_field(key, value)));
    }
    out
}

fn render_field(key: &str, value: &Value) -> String {
    match value.as_u64() {
        Some(n) if key.contains("bytes") => format!("{} ({})", bytes(n), thousands(n)),
        Some(n) => thousands(n),
        None => match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sizes_and_counts_readably() {
        let info = serde_json::json!({
            "name": "docs", "dimension": 384, "metric": "cosine",
            "points": 1_200_000, "bytes_on_disk": 2048,
        });
        let text = render_info(&info);
        assert!(text.starts_with("collection `docs`\n"));
        assert!(text.contains("points         1,200,000"), "{text}");
        assert!(text.contains("bytes_on_disk  2.0 KiB (2,048)"), "{text}");
        assert!(text.contains("metric         cosine"), "{text}");
    }
}
