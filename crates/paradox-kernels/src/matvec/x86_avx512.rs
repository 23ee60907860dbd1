//! AVX-512 matrix-vector kernels.
//!
//! * `f32`: a panel of `G ≤ 24` groups keeps `G` accumulators of 16 outputs in registers;
//!   per input `k`, one broadcast of `x[k]` and `G` FMAs with the weights as memory operands,
//!   read in address order.
//! * `i8` (VNNI): the same with `vpdpbusd`, four inputs per instruction: the broadcast is
//!   four input codes (`u8`), each weight load 16 outputs × 4 inputs (`i8`).
//!   Without VNNI the AVX2 integer kernel runs instead (same integers).
//! * Quantising the input: a max/min pass, then 16 values per step (multiply, round to
//!   nearest even, clamp, narrow to bytes).
//!
//! Epilogues are masked to the panel's real rows, so no store goes past the output.

use std::arch::x86_64::*;

use super::{input_code, Combine, InputScale, MatvecTable, PackedMatrix, QuantizedMatrix};
use crate::dispatch::SimdLevel;

/// The AVX-512 table, with the VNNI product where this CPU has it. Also needs AVX2 and FMA
/// (every AVX-512 CPU has them): without VNNI the AVX2 integer kernel is used.
pub(super) fn table() -> Option<&'static MatvecTable> {
    let base = is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma");
    if !base {
        None
    } else if is_x86_feature_detected!("avx512vnni") {
        Some(&VNNI_TABLE)
    } else {
        Some(&TABLE)
    }
}

/// Only reachable through [`table`], which checks the CPU first: that is what makes the
/// safe wrappers below sound.
static TABLE: MatvecTable = MatvecTable {
    level: SimdLevel::Avx512,
    f32_matvec,
    quantize,
    i8_matvec: super::x86_avx2::i8_matvec,
};

/// [`TABLE`] with the VNNI integer product; only reachable through [`table`].
static VNNI_TABLE: MatvecTable = MatvecTable {
    i8_matvec: vnni_i8_matvec,
    ..TABLE
};

/// Mask of the first `len` lanes (`len` in `0..=16`).
#[inline]
fn lanes(len: usize) -> __mmask16 {
    ((1u32 << len.min(16)) - 1) as __mmask16
}

/// Calls `$kernel::<G>($args)` for the runtime `$groups` in `1..=24`.
macro_rules! with_groups {
    ($groups:expr, $kernel:ident($($arg:expr),*)) => {
        match $groups {
            1 => $kernel::<1>($($arg),*),
            2 => $kernel::<2>($($arg),*),
            3 => $kernel::<3>($($arg),*),
            4 => $kernel::<4>($($arg),*),
            5 => $kernel::<5>($($arg),*),
            6 => $kernel::<6>($($arg),*),
            7 => $kernel::<7>($($arg),*),
            8 => $kernel::<8>($($arg),*),
            9 => $kernel::<9>($($arg),*),
            10 => $kernel::<10>($($arg),*),
            11 => $kernel::<11>($($arg),*),
            12 => $kernel::<12>($($arg),*),
            13 => $kernel::<13>($($arg),*),
            14 => $kernel::<14>($($arg),*),
            15 => $kernel::<15>($($arg),*),
            16 => $kernel::<16>($($arg),*),
            17 => $kernel::<17>($($arg),*),
            18 => $kernel::<18>($($arg),*),
            19 => $kernel::<19>($($arg),*),
            20 => $kernel::<20>($($arg),*),
            21 => $kernel::<21>($($arg),*),
            22 => $kernel::<22>($($arg),*),
            23 => $kernel::<23>($($arg),*),
            _ => $kernel::<24>($($arg),*),
        }
    };
}

/// Where a panel's results go: its real rows of the output, bias and (for `i8`) scales and
/// code sums, all starting at the panel's first row.
struct Epilogue {
    out: *mut f32,
    bias: *const f32,
    scales: *const f32,
    code_sums: *const i32,
    /// Real rows in the panel (`1..=16 · G`).
    valid: usize,
    combine: Combine,
}

