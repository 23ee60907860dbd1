//! An adapter's stored form: [`AdapterParams`] (plain vectors, also the serde form of
//! [`Adapter`]) and adapter files, the parameter container of [`crate::tensor_file`] with
//! magic `PDXADAPT`.
//!
//! The JSON header holds `kind`, `dim_in`, `dim_out`, the `fit` report, `residual_hidden`
//! (the residual network's units, or null) and, from format 2 on, `format` and
//! `residual_precision`. The tensors, all `f32`:
//!
//! | tensor | shape | when |
//! | --- | --- | --- |
//! | `weight`, `bias` | `d_out × d_in`, `d_out` | every kind but low rank |
//! | `down`, `up`, `bias` | `rank × d_in`, `d_out × rank`, `d_out` | low rank |
//! | `mlp_w1`, `mlp_b1`, `mlp_w2`, `mlp_b2` | `h × d_in`, `h`, `d_out × h`, `d_out` | `f32` residual |
//! | `mlp_w1_codes`, `mlp_w1_scales`, `mlp_b1` | `h × d_in`, `h`, `h` | `int8` residual |
//! | `mlp_w2_codes`, `mlp_w2_scales`, `mlp_b2` | `d_out × h`, `d_out`, `d_out` | `int8` residual |
//!
//! Codes are whole numbers in `−127..=127`: weight ≈ code · its row's scale, applied by the
//! rule of `paradox_kernels::matvec::QuantizedMatrix`.
//!
//! Versions:
//!
//! * **1** (no `format` key): residuals in `f32`. Still read, and kept `f32`: a loaded
//!   adapter computes what it computed before (and is saved again as `f32`).
//! * **2**: adds `format` and `residual_precision` (`f32` or `int8`); newly fitted residuals
//!   are `int8`. A build that only knows format 1 reads the non-MLP adapters of format 2
//!   (same tensors; it ignores the new keys) and refuses an `int8` residual (`mlp_w1` is
//!   missing).
//!
//! A file of a later format is refused with [`LifecycleError::Corrupt`] naming the format.

use std::path::Path;

use paradox_kernels::matvec::{QuantizedMatrix, MAX_QUANTIZED_COLS};
use serde::{Deserialize, Serialize};

use super::layers::{LinearMap, Residual, ResidualPrecision};
use super::{Adapter, AdapterFit, AdapterKind};
use crate::error::{LifecycleError, Result};
use crate::tensor_file::{read_tensor_file, write_tensor_file, TensorFile};

/// Magic of adapter files.
const MAGIC: &[u8; 8] = b"PDXADAPT";
/// The format this build writes (and the newest it reads).
const FORMAT: u32 = 2;

/// An adapter's parameters as plain vectors: what [`save`] writes and [`load`] reads, and
/// the serde form of [`Adapter`] (the packed forms are rebuilt on the way in).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct AdapterParams {
    kind: AdapterKind,
    dim_in: usize,
    dim_out: usize,
    fit: AdapterFit,
    linear: LinearParams,
    residual: Option<ResidualParams>,
}

/// [`LinearMap`] without its packed forms.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum LinearParams {
    Dense {
        weight: Vec<f32>,
        bias: Vec<f32>,
    },
    Factored {
        rank: usize,
        down: Vec<f32>,
        up: Vec<f32>,
        bias: Vec<f32>,
    },
}

/// [`Residual`] without its packed forms.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ResidualParams {
    hidden: usize,
    #[serde(default)]
    precision: ResidualPrecision,
    /// `f32`: the weights (`hidden × d_in`); `int8`: their codes.
    w1: Vec<f32>,
    /// `int8` only: one scale per hidden unit.
    #[serde(default)]
    w1_scales: Vec<f32>,
    b1: Vec<f32>,
    /// `f32`: the weights (`d_out × hidden`); `int8`: their codes.
    w2: Vec<f32>,
    /// `int8` only: one scale per output.
    #[serde(default)]
    w2_scales: Vec<f32>,
    b2: Vec<f32>,
}

