//! Search in a named space, through an adapter while the space is still being filled,
//! with an optional context overlay.

use super::state::{LivingState, OverlayState, SpaceState};
use super::{check_len, invalid, LivingCollection};
use crate::error::Result;
use crate::VectorMap;
use paradox_engine::{Filter, Metric, Payload, PointId, SearchParams, SearchRequest, MAX_K};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One search of a living collection.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LivingSearch {
    /// The space to search (default: the collection's default space).
    #[serde(default)]
    pub space: Option<String>,
    /// The query vector, in the space's coordinates (or give `text`).
    #[serde(default)]
    pub vector: Option<Vec<f32>>,
    /// Raw text, encoded by the space's encoder.
    #[serde(default)]
    pub text: Option<String>,
    /// How many hits.
    pub k: usize,
    /// Only points whose payload matches.
    #[serde(default)]
    pub filter: Option<Filter>,
    /// Return payloads.
    #[serde(default)]
    pub with_payload: bool,
    /// Per-request index knobs.
    #[serde(default)]
    pub params: SearchParams,
    /// A named context overlay to apply.
    #[serde(default)]
    pub context: Option<String>,
    /// Candidates fetched per hit wanted when results are merged or re-scored
    /// (default 4).
    #[serde(default)]
    pub oversample: Option<usize>,
}

/// Where a hit's score comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HitSource {
    /// The searched space's own index.
    Native,
    /// Found through the adapter in an older space, scored with its vector in the
    /// searched space.
    Rescored,
    /// Found and scored through the adapter only (the point has no vector in the
    /// searched space yet).
    Adapter,
}

/// One hit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LivingHit {
    /// The point.
    pub id: PointId,
    /// Score as the space's metric reports it (similarity for cosine/dot, squared
    /// distance for l2), overlay included.
    pub score: f32,
    /// The payload, when requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    /// Where the score comes from.
    pub source: HitSource,
}

struct Candidate {
    score: f32,
    payload: Option<Payload>,
    vector: Option<Vec<f32>>,
    source: HitSource,
}

