//! Reasoning in latent space: concept arithmetic, analogies, blends, weighted
//! ("attention") search and conceptual search from raw input.
//!
//! A [`Concept`] is a stored point (by id, read through `Collection::get`) or a raw
//! vector. Arithmetic results are **L2-normalised** (directions carry meaning in
//! embedding spaces; the norm of `a − b + c` does not).
//!
//! **Analogy convention**: `analogy(a, b, c)` answers "`a` is to `b` as `c` is to ?",
//! i.e. the points nearest to `b − a + c` (3CosAdd; "man : king :: woman : ?" gives
//! "queen"), excluding `a`, `b` and `c` themselves. [`analogy_3cosmul`] re-ranks a pool
//! of candidates by 3CosMul (Levy & Goldberg 2014):
//! `cos'(d, b) · cos'(d, c) / (cos'(d, a) + ε)` with `cos' = (cos + 1) / 2`.

use crate::error::{MindError, Result};
use paradox_engine::{Collection, Filter, Metric, PointId, ScoredPoint, SearchRequest};
use paradox_kernels::{dot, normalize};

/// A concept: a stored point or a raw vector.
#[derive(Debug, Clone, PartialEq)]
pub enum Concept {
    /// A point of the collection, by id.
    Id(PointId),
    /// A raw vector (the collection's dimension).
    Vector(Vec<f32>),
}

impl From<PointId> for Concept {
    fn from(id: PointId) -> Self {
        Concept::Id(id)
    }
}

impl From<Vec<f32>> for Concept {
    fn from(v: Vec<f32>) -> Self {
        Concept::Vector(v)
    }
}

/// The vectors of `concepts`, reading stored points in one `get`.
pub fn resolve(collection: &Collection, concepts: &[Concept]) -> Result<Vec<Vec<f32>>> {
    let ids: Vec<PointId> = concepts
        .iter()
        .filter_map(|c| match c {
            Concept::Id(id) => Some(id.clone()),
            Concept::Vector(_) => None,
        })
        .collect();
    let mut fetched = collection.get(&ids)?.into_iter();
    let dim = collection.config().dimension;
    concepts
        .iter()
        .map(|c| match c {
            Concept::Vector(v) => {
                if v.len() != dim {
                    return Err(MindError::Dimension {
                        context: "concept vector",
                        expected: dim,
                        got: v.len(),
                    });
                }
                Ok(v.clone())
            }
            Concept::Id(id) => match fetched.next().flatten() {
                Some(point) => Ok(point.vector),
                None => Err(MindError::PointNotFound {
                    collection: collection.name().to_string(),
                    id: id.clone(),
                }),
            },
        })
        .collect()
}

/// `Σ wᵢ·vᵢ`, normalised to unit length (a zero sum stays zero).
///
/// ```
/// use paradox_mind::reasoning::combine;
/// let v = combine(&[(1.0, &[1.0, 0.0][..]), (-1.0, &[0.0, 1.0][..]), (1.0, &[0.0, 1.0][..])]).unwrap();
/// assert_eq!(v, vec![1.0, 0.0]);
/// ```
pub fn combine(terms: &[(f32, &[f32])]) -> Result<Vec<f32>> {
    let Some((_, first)) = terms.first() else {
        return Err(MindError::invalid("terms", "need at least one term"));
    };
    let dim = first.len();
    let mut out = vec![0.0f32; dim];
    for (w, v) in terms {
        if v.len() != dim {
            return Err(MindError::Dimension {
                context: "combine",
                expected: dim,
                got: v.len(),
            });
        }
        for (o, x) in out.iter_mut().zip(v.iter()) {
            *o += w * x;
        }
    }
    normalize(&mut out);
    Ok(out)
}

/// Concept arithmetic over a collection: `Σ wᵢ·concept_i`, normalised. `a − b + c` is
/// `arithmetic(col, &[(1.0, a), (-1.0, b), (1.0, c)])`.
pub fn arithmetic(collection: &Collection, terms: &[(f32, Concept)]) -> Result<Vec<f32>> {
    let concepts: Vec<Concept> = terms.iter().map(|(_, c)| c.clone()).collect();
    let vectors = resolve(collection, &concepts)?;
    let weighted: Vec<(f32, &[f32])> = terms
        .iter()
        .zip(&vectors)
        .map(|((w, _), v)| (*w, v.as_slice()))
        .collect();
    combine(&weighted)
}

