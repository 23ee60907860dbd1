//! Runtime choice of the kernel implementation.
//!
//! Each instruction-set module (`scalar`, `x86::avx2`, `x86::avx512`, `aarch64`) owns one
//! private, immutable [`KernelTable`] and hands it out only once the CPU has been checked
//! for the features its functions were compiled for. That is the invariant that makes the
//! table's *safe* `fn` pointers sound: the `#[target_feature]` code behind them is
//! reachable only through a table that exists because detection succeeded.
//!
//! [`kernel_table`] picks the best table on first use (one `OnceLock`), so there is no
//! per-call feature detection; callers in hot loops can copy the `fn` pointers out once.

use std::sync::OnceLock;

use crate::gemm::{DistanceKind, Output};
use crate::TopK;

/// An instruction set the kernels are implemented for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimdLevel {
    /// Portable Rust, no explicit SIMD (the compiler may still vectorise it).
    Scalar,
    /// AArch64 Advanced SIMD (baseline on AArch64, chosen at compile time).
    Neon,
    /// x86-64 AVX2 with FMA.
    Avx2,
    /// x86-64 AVX-512 (F), with AVX2 and FMA.
    Avx512,
}

impl SimdLevel {
    /// Every level, from the most portable to the widest.
    pub const ALL: [SimdLevel; 4] = [
        SimdLevel::Scalar,
        SimdLevel::Neon,
        SimdLevel::Avx2,
        SimdLevel::Avx512,
    ];

    /// Name reported by [`crate::simd_level`]: `"scalar"`, `"neon"`, `"avx2+fma"`, `"avx512"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SimdLevel::Scalar => "scalar",
            SimdLevel::Neon => "neon",
            SimdLevel::Avx2 => "avx2+fma",
            SimdLevel::Avx512 => "avx512",
        }
    }

    /// Parses the names accepted by `PARADOX_SIMD`: `scalar`, `neon`, `avx2` (or
    /// `avx2+fma`), `avx512` (case-insensitive).
    pub fn parse(name: &str) -> Option<SimdLevel> {
        match name.trim().to_ascii_lowercase().as_str() {
            "scalar" => Some(SimdLevel::Scalar),
            "neon" => Some(SimdLevel::Neon),
            "avx2" | "avx2+fma" => Some(SimdLevel::Avx2),
            "avx512" | "avx512f" => Some(SimdLevel::Avx512),
            _ => None,
        }
    }

    /// Whether this CPU can run the level's kernels.
    pub fn is_supported(self) -> bool {
        kernel_table_for(self).is_some()
    }
}

impl std::fmt::Display for SimdLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `(query, data, rows, out)`: distances from the query to the listed rows of `data`
/// (see [`crate::l2_squared_gather`]).
pub type GatherKernel = fn(&[f32], &[f32], &[u32], &mut [f32]);

/// The kernels of one [`SimdLevel`], as plain function pointers.
///
/// Every function has exactly the semantics of the crate-level function of the same name
/// ([`crate::l2_squared`], [`crate::dot_one_to_many`], ...). An index that calls a kernel
/// millions of times can copy a pointer out of [`kernel_table`] once:
///
/// ```
/// let dot = paradox_kernels::kernel_table().dot;
/// assert_eq!(dot(&[1.0, 2.0], &[3.0, 4.0]), 11.0);
/// ```
#[derive(Debug)]
pub struct KernelTable {
    /// The instruction set behind these pointers.
    pub level: SimdLevel,
    /// See [`crate::l2_squared`].
    pub l2_squared: fn(&[f32], &[f32]) -> f32,
    /// See [`crate::dot`].
    pub dot: fn(&[f32], &[f32]) -> f32,
    /// See [`crate::l2_squared_one_to_many`].
    pub l2_squared_one_to_many: fn(&[f32], &[f32], &mut [f32]),
    /// See [`crate::dot_one_to_many`].
    pub dot_one_to_many: fn(&[f32], &[f32], &mut [f32]),
    /// See [`crate::l2_squared_gather`].
    pub l2_squared_gather: GatherKernel,
    /// See [`crate::dot_gather`].
    pub dot_gather: GatherKernel,
    /// See [`crate::dot_many_to_many`].
    pub dot_many_to_many: fn(&[f32], &[f32], usize, &mut [f32]),
    /// See [`crate::l2_squared_many_to_many`].
    pub l2_squared_many_to_many: fn(&[f32], &[f32], usize, &mut [f32]),
    /// The blocked many-vs-many driver instantiated for this level's micro-kernel.
    pub(crate) many_to_many: fn(&[f32], &[f32], usize, DistanceKind, Output<'_>),
}

impl KernelTable {
    /// [`crate::scan_topk`] with this table's kernels.
    pub fn scan_topk(
        &self,
        query: &[f32],
        rows: &[f32],
        metric_is_l2: bool,
        row_key_base: u64,
        top: &mut TopK,
    ) {
        crate::search::scan_topk(self, query, rows, metric_is_l2, row_key_base, top)
    }