impl LivingCollection {
    /// Searches one space. While the space holds fewer points than the first space and
    /// an adapter from it into an older space exists, the query is also mapped through
    /// that adapter and searched there; candidates the space already holds are
    /// re-scored with their own vectors, the rest keep the adapter's score.
    pub fn search(&self, request: &LivingSearch) -> Result<Vec<LivingHit>> {
        let state = self.state.read().clone();
        let space_name = request
            .space
            .clone()
            .unwrap_or_else(|| state.default_space.clone());
        let space = state.space(&space_name)?.clone();
        if request.k == 0 || request.k > MAX_K {
            return Err(invalid(format!(
                "k must be 1 to {MAX_K}, got {}",
                request.k
            )));
        }
        let oversample = request.oversample.unwrap_or(4);
        if oversample == 0 || oversample > 64 {
            return Err(invalid(format!(
                "oversample must be 1 to 64, got {oversample}"
            )));
        }
        let mut query = self.query_vector(&space, request)?;
        self.recent.record(&space.name, &query, space.dim);
        let overlay = match &request.context {
            Some(name) => Some(overlay_for(&state, name, &space)?),
            None => None,
        };
        if let Some(global) = overlay.as_ref().and_then(|o| o.global.as_ref()) {
            let weight = overlay.as_ref().map_or(1.0, |o| o.weight);
            for (q, d) in query.iter_mut().zip(global) {
                *q += weight * d;
            }
        }
        if space.metric.normalizes() && paradox_kernels::normalize(&mut query) == 0.0 {
            return Err(invalid("the query (with its overlay) is the zero vector"));
        }
        let per_point = overlay
            .as_ref()
            .is_some_and(|o| !o.points.is_empty() || !o.clusters.is_empty());
        let fallback = self.fallback_space(&state, &space)?;
        let pool = if fallback.is_some() || per_point {
            (request.k * oversample).min(MAX_K)
        } else {
            request.k
        };
        let collection = self.space_collection(&space.name)?;
        let with_payload = request.with_payload || overlay.is_some();
        let native = collection.search(&SearchRequest {
            vector: query.clone(),
            k: pool,
            filter: request.filter.clone(),
            with_payload,
            with_vector: per_point,
            params: request.params,
            as_of: None,
        })?;
        let mut candidates: HashMap<PointId, Candidate> = native
            .into_iter()
            .map(|hit| {
                let c = Candidate {
                    score: hit.score,
                    payload: hit.payload,
                    vector: hit.vector,
                    source: HitSource::Native,
                };
                (hit.id, c)
            })
            .collect();
        if let Some((old, adapter)) = fallback {
            let mapped = adapter.map(&query);
            let old_hits = self.space_collection(&old.name)?.search(&SearchRequest {
                vector: mapped,
                k: pool,
                filter: request.filter.clone(),
                with_payload,
                with_vector: false,
                params: request.params,
                as_of: None,
            })?;
            // Points found through the adapter that the space already holds give pairs
            // (adapter score, true score): they calibrate the scores of the others, so
            // the two kinds of hit merge on one scale.
            let mut calibration: Vec<(f32, f32)> = Vec::new();
            let mut missing = Vec::new();
            for hit in old_hits {
                match candidates.get(&hit.id) {
                    Some(native) => calibration.push((hit.score, native.score)),
                    None => missing.push(hit),
                }
            }
            let ids: Vec<PointId> = missing.iter().map(|h| h.id.clone()).collect();
            let own = collection.get(&ids)?;
            let mut adapter_only = Vec::new();
            for (hit, own) in missing.into_iter().zip(own) {
                match own {
                    Some(point) => {
                        let true_score = score(space.metric, &query, &point.vector);
                        calibration.push((hit.score, true_score));
                        let candidate = Candidate {
                            score: true_score,
                            payload: with_payload.then_some(point.payload),
                            vector: Some(point.vector),
                            source: HitSource::Rescored,
                        };
                        candidates.insert(hit.id, candidate);
                    }
                    None => adapter_only.push(hit),
                }
            }
            let calibrate = Calibration::fit(&calibration);
            for hit in adapter_only {
                let candidate = Candidate {
                    score: calibrate.apply(hit.score),
                    payload: hit.payload,
                    vector: None,
                    source: HitSource::Adapter,
                };
                candidates.insert(hit.id, candidate);
            }
        }
        if let Some(overlay) = overlay.as_ref().filter(|_| per_point) {
            for (id, c) in candidates.iter_mut() {
                let Some(v) = &c.vector else { continue };
                let bonus = overlay_bonus(overlay, id, c.payload.as_ref(), v);
                // A bonus brings a point closer: up for similarities, down for distances.
                c.score += match space.metric {
                    Metric::L2 => -bonus,
                    Metric::Dot | Metric::Cosine => bonus,
                };
            }
        }
        let mut hits: Vec<LivingHit> = candidates
            .into_iter()
            .map(|(id, c)| LivingHit {
                id,
                score: c.score,
                payload: if request.with_payload {
                    c.payload
                } else {
                    None
                },
                source: c.source,
            })
            .collect();
        let higher_is_better = !matches!(space.metric, Metric::L2);
        hits.sort_by(|a, b| {
            let order = a.score.total_cmp(&b.score);
            let order = if higher_is_better {
                order.reverse()
            } else {
                order
            };
            order.then_with(|| a.id.cmp(&b.id))
        });
        hits.truncate(request.k);
        self.record_access(hits.iter().map(|h| h.id.clone()));
        Ok(hits)
    }

    /// The query in the space's coordinates, normaliser applied.
    fn query_vector(&self, space: &SpaceState, request: &LivingSearch) -> Result<Vec<f32>> {
        match (&request.vector, &request.text) {
            (Some(_), Some(_)) => Err(invalid("give a query vector or text, not both")),
            (None, None) => Err(invalid("a search needs a query vector or text")),
            (None, Some(text)) => self.encode_into(space, &[text.as_str()]),
            (Some(vector), None) => {
                check_len(vector, space.dim, &space.name)?;
                if vector.iter().any(|x| !x.is_finite()) {
                    return Err(invalid("the query vector holds NaN or infinity"));
                }
                Ok(match self.normalizer(space)? {
                    Some(n) => n.map(vector),
                    None => vector.clone(),
                })
            }
        }
    }

    /// The older space and adapter a search of `space` should also use: only while
    /// `space` holds fewer points than the first space.
    fn fallback_space(
        &self,
        state: &LivingState,
        space: &SpaceState,
    ) -> Result<Option<(SpaceState, std::sync::Arc<crate::adapter::Adapter>)>> {
        let first = &state.spaces[0];
        if first.name == space.name {
            return Ok(None);
        }
        let have = self.engine.collection(&space.collection)?.count(None)?;
        let base = self.engine.collection(&first.collection)?.count(None)?;
        if have >= base {
            return Ok(None);
        }
        // Prefer the first space (it holds every point), else any space with more points.
        let mut olds: Vec<&SpaceState> = state
            .spaces
            .iter()
            .filter(|s| s.name != space.name)
            .collect();
        olds.sort_by_key(|s| s.name != first.name);
        for old in olds {
            if let Some(adapter) = self.query_adapter(&space.name, &old.name)? {
                return Ok(Some((old.clone(), adapter)));
            }
        }
        Ok(None)
    }
}