fn excluded(hit: &ScoredPoint, concepts: &[&Concept]) -> bool {
    concepts
        .iter()
        .any(|c| matches!(c, Concept::Id(id) if *id == hit.id))
}

/// "`a` is to `b` as `c` is to ?": the `k` points nearest to `b − a + c` (normalised),
/// excluding `a`, `b`, `c` when they are stored points.
pub fn analogy(
    collection: &Collection,
    a: &Concept,
    b: &Concept,
    c: &Concept,
    k: usize,
) -> Result<Vec<ScoredPoint>> {
    let query = arithmetic(
        collection,
        &[(-1.0, a.clone()), (1.0, b.clone()), (1.0, c.clone())],
    )?;
    let hits = collection.search(&SearchRequest::new(query, k + 3))?;
    Ok(hits
        .into_iter()
        .filter(|h| !excluded(h, &[a, b, c]))
        .take(k)
        .collect())
}

/// 3CosMul score of candidate `d` for "`a` : `b` :: `c` : `d`" (unit vectors not
/// required; cosines are computed).
pub fn three_cos_mul_score(a: &[f32], b: &[f32], c: &[f32], d: &[f32]) -> f32 {
    const EPSILON: f32 = 1e-3;
    let cos = |x: &[f32], y: &[f32]| {
        let denom = (dot(x, x) * dot(y, y)).sqrt();
        let cosine = if denom > 0.0 { dot(x, y) / denom } else { 0.0 };
        (cosine + 1.0) / 2.0
    };
    cos(d, b) * cos(d, c) / (cos(d, a) + EPSILON)
}

/// Analogy by 3CosMul: the `pool` points nearest to `b − a + c` re-ranked by
/// [`three_cos_mul_score`] (best first; `score` holds the 3CosMul value). Exact when
/// `pool` covers the collection; otherwise a candidate pool (default choice: `10·k`,
/// at least 100).
pub fn analogy_3cosmul(
    collection: &Collection,
    a: &Concept,
    b: &Concept,
    c: &Concept,
    k: usize,
    pool: usize,
) -> Result<Vec<ScoredPoint>> {
    let vectors = resolve(collection, &[a.clone(), b.clone(), c.clone()])?;
    let query = combine(&[(-1.0, &vectors[0]), (1.0, &vectors[1]), (1.0, &vectors[2])])?;
    let mut request = SearchRequest::new(query, pool.max(k + 3));
    request.with_vector = true;
    let mut hits: Vec<ScoredPoint> = collection
        .search(&request)?
        .into_iter()
        .filter(|h| !excluded(h, &[a, b, c]))
        .collect();
    for hit in &mut hits {
        let d = hit.vector.as_deref().unwrap_or(&[]);
        hit.score = three_cos_mul_score(&vectors[0], &vectors[1], &vectors[2], d);
    }
    hits.sort_by(|x, y| y.score.total_cmp(&x.score));
    hits.truncate(k);
    Ok(hits)
}

/// Linear interpolation `(1 − t)·a + t·b`.
pub fn lerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    a.iter()
        .zip(b)
        .map(|(x, y)| (1.0 - t) * x + t * y)
        .collect()
}

/// Spherical interpolation: the direction moves along the great circle from `a` to
/// `b` at constant angular speed, the norm is interpolated linearly. `t = 0` gives `a`,
/// `t = 1` gives `b`; (anti)parallel inputs fall back to [`lerp`].
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    let na = dot(a, a).sqrt();
    let nb = dot(b, b).sqrt();
    if na == 0.0 || nb == 0.0 {
        return lerp(a, b, t);
    }
    let cos = (dot(a, b) / (na * nb)).clamp(-1.0, 1.0);
    let omega = cos.acos();
    let sin = omega.sin();
    if sin.abs() < 1e-6 {
        return lerp(a, b, t);
    }
    let wa = ((1.0 - t) * omega).sin() / sin;
    let wb = (t * omega).sin() / sin;
    let norm = (1.0 - t) * na + t * nb;
    a.iter()
        .zip(b)
        .map(|(x, y)| norm * (wa * x / na + wb * y / nb))
        .collect()
}