    /// [`crate::scan_rows_topk`] with this table's kernels.
    pub fn scan_rows_topk(
        &self,
        query: &[f32],
        data: &[f32],
        rows: &[u32],
        metric_is_l2: bool,
        row_key_base: u64,
        top: &mut TopK,
    ) {
        crate::search::scan_rows_topk(self, query, data, rows, metric_is_l2, row_key_base, top)
    }

    /// [`crate::batch_topk`] with this table's kernels.
    pub fn batch_topk(
        &self,
        queries: &[f32],
        rows: &[f32],
        dim: usize,
        metric_is_l2: bool,
        row_key_base: u64,
        tops: &mut [TopK],
    ) {
        crate::search::batch_topk(self, queries, rows, dim, metric_is_l2, row_key_base, tops)
    }
}

/// Environment variable that forces a level (`scalar`, `avx2`, `avx512`, `neon`); read once,
/// ignored when the level is unknown or this CPU cannot run it.
pub const SIMD_ENV_VAR: &str = "PARADOX_SIMD";

static SELECTED: OnceLock<&'static KernelTable> = OnceLock::new();

/// The kernel table used by every crate-level function: the widest level this CPU supports,
/// or the one forced by `PARADOX_SIMD`. Chosen on the first call, then fixed for the process.
#[inline]
pub fn kernel_table() -> &'static KernelTable {
    SELECTED.get_or_init(select)
}

fn select() -> &'static KernelTable {
    let forced = std::env::var(SIMD_ENV_VAR)
        .ok()
        .and_then(|name| SimdLevel::parse(&name))
        .and_then(kernel_table_for);
    if let Some(table) = forced {
        return table;
    }
    [SimdLevel::Avx512, SimdLevel::Avx2, SimdLevel::Neon]
        .into_iter()
        .find_map(kernel_table_for)
        .unwrap_or(&crate::scalar::TABLE)
}

/// The table of one specific level, or `None` when this CPU (or this build's target
/// architecture) cannot run it. Tests and benchmarks use it to compare levels side by side.
pub fn kernel_table_for(level: SimdLevel) -> Option<&'static KernelTable> {
    match level {
        SimdLevel::Scalar => Some(&crate::scalar::TABLE),
        SimdLevel::Neon => neon_table(),
        SimdLevel::Avx2 => avx2_table(),
        SimdLevel::Avx512 => avx512_table(),
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2_table() -> Option<&'static KernelTable> {
    crate::x86::avx2::table()
}

#[cfg(not(target_arch = "x86_64"))]
fn avx2_table() -> Option<&'static KernelTable> {
    None
}

#[cfg(target_arch = "x86_64")]
fn avx512_table() -> Option<&'static KernelTable> {
    crate::x86::avx512::table()
}

#[cfg(not(target_arch = "x86_64"))]
fn avx512_table() -> Option<&'static KernelTable> {
    None
}

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
fn neon_table() -> Option<&'static KernelTable> {
    Some(&crate::aarch64::TABLE)
}

#[cfg(not(all(target_arch = "aarch64", target_feature = "neon")))]
fn neon_table() -> Option<&'static KernelTable> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_round_trip() {
        for level in SimdLevel::ALL {
            assert_eq!(SimdLevel::parse(level.as_str()), Some(level));
        }
        assert_eq!(SimdLevel::parse(" AVX2 "), Some(SimdLevel::Avx2));
        assert_eq!(SimdLevel::parse("sse9"), None);
    }

    #[test]
    fn the_selected_table_is_supported_and_scalar_always_is() {
        assert!(SimdLevel::Scalar.is_supported());
        let level = kernel_table().level;
        assert!(level.is_supported());
        assert_eq!(crate::simd_level(), level.as_str());
        assert!(std::ptr::eq(
            kernel_table_for(level).unwrap(),
            kernel_table()
        ));
    }
}
