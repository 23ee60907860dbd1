//! AVX2 + FMA matrix-vector kernels: the AVX-512 scheme with 8-lane registers, so a panel
//! is worked through in chunks that fit the 16 registers.
//!
//! * `f32`: chunks of up to 6 groups (12 accumulators + the broadcast input).
//! * `i8`, exact: per quad of inputs, 16 codes (4 outputs × 4 inputs) are sign-extended to
//!   `i16` and multiplied with the 4 input codes by `vpmaddwd`, which sums adjacent pairs
//!   into `i32`; the pairs are added at the end (`vphaddd`). Chunks of up to 3 groups (12
//!   accumulators). `vpmaddubsw` would take the bytes directly but saturates at
//!   `255 · 127 · 2`. Also used by the AVX-512 table on CPUs without VNNI.
//! * Quantising the input: a max/min pass, then 8 values per step.

use std::arch::x86_64::*;

use super::scalar::{finish_f32, scaled};
use super::{input_code, Combine, InputScale, MatvecTable, PackedMatrix, QuantizedMatrix};
use crate::dispatch::SimdLevel;

/// The AVX2 table, if this CPU has AVX2 and FMA.
pub(super) fn table() -> Option<&'static MatvecTable> {
    (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")).then_some(&TABLE)
}

/// Only reachable through [`table`], which checks the CPU first: that is what makes the
/// safe wrappers below sound.
static TABLE: MatvecTable = MatvecTable {
    level: SimdLevel::Avx2,
    f32_matvec,
    quantize,
    i8_matvec,
};

/// Most groups per `f32` chunk.
const F32_CHUNK: usize = 6;
/// Most groups per `i8` chunk.
const I8_CHUNK: usize = 3;

/// Where a chunk's results go (as in the AVX-512 kernels), starting at the chunk's first
/// row.
struct Epilogue<'a> {
    out: &'a mut [f32],
    bias: &'a [f32],
    combine: Combine,
}

impl Epilogue<'_> {
    /// `out[16j..] (combine) v + bias` on the group's real rows; `v` holds rows `16j..16j +
    /// 8` and `16j + 8..16j + 16`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn finish(&mut self, j: usize, v: [__m256; 2]) {
        let start = 16 * j;
        let rows = self.out.len().saturating_sub(start).min(16);
        if rows == 16 {
            for (h, v) in v.into_iter().enumerate() {
                let at = start + 8 * h;
                let (o, b) = (&mut self.out[at..at + 8], &self.bias[at..at + 8]);
                // SAFETY: `o` and `b` are 8 floats each.
                unsafe {
                    let v = _mm256_add_ps(v, _mm256_loadu_ps(b.as_ptr()));
                    let v = match self.combine {
                        Combine::Store => v,
                        Combine::StoreRelu => _mm256_max_ps(v, _mm256_setzero_ps()),
                        Combine::Add => _mm256_add_ps(_mm256_loadu_ps(o.as_ptr()), v),
                    };
                    _mm256_storeu_ps(o.as_mut_ptr(), v);
                }
            }
        } else {
            let mut acc = [0.0f32; 16];
            // SAFETY: `acc` holds 16 floats.
            unsafe {
                _mm256_storeu_ps(acc.as_mut_ptr(), v[0]);
                _mm256_storeu_ps(acc.as_mut_ptr().add(8), v[1]);
            }
            let rows = start..start + rows;
            finish_f32(
                &acc,
                &self.bias[rows.clone()],
                &mut self.out[rows],
                self.combine,
            );
        }
    }
}

/// Calls `$kernel::<C>($args)` for the runtime chunk size `$groups` in `1..=$max`.
macro_rules! with_chunk {
    ($groups:expr, 6, $kernel:ident($($arg:expr),*)) => {
        match $groups {
            1 => $kernel::<1>($($arg),*),
            2 => $kernel::<2>($($arg),*),
            3 => $kernel::<3>($($arg),*),
            4 => $kernel::<4>($($arg),*),
            5 => $kernel::<5>($($arg),*),
            _ => $kernel::<6>($($arg),*),
        }
    };
    ($groups:expr, 3, $kernel:ident($($arg:expr),*)) => {
        match $groups {
            1 => $kernel::<1>($($arg),*),
            2 => $kernel::<2>($($arg),*),
            _ => $kernel::<3>($($arg),*),
        }
    };
}

