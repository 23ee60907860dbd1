//! Portable quantised kernels: the fallback on CPUs without a SIMD level and the oracle the
//! SIMD levels are tested against. Eight independent partial sums, as in `crate::scalar`,
//! so the compiler can vectorise the SQ8 and bf16 loops.

use super::float16::{bf16_to_f32, f16_to_f32};
use super::QuantTable;
use crate::dispatch::SimdLevel;

pub(super) static TABLE: QuantTable = QuantTable {
    level: SimdLevel::Scalar,
    sq8_dot,
    sq8_l2_squared,
    f16_dot,
    f16_l2_squared,
    bf16_dot,
    bf16_l2_squared,
    sq8_dot_i8,
    sq8_dot_i8_gather,
    pq_l2_rows: super::pq::l2_rows,
    pq_neg_dot_rows: super::pq::neg_dot_rows,
    pq_l2_nearest: super::pq::l2_nearest,
    pq4_block: super::pq::pq4_block,
    prefer_i8: false,
};

const LANES: usize = 8;

/// Eight partial sums, each lane fed by `term(lane)` for every full chunk, added up in a
/// fixed order with the tail.
#[inline(always)]
fn reduce(acc: [f32; LANES], tail: f32) -> f32 {
    acc.iter().sum::<f32>() + tail
}

pub(super) fn sq8_dot(weights: &[f32], codes: &[u8]) -> f32 {
    let n = weights.len().min(codes.len());
    let (cw, cc) = (
        weights[..n].chunks_exact(LANES),
        codes[..n].chunks_exact(LANES),
    );
    let tail = cw
        .remainder()
        .iter()
        .zip(cc.remainder())
        .map(|(&w, &c)| w * c as f32)
        .sum();
    let mut acc = [0f32; LANES];
    for (w, c) in cw.zip(cc) {
        for lane in 0..LANES {
            acc[lane] += w[lane] * c[lane] as f32;
        }
    }
    reduce(acc, tail)
}

pub(super) fn sq8_dot_i8_gather(
    weights: &[i8],
    codes: &[u8],
    row_bytes: usize,
    rows: &[u32],
    out: &mut [i32],
) {
    super::dot_i8_rows(weights, codes, row_bytes, rows, out, sq8_dot_i8);
}

pub(super) fn sq8_dot_i8(weights: &[i8], codes: &[u8]) -> i32 {
    let n = weights.len().min(codes.len());
    let (cw, cc) = (
        weights[..n].chunks_exact(LANES),
        codes[..n].chunks_exact(LANES),
    );
    let tail: i32 = cw
        .remainder()
        .iter()
        .zip(cc.remainder())
        .map(|(&w, &c)| w as i32 * c as i32)
        .sum();
    let mut acc = [0i32; LANES];
    for (w, c) in cw.zip(cc) {
        for lane in 0..LANES {
            acc[lane] += w[lane] as i32 * c[lane] as i32;
        }
    }
    acc.iter().sum::<i32>() + tail
}

pub(super) fn sq8_l2_squared(offsets: &[f32], scales: &[f32], codes: &[u8]) -> f32 {
    let n = offsets.len().min(scales.len()).min(codes.len());
    let term = |o: f32, s: f32, c: u8| {
        let d = o - s * c as f32;
        d * d
    };
    let (co, cs, cc) = (
        offsets[..n].chunks_exact(LANES),
        scales[..n].chunks_exact(LANES),
        codes[..n].chunks_exact(LANES),
    );
    let tail = co
        .remainder()
        .iter()
        .zip(cs.remainder())
        .zip(cc.remainder())
        .map(|((&o, &s), &c)| term(o, s, c))
        .sum();
    let mut acc = [0f32; LANES];
    for ((o, s), c) in co.zip(cs).zip(cc) {
        for lane in 0..LANES {
            acc[lane] += term(o[lane], s[lane], c[lane]);
        }
    }
    reduce(acc, tail)
}

/// `Σ term(q_i, decode(code_i))` over a two-byte code row.
#[inline(always)]
fn half_sum(
    query: &[f32],
    codes: &[u8],
    decode: fn([u8; 2]) -> f32,
    term: impl Fn(f32, f32) -> f32,
) -> f32 {
    let n = query.len().min(codes.len() / 2);
    let (cq, cc) = (
        query[..n].chunks_exact(LANES),
        codes[..2 * n].chunks_exact(2 * LANES),
    );
    let tail = cq
        .remainder()
        .iter()
        .zip(cc.remainder().chunks_exact(2))
        .map(|(&q, c)| term(q, decode([c[0], c[1]])))
        .sum();
    let mut acc = [0f32; LANES];
    for (q, c) in cq.zip(cc) {
        for lane in 0..LANES {
            acc[lane] += term(q[lane], decode([c[2 * lane], c[2 * lane + 1]]));
        }
    }
    reduce(acc, tail)
}

fn product(q: f32, x: f32) -> f32 {
    q * x
}

fn squared_difference(q: f32, x: f32) -> f32 {
    (q - x) * (q - x)
}

pub(super) fn f16_dot(query: &[f32], codes: &[u8]) -> f32 {
    half_sum(query, codes, f16_to_f32, product)
}

pub(super) fn f16_l2_squared(query: &[f32], codes: &[u8]) -> f32 {
    half_sum(query, codes, f16_to_f32, squared_difference)
}

pub(super) fn bf16_dot(query: &[f32], codes: &[u8]) -> f32 {
    half_sum(query, codes, bf16_to_f32, product)
}

pub(super) fn bf16_l2_squared(query: &[f32], codes: &[u8]) -> f32 {
    half_sum(query, codes, bf16_to_f32, squared_difference)
}
