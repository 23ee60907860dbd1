//! `paradox search`: nearest neighbours of a literal vector, a row of a file, or a stored
//! point.

use anyhow::{bail, ensure, Context, Result};
use clap::{ArgGroup, Args};
use paradox_engine::{Collection, PointId, ScoredPoint, SearchRequest};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Instant;

use crate::formats::{jsonl::point_id_to_json, read_vectors};
use crate::output::{duration, excerpt, Table};
use crate::store::{open_collection, parse_filter, GlobalArgs};

const EXAMPLES: &str = "\
Examples:
  paradox search --collection docs --vector '[0.1, 0.2, 0.3]'
  paradox search --collection docs --vector-file queries.npy --row 3 -k 5
  paradox search --collection docs --id 42 --filter '{\"key\": \"year\", \"range\": {\"gte\": 2010}}'
  paradox search --collection docs --id 42 --filter '{\"and\": [{\"key\": \"lang\", \"eq\": \"en\"},
                                                    {\"key\": \"tags\", \"in\": [\"ai\", \"db\"]}]}'
  paradox search --collection docs --id doc-7 --json
  paradox search --collection notes --id 42 --as-of 1763740800000";

/// `search` flags.
#[derive(Debug, Args)]
#[command(
    after_help = EXAMPLES,
    group(ArgGroup::new("query").required(true).args(["vector", "vector_file", "id"]))
)]
pub struct SearchArgs {
    /// Collection to search.
    #[arg(long)]
    pub collection: String,
    /// The query vector as a JSON array.
    #[arg(long, allow_hyphen_values = true, value_name = "JSON")]
    pub vector: Option<String>,
    /// Take the query from a .npy or .fvecs file (see --row).
    #[arg(long, value_name = "FILE")]
    pub vector_file: Option<PathBuf>,
    /// Row of --vector-file to use.
    #[arg(long, requires = "vector_file", value_name = "N")]
    pub row: Option<usize>,
    /// Use the stored vector of this point as the query.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Number of neighbours to return.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// Payload filter, as JSON: {"key": K, "eq"|"in"|"range"|"exists": ...}, combined with
    /// {"and": [...]}, {"or": [...]}, {"not": {...}}.
    #[arg(long, value_name = "JSON")]
    pub filter: Option<String>,
    /// Include each result's vector.
    #[arg(long)]
    pub with_vector: bool,
    /// HNSW beam width for this search (higher: better recall, slower).
    #[arg(long, value_name = "EF")]
    pub ef: Option<usize>,
    /// IVF lists visited per sealed segment (default: the collection's `nprobe`).
    #[arg(long, value_name = "N")]
    pub nprobe: Option<usize>,
    /// Scan every point exactly, ignoring indexes.
    #[arg(long)]
    pub exact: bool,
    /// Search the memory as it was at this time, in milliseconds since the Unix epoch
    /// (collections created with --history).
    #[arg(long, value_name = "MS")]
    pub as_of: Option<i64>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `search`.
pub fn run(args: SearchArgs, global: &GlobalArgs) -> Result<()> {
    let engine = global.open_existing_engine()?;
    let collection = open_collection(&engine, &args.collection)?;
    let vector = query_vector(&args, &collection)?;
    let filter = args.filter.as_deref().map(parse_filter).transpose()?;
    let request = SearchRequest {
        vector,
        k: args.k,
        filter,
        with_payload: true,
        with_vector: args.with_vector,
        params: paradox_engine::SearchParams {
            ef: args.ef,
            nprobe: args.nprobe,
            exact: args.exact,
        },
        as_of: args.as_of,
    };
    let started = Instant::now();
    let results = collection
        .search(&request)
        .with_context(|| format!("search in `{}` failed", args.collection))?;
    let took = started.elapsed();
    if args.json {
        let rows: Vec<Value> = results.iter().map(result_json).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", results_table(&results, args.with_vector).render(0));
        println!("{} results in {}", results.len(), duration(took));
    }
    Ok(())
}

fn query_vector(args: &SearchArgs, collection: &Collection) -> Result<Vec<f32>> {
    if let Some(text) = &args.vector {
        return serde_json::from_str(text).with_context(|| {
            format!("--vector must be a JSON array of numbers, e.g. '[0.1, 0.2]'; got {text}")
        });
    }
    if let Some(path) = &args.vector_file {
        let matrix = read_vectors(path)?;
        let row = args.row.unwrap_or(0);
        ensure!(
            row < matrix.rows,
            "--row {row} is out of range: {} holds {} rows",
            path.display(),
            matrix.rows
        );
        return Ok(matrix.row(row).to_vec());
    }
    let Some(id_text) = &args.id else {
        bail!("give one of --vector, --vector-file or --id");
    };
    let id = PointId::parse(id_text);
    let found = collection.get(std::slice::from_ref(&id))?;
    match found.into_iter().next().flatten() {
        Some(point) => Ok(point.vector),
        None => bail!(
            "point {id_text} not found in collection `{}`",
            args.collection
        ),
    }
}

/// One result as JSON: `{"id", "score", "payload", "vector"?}`.
pub fn result_json(result: &ScoredPoint) -> Value {
    let mut out = json!({
        "id": point_id_to_json(&result.id),
        "score": result.score,
        "payload": result.payload.clone().map(Value::Object).unwrap_or(Value::Null),
    });
    if let Some(vector) = &result.vector {
        out["vector"] = json!(vector);
    }
    out
}

/// Results as a table: rank, id, score, payload excerpt (and vector excerpt if asked).
pub fn results_table(results: &[ScoredPoint], with_vector: bool) -> Table {
    let mut headers = vec!["rank", "id", "score", "payload"];
    if with_vector {
        headers.push("vector");
    }
    let mut table = Table::new(&headers);
    for (rank, result) in results.iter().enumerate() {
        let payload = result
            .payload
            .as_ref()
            .map(|p| excerpt(&Value::Object(p.clone()), 72))
            .unwrap_or_default();
        let mut cells = vec![
            (rank + 1).to_string(),
            result.id.to_string(),
            format!("{:.4}", result.score),
            payload,
        ];
        if let Some(vector) = &result.vector {
            cells.push(excerpt(&json!(vector), 48));
        }
        table.row(cells);
    }
    table
}