fn f32_matvec(m: &PackedMatrix, x: &[f32], out: &mut [f32], combine: Combine) {
    assert!(x.len() == m.cols && out.len() == m.rows);
    let (width, cols) = (m.panels.width(), m.cols);
    let weights = m.weights.as_slice();
    for p in 0..m.panels.count {
        let panel = &weights[p * cols * width..(p + 1) * cols * width];
        for g0 in (0..m.panels.groups).step_by(F32_CHUNK) {
            let first = p * width + 16 * g0;
            let valid = m.rows.saturating_sub(first).min(16 * F32_CHUNK);
            if valid == 0 {
                break;
            }
            let chunk = (m.panels.groups - g0).min(F32_CHUNK);
            let mut epilogue = Epilogue {
                out: &mut out[first..first + valid],
                bias: &m.bias[first..],
                combine,
            };
            // SAFETY: only reachable through `TABLE`, handed out after detecting the
            // features; the chunk's columns `16 · g0..16 · (g0 + chunk) <= width` of each of
            // the panel's `cols` lines are inside `panel`, and `x` holds `cols` floats.
            unsafe {
                with_chunk!(
                    chunk,
                    6,
                    f32_chunk(panel.as_ptr().add(16 * g0), width, x, &mut epilogue)
                )
            }
        }
    }
}

/// `C` groups of one panel: lines of `stride` floats, one per input, starting at `w`.
///
/// # Safety
///
/// `w + k · stride + i` is readable for `k < x.len()`, `i < 16 · C`; the CPU supports AVX2
/// and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn f32_chunk<const C: usize>(w: *const f32, stride: usize, x: &[f32], e: &mut Epilogue) {
    let mut acc = [[_mm256_setzero_ps(); 2]; C];
    for (k, &xk) in x.iter().enumerate() {
        let xk = _mm256_set1_ps(xk);
        // SAFETY: per the contract.
        unsafe {
            let wk = w.add(k * stride);
            for (j, a) in acc.iter_mut().enumerate() {
                a[0] = _mm256_fmadd_ps(xk, _mm256_loadu_ps(wk.add(16 * j)), a[0]);
                a[1] = _mm256_fmadd_ps(xk, _mm256_loadu_ps(wk.add(16 * j + 8)), a[1]);
            }
        }
    }
    for (j, &a) in acc.iter().enumerate() {
        if 16 * j >= e.out.len() {
            break;
        }
        e.finish(j, a);
    }
}

fn quantize(x: &[f32], codes: &mut [u8]) -> InputScale {
    // SAFETY: only reachable through `TABLE`, handed out after detecting the features.
    unsafe { quantize_kernel(x, codes) }
}

/// Largest lane of `v`.
#[inline]
#[target_feature(enable = "avx2")]
fn hmax(v: __m256) -> f32 {
    let quad = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let pair = _mm_max_ps(quad, _mm_movehl_ps(quad, quad));
    _mm_cvtss_f32(_mm_max_ss(pair, _mm_shuffle_ps::<0b01>(pair, pair)))
}

/// Smallest lane of `v`.
#[inline]
#[target_feature(enable = "avx2")]
fn hmin(v: __m256) -> f32 {
    let quad = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let pair = _mm_min_ps(quad, _mm_movehl_ps(quad, quad));
    _mm_cvtss_f32(_mm_min_ss(pair, _mm_shuffle_ps::<0b01>(pair, pair)))
}

/// # Safety
///
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
unsafe fn quantize_kernel(x: &[f32], codes: &mut [u8]) -> InputScale {
    let n = x.len().min(codes.len());
    let sign = _mm256_set1_ps(-0.0);
    let (mut max_abs, mut min) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut blocks = x[..n].chunks_exact(8);
    for block in &mut blocks {
        // SAFETY: `block` is 8 floats.
        let v = unsafe { _mm256_loadu_ps(block.as_ptr()) };
        max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign, v));
        min = _mm256_min_ps(min, v);
    }
    let (mut largest, mut smallest) = (hmax(max_abs), hmin(min));
    for &v in blocks.remainder() {
        largest = largest.max(v.abs());
        smallest = smallest.min(v);
    }
    let (input, factor) = InputScale::new(largest, smallest < 0.0);
    let lim = input.limit();
    let (f, lo, hi, offset) = (
        _mm256_set1_ps(factor),
        _mm256_set1_epi32(-lim),
        _mm256_set1_epi32(lim),
        _mm256_set1_epi32(input.offset),
    );
    // Byte 0 of each dword of each 128-bit lane, then dword 0 of both lanes.
    let narrow = _mm256_setr_epi8(
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, //
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    );
    let gather = _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: reads floats `i..i + 8 <= n` of `x`, writes bytes `i..i + 8` of `codes`.
        unsafe {
            let v = _mm256_mul_ps(_mm256_loadu_ps(x.as_ptr().add(i)), f);
            let q = _mm256_cvtps_epi32(_mm256_round_ps::<
                { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
            >(v));
            let q = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(q, lo), hi), offset);
            let bytes = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(q, narrow), gather);
            _mm_storel_epi64(
                codes.as_mut_ptr().add(i).cast(),
                _mm256_castsi256_si128(bytes),
            );
        }
        i += 8;
    }
    for (c, &v) in codes[i..n].iter_mut().zip(&x[i..n]) {
        *c = input_code(v, factor, input);
    }
    input
}