impl From<&Adapter> for AdapterParams {
    fn from(adapter: &Adapter) -> AdapterParams {
        let bias = adapter.linear.bias().to_vec();
        let linear = match &adapter.linear {
            LinearMap::Dense { weight, .. } => LinearParams::Dense {
                weight: weight.clone(),
                bias,
            },
            LinearMap::Factored { rank, down, up, .. } => LinearParams::Factored {
                rank: *rank,
                down: down.clone(),
                up: up.clone(),
                bias,
            },
        };
        let codes = |m: &QuantizedMatrix| m.codes().into_iter().map(f32::from).collect();
        let residual = adapter.residual.as_ref().map(|r| match r {
            Residual::F32 {
                w1,
                w2,
                layer1,
                layer2,
            } => ResidualParams {
                hidden: r.hidden(),
                precision: ResidualPrecision::F32,
                w1: w1.clone(),
                w1_scales: Vec::new(),
                b1: layer1.bias().to_vec(),
                w2: w2.clone(),
                w2_scales: Vec::new(),
                b2: layer2.bias().to_vec(),
            },
            Residual::Int8 { layer1, layer2 } => ResidualParams {
                hidden: r.hidden(),
                precision: ResidualPrecision::Int8,
                w1: codes(layer1),
                w1_scales: layer1.scales().to_vec(),
                b1: layer1.bias().to_vec(),
                w2: codes(layer2),
                w2_scales: layer2.scales().to_vec(),
                b2: layer2.bias().to_vec(),
            },
        });
        AdapterParams {
            kind: adapter.kind,
            dim_in: adapter.dim_in,
            dim_out: adapter.dim_out,
            fit: adapter.fit.clone(),
            linear,
            residual,
        }
    }
}

impl From<Adapter> for AdapterParams {
    fn from(adapter: Adapter) -> AdapterParams {
        AdapterParams::from(&adapter)
    }
}

impl TryFrom<AdapterParams> for Adapter {
    type Error = String;

    /// Checks every shape and value range, then packs.
    fn try_from(p: AdapterParams) -> std::result::Result<Adapter, String> {
        let (din, dout) = (p.dim_in, p.dim_out);
        if din == 0 || dout == 0 {
            return Err(format!("dimensions {din} -> {dout}"));
        }
        p.kind.validate(din, dout).map_err(|e| e.to_string())?;
        let linear = match (p.kind, p.linear) {
            (AdapterKind::LowRank { rank: r, .. }, LinearParams::Factored { rank, .. })
                if r != rank =>
            {
                return Err(format!("factors of rank {rank} for a rank-{r} adapter"));
            }
            (
                AdapterKind::LowRank { .. },
                LinearParams::Factored {
                    rank,
                    down,
                    up,
                    bias,
                },
            ) => {
                check_len("down", &down, rank, din)?;
                check_len("up", &up, dout, rank)?;
                check_len("bias", &bias, dout, 1)?;
                LinearMap::factored(rank, down, up, &bias, din)
            }
            (AdapterKind::LowRank { .. }, _) => {
                return Err("a low-rank adapter needs factors".into());
            }
            (_, LinearParams::Dense { weight, bias }) => {
                check_len("weight", &weight, dout, din)?;
                check_len("bias", &bias, dout, 1)?;
                LinearMap::dense(weight, &bias, din)
            }
            (kind, LinearParams::Factored { .. }) => {
                return Err(format!("factors on a {} adapter", kind.name()));
            }
        };
        let residual = match (p.kind, p.residual) {
            (_, None) => None,
            (AdapterKind::Mlp { .. }, Some(r)) if r.hidden > 0 => {
                let h = r.hidden;
                check_len("mlp_b1", &r.b1, h, 1)?;
                check_len("mlp_b2", &r.b2, dout, 1)?;
                Some(match r.precision {
                    ResidualPrecision::F32 => {
                        check_len("mlp_w1", &r.w1, h, din)?;
                        check_len("mlp_w2", &r.w2, dout, h)?;
                        Residual::f32(r.w1, &r.b1, r.w2, &r.b2, din)
                    }
                    ResidualPrecision::Int8 => Residual::Int8 {
                        layer1: quantized("mlp_w1", &r.w1, &r.w1_scales, &r.b1, din)?,
                        layer2: quantized("mlp_w2", &r.w2, &r.w2_scales, &r.b2, h)?,
                    },
                })
            }
            (kind, Some(r)) => {
                return Err(format!(
                    "a residual of {} units on a {} adapter",
                    r.hidden,
                    kind.name()
                ));
            }
        };
        let mut adapter = Adapter::assemble(p.kind, din, dout, linear, residual);
        adapter.fit = p.fit;
        Ok(adapter)
    }
}