impl Epilogue {
    /// `out[16j..] (combine) v + bias` on the group's real rows.
    ///
    /// # Safety
    ///
    /// `16 · j < valid`; `out` holds `valid` floats and `bias` the panel's padded rows;
    /// the CPU supports AVX-512F.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn finish(&self, j: usize, v: __m512) {
        let m = lanes(self.valid - 16 * j);
        // SAFETY: per the contract; loads and stores are masked to the real rows.
        unsafe {
            let o = self.out.add(16 * j);
            let v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, self.bias.add(16 * j)));
            let v = match self.combine {
                Combine::Store => v,
                Combine::StoreRelu => _mm512_max_ps(v, _mm512_setzero_ps()),
                Combine::Add => _mm512_add_ps(_mm512_maskz_loadu_ps(m, o), v),
            };
            _mm512_mask_storeu_ps(o, m, v);
        }
    }
}

fn f32_matvec(m: &PackedMatrix, x: &[f32], out: &mut [f32], combine: Combine) {
    assert!(x.len() == m.cols && out.len() == m.rows);
    let (width, cols) = (m.panels.width(), m.cols);
    let weights = m.weights.as_slice();
    for p in 0..m.panels.count {
        let first = p * width;
        let valid = m.rows.saturating_sub(first).min(width);
        if valid == 0 {
            break;
        }
        let panel = &weights[p * cols * width..(p + 1) * cols * width];
        let epilogue = Epilogue {
            out: out[first..].as_mut_ptr(),
            bias: m.bias[first..].as_ptr(),
            scales: std::ptr::null(),
            code_sums: std::ptr::null(),
            valid,
            combine,
        };
        // SAFETY: only reachable through `TABLE`, handed out after detecting the features;
        // the panel holds `cols · 16 · groups` floats, `x` holds `cols`, `out` and `bias`
        // hold the panel's `valid` (and padded) rows from `first`.
        unsafe {
            with_groups!(
                m.panels.groups,
                f32_panel(panel.as_ptr(), x.as_ptr(), cols, &epilogue)
            )
        }
    }
}

/// One panel of `G` groups.
///
/// # Safety
///
/// `w` holds `cols · 16 · G` floats, `x` holds `cols`; `epilogue` per [`Epilogue::finish`];
/// the CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn f32_panel<const G: usize>(w: *const f32, x: *const f32, cols: usize, e: &Epilogue) {
    let mut acc = [_mm512_setzero_ps(); G];
    // SAFETY: input `k < cols` reads `16 · G` floats at `w + 16 · G · k`, inside `w`.
    unsafe {
        let mut wk = w;
        for k in 0..cols {
            let xk = _mm512_set1_ps(*x.add(k));
            for (j, a) in acc.iter_mut().enumerate() {
                *a = _mm512_fmadd_ps(xk, _mm512_loadu_ps(wk.add(16 * j)), *a);
            }
            wk = wk.add(16 * G);
        }
    }
    for (j, &a) in acc.iter().enumerate() {
        if 16 * j >= e.valid {
            break;
        }
        // SAFETY: `16 · j < valid`; the rest per this function's contract.
        unsafe { e.finish(j, a) };
    }
}

fn quantize(x: &[f32], codes: &mut [u8]) -> InputScale {
    assert!(codes.len() >= x.len());
    // SAFETY: only reachable through `TABLE`, handed out after detecting the features.
    unsafe { quantize_kernel(x, codes) }
}

/// # Safety
///
/// `codes.len() >= x.len()`; the CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn quantize_kernel(x: &[f32], codes: &mut [u8]) -> InputScale {
    let n = x.len();
    let (px, pc) = (x.as_ptr(), codes.as_mut_ptr());
    let (mut max_abs, mut min) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut i = 0;
    // SAFETY: full loads read `i..i + 16 <= n`; the tail load is masked to the lanes below
    // `n` (masked-off lanes read as zero, which changes neither the largest magnitude nor
    // whether a value is negative).
    unsafe {
        while i + 16 <= n {
            let v = _mm512_loadu_ps(px.add(i));
            max_abs = _mm512_max_ps(max_abs, _mm512_abs_ps(v));
            min = _mm512_min_ps(min, v);
            i += 16;
        }
        if i < n {
            let v = _mm512_maskz_loadu_ps(lanes(n - i), px.add(i));
            max_abs = _mm512_max_ps(max_abs, _mm512_abs_ps(v));
            min = _mm512_min_ps(min, v);
        }
    }
    let (input, factor) = InputScale::new(
        _mm512_reduce_max_ps(max_abs),
        _mm512_reduce_min_ps(min) < 0.0,
    );
    let lim = input.limit();
    let (f, lo, hi, offset) = (
        _mm512_set1_ps(factor),
        _mm512_set1_epi32(-lim),
        _mm512_set1_epi32(lim),
        _mm512_set1_epi32(input.offset),
    );
    let mut i = 0;
    // SAFETY: as above for `x`; stores write bytes `i..i + 16 <= n <= codes.len()`.
    unsafe {
        while i + 16 <= n {
            let q = _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm512_mul_ps(_mm512_loadu_ps(px.add(i)), f),
            );
            let q = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q, lo), hi), offset);
            _mm_storeu_si128(pc.add(i).cast(), _mm512_cvtepi32_epi8(q));
            i += 16;
        }
    }
    for (c, &v) in codes[i..n].iter_mut().zip(&x[i..]) {
        *c = input_code(v, factor, input);
    }
    input
}