/// The exact integer product (also the AVX-512 table's on CPUs without VNNI, whose
/// detection checks AVX2 as well).
pub(super) fn i8_matvec(
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
        let panel = &weights[p * quads * width * 4..(p + 1) * quads * width * 4];
        for g0 in (0..m.panels.groups).step_by(I8_CHUNK) {
            let first = p * width + 16 * g0;
            let valid = m.rows.saturating_sub(first).min(16 * I8_CHUNK);
            if valid == 0 {
                break;
            }
            let chunk = (m.panels.groups - g0).min(I8_CHUNK);
            let job = IntChunk {
                codes: &codes[..quads * 4],
                stride: width * 4,
                input,
                scales: &m.scales[first..],
                code_sums: &m.code_sums[first..],
            };
            let mut epilogue = Epilogue {
                out: &mut out[first..first + valid],
                bias: &m.bias[first..],
                combine,
            };
            // SAFETY: only reachable through `TABLE` or the AVX-512 tables, all handed out
            // after detecting AVX2; the chunk's codes `64 · g0..64 · (g0 + chunk) <= 4 ·
            // width` of each of the panel's `quads` lines are inside `panel`.
            unsafe {
                with_chunk!(
                    chunk,
                    3,
                    i8_chunk(panel.as_ptr().add(64 * g0), &job, &mut epilogue)
                )
            }
        }
    }
}

/// The inputs of one integer chunk, its lines' stride (codes per quad of the panel), and
/// the per-row data from the chunk's first row.
struct IntChunk<'a> {
    codes: &'a [u8],
    stride: usize,
    input: InputScale,
    scales: &'a [f32],
    code_sums: &'a [i32],
}

/// `C` groups of one integer panel starting at `w`.
///
/// # Safety
///
/// `w + j · stride + i` is readable for `j < codes.len() / 4`, `i < 64 · C`; `scales` and
/// `code_sums` hold `16 · C` rows; the CPU supports AVX2.
#[target_feature(enable = "avx2")]
unsafe fn i8_chunk<const C: usize>(w: *const i8, job: &IntChunk, e: &mut Epilogue) {
    // acc[c][h]: rows 4h..4h + 4 of group c, two partial sums (inputs 0-1, 2-3) per row.
    let mut acc = [[_mm256_setzero_si256(); 4]; C];
    for (j, quad) in job.codes.chunks_exact(4).enumerate() {
        let bytes = u32::from_le_bytes([quad[0], quad[1], quad[2], quad[3]]);
        let xj = _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128(bytes as i32)));
        // SAFETY: per the contract.
        unsafe {
            let wj = w.add(j * job.stride);
            for (g, a) in acc.iter_mut().enumerate() {
                for (h, a) in a.iter_mut().enumerate() {
                    let codes = _mm_loadu_si128(wj.add(64 * g + 16 * h).cast());
                    let products = _mm256_madd_epi16(_mm256_cvtepi8_epi16(codes), xj);
                    *a = _mm256_add_epi32(*a, products);
                }
            }
        }
    }
    for (g, a) in acc.iter().enumerate() {
        if 16 * g >= e.out.len() {
            break;
        }
        // Pair sums: [r0 r1 r4 r5 | r2 r3 r6 r7] → rows 0..8 in order, likewise 8..16.
        let low = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_hadd_epi32(a[0], a[1]));
        let high = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_hadd_epi32(a[2], a[3]));
        let mut sums = [0i32; 16];
        // SAFETY: `sums` holds 16 `i32`.
        unsafe {
            _mm256_storeu_si256(sums.as_mut_ptr().cast(), low);
            _mm256_storeu_si256(sums.as_mut_ptr().add(8).cast(), high);
        }
        let mut values = [0.0f32; 16];
        for (i, (v, &s)) in values.iter_mut().zip(&sums).enumerate() {
            let r = 16 * g + i;
            *v = scaled(s, job.code_sums[r], job.input, job.scales[r]);
        }
        // SAFETY: `values` holds 16 floats.
        let v = unsafe {
            [
                _mm256_loadu_ps(values.as_ptr()),
                _mm256_loadu_ps(values.as_ptr().add(8)),
            ]
        };
        e.finish(g, v);
    }
}