fn check_len(
    name: &str,
    values: &[f32],
    rows: usize,
    cols: usize,
) -> std::result::Result<(), String> {
    match rows.checked_mul(cols) {
        Some(len) if len == values.len() => Ok(()),
        Some(len) => Err(format!(
            "`{name}` has {} values, expected {len} ({rows} x {cols})",
            values.len()
        )),
        None => Err(format!("shape {rows} x {cols} of `{name}` overflows")),
    }
}

/// An `int8` layer from its codes (whole numbers in `−127..=127`), scales and bias, checked.
fn quantized(
    name: &str,
    codes: &[f32],
    scales: &[f32],
    bias: &[f32],
    cols: usize,
) -> std::result::Result<QuantizedMatrix, String> {
    let rows = bias.len();
    check_len(&format!("{name}_codes"), codes, rows, cols)?;
    check_len(&format!("{name}_scales"), scales, rows, 1)?;
    if cols > MAX_QUANTIZED_COLS {
        return Err(format!(
            "`{name}` has {cols} columns; an int8 layer holds at most {MAX_QUANTIZED_COLS}"
        ));
    }
    if let Some(bad) = codes
        .iter()
        .find(|&&q| q.fract() != 0.0 || !(-127.0..=127.0).contains(&q))
    {
        return Err(format!(
            "`{name}_codes` holds {bad}, not a whole number in -127..=127"
        ));
    }
    if let Some(bad) = scales.iter().find(|&&s| !(s >= 0.0 && s.is_finite())) {
        return Err(format!("`{name}_scales` holds the scale {bad}"));
    }
    let codes: Vec<i8> = codes.iter().map(|&q| q as i8).collect();
    Ok(QuantizedMatrix::from_codes(
        &codes,
        scales,
        Some(bias),
        rows,
        cols,
    ))
}

/// The header of an adapter file (the tensors follow it).
#[derive(Debug, Serialize, Deserialize)]
struct AdapterHeader {
    /// Layout version; absent (1) in files written before `int8` residuals.
    #[serde(default = "format_1")]
    format: u32,
    kind: AdapterKind,
    dim_in: usize,
    dim_out: usize,
    fit: AdapterFit,
    residual_hidden: Option<usize>,
    /// How the residual's weights are stored (format 1 is always `f32`).
    #[serde(default)]
    residual_precision: ResidualPrecision,
}

fn format_1() -> u32 {
    1
}