fn vnni_i8_matvec(
    m: &QuantizedMatrix,
    codes: &[u8],
    input: InputScale,
    out: &mut [f32],
    combine: Combine,
) {
    let (width, quads) = (m.panels.width(), m.quads());
    assert!(codes.len() >= quads * 4 && out.len() == m.rows);
    let weights = m.codes.as_slice();
    for p in 0..m.panels.count {
        let first = p * width;
        let valid = m.rows.saturating_sub(first).min(width);
        if valid == 0 {
            break;
        }
        let panel = &weights[p * quads * width * 4..(p + 1) * quads * width * 4];
        let epilogue = Epilogue {
            out: out[first..].as_mut_ptr(),
            bias: m.bias[first..].as_ptr(),
            scales: m.scales[first..].as_ptr(),
            code_sums: m.code_sums[first..].as_ptr(),
            valid,
            combine,
        };
        // SAFETY: only reachable through `VNNI_TABLE`, handed out after detecting the
        // features; the panel holds `quads · 64 · groups` codes, `codes` holds `quads · 4`
        // bytes, and `out`, `bias`, `scales`, `code_sums` the panel's rows from `first`.
        unsafe {
            with_groups!(
                m.panels.groups,
                vnni_panel(panel.as_ptr(), codes.as_ptr(), quads, input, &epilogue)
            )
        }
    }
}

/// One panel of `G` groups: integer sums by `vpdpbusd`, then the shared dequantisation.
///
/// # Safety
///
/// `w` holds `quads · 64 · G` codes, `x` holds `quads · 4` bytes; `epilogue` per
/// [`Epilogue::finish`] with `scales` and `code_sums` for the panel's padded rows; the CPU
/// supports AVX-512F, BW and VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn vnni_panel<const G: usize>(
    w: *const i8,
    x: *const u8,
    quads: usize,
    input: InputScale,
    e: &Epilogue,
) {
    let mut acc = [_mm512_setzero_si512(); G];
    // SAFETY: quad `j < quads` reads 4 bytes at `x + 4j` and `64 · G` codes at
    // `w + 64 · G · j`, inside both.
    unsafe {
        let mut wj = w;
        for j in 0..quads {
            let xj = _mm512_set1_epi32(x.add(4 * j).cast::<i32>().read_unaligned());
            for (g, a) in acc.iter_mut().enumerate() {
                *a = _mm512_dpbusd_epi32(*a, xj, _mm512_loadu_si512(wj.add(64 * g).cast()));
            }
            wj = wj.add(64 * G);
        }
    }
    let (t, offset) = (_mm512_set1_ps(input.scale), _mm512_set1_epi32(input.offset));
    for (j, &a) in acc.iter().enumerate() {
        if 16 * j >= e.valid {
            break;
        }
        // SAFETY: `16 · j < valid` rows, and `scales` / `code_sums` hold the padded rows.
        unsafe {
            let sums = _mm512_loadu_si512(e.code_sums.add(16 * j).cast());
            let exact = _mm512_sub_epi32(a, _mm512_mullo_epi32(offset, sums));
            let scale = _mm512_mul_ps(t, _mm512_loadu_ps(e.scales.add(16 * j)));
            e.finish(j, _mm512_mul_ps(_mm512_cvtepi32_ps(exact), scale));
        }
    }
}