/// `Σ wᵢ·vᵢ / Σ wᵢ` (not normalised). Fails on an empty input or zero total weight.
pub fn weighted_centroid(items: &[(&[f32], f32)]) -> Result<Vec<f32>> {
    let total: f32 = items.iter().map(|(_, w)| w).sum();
    if items.is_empty() || total == 0.0 {
        return Err(MindError::invalid(
            "weights",
            "need items with a non-zero total weight",
        ));
    }
    let dim = items[0].0.len();
    let mut out = vec![0.0f32; dim];
    for (v, w) in items {
        if v.len() != dim {
            return Err(MindError::Dimension {
                context: "weighted_centroid",
                expected: dim,
                got: v.len(),
            });
        }
        for (o, x) in out.iter_mut().zip(v.iter()) {
            *o += w / total * x;
        }
    }
    Ok(out)
}

/// Search with per-dimension weights ("attention"): dimensions with large weights
/// dominate the comparison.
///
/// - `dot` / `cosine`: the score is `Σ wᵢ qᵢ xᵢ`, which is a plain search for `q ⊙ w`,
///   so the answer is exactly what the collection's index returns for that query.
/// - `l2`: the distance is `Σ wᵢ (qᵢ − xᵢ)²`, which no unweighted index answers; the
///   `pool` nearest points by plain L2 are re-ranked by the weighted distance (exact
///   when `pool` covers the collection).
///
/// Returned scores are the weighted ones (similarity, or squared distance for l2).
pub fn attention_search(
    collection: &Collection,
    query: &[f32],
    weights: &[f32],
    k: usize,
    pool: usize,
    filter: Option<Filter>,
) -> Result<Vec<ScoredPoint>> {
    let dim = collection.config().dimension;
    for (context, len) in [
        ("attention query", query.len()),
        ("attention weights", weights.len()),
    ] {
        if len != dim {
            return Err(MindError::Dimension {
                context,
                expected: dim,
                got: len,
            });
        }
    }
    if weights.iter().any(|w| *w < 0.0 || !w.is_finite()) {
        return Err(MindError::invalid(
            "weights",
            "must be finite and non-negative",
        ));
    }
    let metric = collection.config().metric;
    let weighted: Vec<f32> = query.iter().zip(weights).map(|(q, w)| q * w).collect();
    let (vector, size) = match metric {
        Metric::L2 => (query.to_vec(), pool.max(k)),
        _ => (weighted.clone(), k),
    };
    let mut request = SearchRequest::new(vector, size);
    request.with_vector = true;
    request.filter = filter;
    let mut hits = collection.search(&request)?;
    for hit in &mut hits {
        let x = hit.vector.as_deref().unwrap_or(&[]);
        hit.score = match metric {
            Metric::L2 => x
                .iter()
                .zip(query)
                .zip(weights)
                .map(|((x, q), w)| w * (q - x) * (q - x))
                .sum(),
            _ => dot(&weighted, x),
        };
    }
    match metric {
        Metric::L2 => hits.sort_by(|a, b| a.score.total_cmp(&b.score)),
        _ => hits.sort_by(|a, b| b.score.total_cmp(&a.score)),
    }
    hits.truncate(k);
    Ok(hits)
}

/// Maps raw input (text, an image, a record...) to a vector of the collection's space.
/// Until the engine has encoders, the caller supplies one; any `Fn(&I) -> Vec<f32>` is
/// an encoder.
pub trait Encoder<I: ?Sized> {
    /// The embedding of `input`.
    fn encode(&self, input: &I) -> Result<Vec<f32>>;
}

impl<I: ?Sized, F> Encoder<I> for F
where
    F: Fn(&I) -> Vec<f32>,
{
    fn encode(&self, input: &I) -> Result<Vec<f32>> {
        Ok(self(input))
    }
}

/// Conceptual search: encode `input`, then search the collection.
pub fn conceptual_search<I: ?Sized>(
    collection: &Collection,
    encoder: &dyn Encoder<I>,
    input: &I,
    k: usize,
    filter: Option<Filter>,
) -> Result<Vec<ScoredPoint>> {
    let vector = encoder.encode(input)?;
    let dim = collection.config().dimension;
    if vector.len() != dim {
        return Err(MindError::Dimension {
            context: "encoder output",
            expected: dim,
            got: vector.len(),
        });
    }
    let mut request = SearchRequest::new(vector, k);
    request.filter = filter;
    Ok(collection.search(&request)?)
}

#[cfg(test)]
mod tests;