/// Writes `adapter` to `path` atomically, in format [`FORMAT`].
pub(super) fn save(adapter: &Adapter, path: &Path) -> Result<()> {
    let p = AdapterParams::from(adapter);
    let header = AdapterHeader {
        format: FORMAT,
        kind: p.kind,
        dim_in: p.dim_in,
        dim_out: p.dim_out,
        fit: p.fit,
        residual_hidden: p.residual.as_ref().map(|r| r.hidden),
        residual_precision: p
            .residual
            .as_ref()
            .map_or(ResidualPrecision::F32, |r| r.precision),
    };
    let meta = serde_json::to_value(&header)
        .map_err(|e| LifecycleError::InvalidArgument(format!("adapter header: {e}")))?;
    let mut tensors: Vec<(&str, &[f32])> = match &p.linear {
        LinearParams::Dense { weight, bias } => vec![("weight", weight), ("bias", bias)],
        LinearParams::Factored { down, up, bias, .. } => {
            vec![("down", down), ("up", up), ("bias", bias)]
        }
    };
    match &p.residual {
        None => {}
        Some(r) if r.precision == ResidualPrecision::F32 => tensors.extend([
            ("mlp_w1", &r.w1[..]),
            ("mlp_b1", &r.b1[..]),
            ("mlp_w2", &r.w2[..]),
            ("mlp_b2", &r.b2[..]),
        ]),
        Some(r) => tensors.extend([
            ("mlp_w1_codes", &r.w1[..]),
            ("mlp_w1_scales", &r.w1_scales[..]),
            ("mlp_b1", &r.b1[..]),
            ("mlp_w2_codes", &r.w2[..]),
            ("mlp_w2_scales", &r.w2_scales[..]),
            ("mlp_b2", &r.b2[..]),
        ]),
    }
    write_tensor_file(path, MAGIC, meta, &tensors)
}

/// Reads an adapter written by [`save`] (any format up to [`FORMAT`]). A damaged or
/// foreign file is [`LifecycleError::Corrupt`]; a missing one is [`LifecycleError::Io`].
pub(super) fn load(path: &Path) -> Result<Adapter> {
    let mut file = read_tensor_file(path, MAGIC)?;
    let corrupt = |why: String| LifecycleError::Corrupt(format!("{}: {why}", path.display()));
    let header: AdapterHeader = serde_json::from_value(file.meta.clone())
        .map_err(|e| corrupt(format!("adapter header: {e}")))?;
    if header.format == 0 || header.format > FORMAT {
        return Err(corrupt(format!(
            "adapter file format {} is not supported (this build reads 1 to {FORMAT}); \
             it was written by a newer version",
            header.format
        )));
    }
    let linear = match header.kind {
        AdapterKind::LowRank { rank, .. } => LinearParams::Factored {
            rank,
            down: take(&mut file, "down")?,
            up: take(&mut file, "up")?,
            bias: take(&mut file, "bias")?,
        },
        _ => LinearParams::Dense {
            weight: take(&mut file, "weight")?,
            bias: take(&mut file, "bias")?,
        },
    };
    let residual = match header.residual_hidden {
        None => None,
        Some(hidden) => Some(match header.residual_precision {
            ResidualPrecision::F32 => ResidualParams {
                hidden,
                precision: ResidualPrecision::F32,
                w1: take(&mut file, "mlp_w1")?,
                w1_scales: Vec::new(),
                b1: take(&mut file, "mlp_b1")?,
                w2: take(&mut file, "mlp_w2")?,
                w2_scales: Vec::new(),
                b2: take(&mut file, "mlp_b2")?,
            },
            ResidualPrecision::Int8 => ResidualParams {
                hidden,
                precision: ResidualPrecision::Int8,
                w1: take(&mut file, "mlp_w1_codes")?,
                w1_scales: take(&mut file, "mlp_w1_scales")?,
                b1: take(&mut file, "mlp_b1")?,
                w2: take(&mut file, "mlp_w2_codes")?,
                w2_scales: take(&mut file, "mlp_w2_scales")?,
                b2: take(&mut file, "mlp_b2")?,
            },
        }),
    };
    if let Some((name, _)) = file.tensors.first() {
        return Err(corrupt(format!("unexpected tensor `{name}`")));
    }
    Adapter::try_from(AdapterParams {
        kind: header.kind,
        dim_in: header.dim_in,
        dim_out: header.dim_out,
        fit: header.fit,
        linear,
        residual,
    })
    .map_err(corrupt)
}

/// Removes the tensor `name` from `file` (its length is checked when the adapter is built).
fn take(file: &mut TensorFile, name: &str) -> Result<Vec<f32>> {
    let at = file
        .tensors
        .iter()
        .position(|(n, _)| n == name)
        .ok_or_else(|| LifecycleError::Corrupt(format!("tensor `{name}` is missing")))?;
    Ok(file.tensors.swap_remove(at).1)
}