/// A linear map from adapter scores to the searched space's scores, fitted per query on
/// the candidates that have both (least squares with at least 3 pairs and some spread; a
/// shift with fewer; the identity with none).
#[derive(Debug, Clone, Copy)]
struct Calibration {
    slope: f32,
    offset: f32,
}

impl Calibration {
    fn fit(pairs: &[(f32, f32)]) -> Calibration {
        let n = pairs.len() as f64;
        if pairs.is_empty() {
            return Calibration {
                slope: 1.0,
                offset: 0.0,
            };
        }
        let mx = pairs.iter().map(|p| f64::from(p.0)).sum::<f64>() / n;
        let my = pairs.iter().map(|p| f64::from(p.1)).sum::<f64>() / n;
        let sxx: f64 = pairs.iter().map(|p| (f64::from(p.0) - mx).powi(2)).sum();
        let sxy: f64 = pairs
            .iter()
            .map(|p| (f64::from(p.0) - mx) * (f64::from(p.1) - my))
            .sum();
        let slope = if pairs.len() >= 3 && sxx > 1e-12 {
            sxy / sxx
        } else {
            1.0
        };
        // A fit that reverses the order of adapter scores is noise: keep the shift only.
        let slope = if slope > 0.0 { slope } else { 1.0 };
        Calibration {
            slope: slope as f32,
            offset: (my - slope * mx) as f32,
        }
    }

    fn apply(self, score: f32) -> f32 {
        self.slope * score + self.offset
    }
}

fn overlay_for(state: &LivingState, name: &str, space: &SpaceState) -> Result<OverlayState> {
    let overlay = state.overlays.get(name).ok_or_else(|| {
        invalid(format!(
            "unknown context `{name}` in collection `{}`",
            state.collection
        ))
    })?;
    if overlay.space != space.name {
        return Err(invalid(format!(
            "context `{name}` belongs to space `{}`, the search is in `{}`",
            overlay.space, space.name
        )));
    }
    Ok(overlay.clone())
}

/// The dot product of `vector` with the point's own and its cluster's deltas, scaled.
fn overlay_bonus(
    overlay: &OverlayState,
    id: &PointId,
    payload: Option<&Payload>,
    vector: &[f32],
) -> f32 {
    let mut bonus = 0.0;
    if let Some(delta) = overlay.points.get(&id_key(id)) {
        bonus += paradox_kernels::dot(delta, vector);
    }
    let cluster = overlay
        .cluster_field
        .as_ref()
        .and_then(|field| payload?.get(field))
        .map(|value| match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    if let Some(delta) = cluster.and_then(|c| overlay.clusters.get(&c)) {
        bonus += paradox_kernels::dot(delta, vector);
    }
    overlay.weight * bonus
}

/// An id as overlay maps key it: the number's digits or the string itself.
pub(crate) fn id_key(id: &PointId) -> String {
    match id {
        PointId::Num(n) => n.to_string(),
        PointId::Str(s) => s.clone(),
    }
}

/// The metric's score of a stored vector (already prepared) against a prepared query.
fn score(metric: Metric, query: &[f32], vector: &[f32]) -> f32 {
    metric.score_from_distance(metric.distance(query, vector))
}

#[cfg(test)]
mod tests {
    use super::Calibration;

    #[test]
    fn calibration_recovers_a_linear_relation_and_degrades_gracefully() {
        let pairs: Vec<(f32, f32)> = (0..10)
            .map(|i| (i as f32 * 0.1, 0.5 * i as f32 * 0.1 + 0.2))
            .collect();
        let c = Calibration::fit(&pairs);
        assert!((c.apply(1.0) - 0.7).abs() < 1e-5, "{c:?}");
        let shift = Calibration::fit(&[(0.3, 0.5)]);
        assert!((shift.apply(0.1) - 0.3).abs() < 1e-6);
        let none = Calibration::fit(&[]);
        assert_eq!(none.apply(0.42), 0.42);
        // Reversed order is not trusted as a slope.
        let reversed = Calibration::fit(&[(0.1, 0.9), (0.2, 0.8), (0.3, 0.7)]);
        assert!(reversed.slope > 0.0);
    }
}
