//! The BERT forward pass of [`super::MiniLmEncoder`]: weights, packs of unpadded token
//! rows, attention per text and head (see the parent module's doc).

use std::path::Path;

use serde::Deserialize;

use super::kernels::*;
use crate::error::{LifecycleError, Result};

/// The fields of a BERT `config.json` this encoder reads.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct BertConfig {
    pub(super) vocab_size: usize,
    pub(super) hidden_size: usize,
    pub(super) num_hidden_layers: usize,
    pub(super) num_attention_heads: usize,
    pub(super) intermediate_size: usize,
    pub(super) max_position_embeddings: usize,
    pub(super) type_vocab_size: usize,
    pub(super) layer_norm_eps: f64,
    pub(super) hidden_act: String,
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
pub(super) struct Bert {
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

impl Bert {
    pub(super) fn load(path: &Path, config: &BertConfig, keep_layers: usize) -> Result<Bert> {
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
    pub(super) fn forward_pack(
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
pub(super) struct Activations {
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
