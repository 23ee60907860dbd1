//! Reasoning and trajectories as one request/response pair with a JSON form, so the
//! server (REST and gRPC) and the Python package expose the same operations with the
//! same names, defaults and errors.
//!
//! ```json
//! {"op": "arithmetic", "terms": [{"id": 1}, {"id": 2, "weight": -1}, {"vector": [..]}], "k": 5}
//! {"op": "analogy", "a": {"id": "man"}, "b": {"id": "king"}, "c": {"id": "woman"}, "method": "3cosmul"}
//! {"op": "blend", "concepts": [{"id": 1}, {"id": 2}], "mode": "slerp", "t": 0.3}
//! {"op": "attention", "vector": [..], "weights": [..], "k": 10}
//! {"op": "trajectory", "id": 7, "predict": {"at": 1763740800000, "method": "kalman"}}
//! ```
//!
//! Every answer carries the vector the operation produced (when it produces one) and the
//! `k` nearest stored points to it.

use crate::error::{MindError, Result};
use crate::reasoning::{self, Concept};
use crate::temporal::{Prediction, Trajectory};
use paradox_engine::{Collection, Filter, PointId, ScoredPoint, SearchRequest};
use serde::{Deserialize, Serialize};

/// Most hits one operation returns.
pub const MAX_K: usize = 10_000;

/// A concept in a request: a stored point or a raw vector, with an optional weight
/// (used by `arithmetic` and `blend`; default 1).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConceptSpec {
    /// A stored point's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<PointId>,
    /// A raw vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    /// Weight of the term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f32>,
}

impl ConceptSpec {
    fn concept(&self, field: &'static str) -> Result<Concept> {
        match (&self.id, &self.vector) {
            (Some(id), None) => Ok(Concept::Id(id.clone())),
            (None, Some(v)) => Ok(Concept::Vector(v.clone())),
            _ => Err(MindError::invalid(
                field,
                "each concept needs exactly one of `id` or `vector`",
            )),
        }
    }

    fn weight(&self, field: &'static str) -> Result<f32> {
        let w = self.weight.unwrap_or(1.0);
        if w.is_finite() {
            Ok(w)
        } else {
            Err(MindError::invalid(field, "weights must be finite"))
        }
    }
}

/// How `analogy` ranks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AnalogyMethod {
    /// Nearest to `b − a + c` (3CosAdd).
    #[default]
    Add,
    /// A pool nearest to `b − a + c` re-ranked by 3CosMul.
    #[serde(rename = "3cosmul")]
    CosMul,
}

/// How `blend` mixes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlendMode {
    /// `(1 − t)·a + t·b` (two concepts).
    #[default]
    Lerp,
    /// Along the great circle from `a` to `b` (two concepts).
    Slerp,
    /// `Σ wᵢ·vᵢ / Σ wᵢ` over any number of weighted concepts.
    Centroid,
}

/// A prediction request inside `trajectory`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PredictSpec {
    /// Time to predict for (ms since the Unix epoch); default: one mean sampling
    /// interval after the last sample.
    #[serde(default)]
    pub at: Option<i64>,
    /// `linear` (default), `average`, `kalman` or `autoregressive`.
    #[serde(default = "default_method")]
    pub method: String,
    /// `average`: segments averaged (default all).
    #[serde(default)]
    pub window: Option<usize>,
    /// `autoregressive`: order (default 2).
    #[serde(default)]
    pub order: Option<usize>,
    /// `kalman`: process noise spectral density (default 1e-3).
    #[serde(default)]
    pub process_noise: Option<f64>,
    /// `kalman`: measurement noise variance (default 1e-2).
    #[serde(default)]
    pub measurement_noise: Option<f64>,
}

fn default_method() -> String {
    "linear".into()
}

fn default_k() -> usize {
    10
}

fn default_t() -> f32 {
    0.5
}

impl PredictSpec {
    fn prediction(&self) -> Result<Prediction> {
        Ok(match self.method.as_str() {
            "linear" => Prediction::Linear,
            "average" => Prediction::Average {
                window: self.window,
            },
            "kalman" => Prediction::Kalman {
                process_noise: self.process_noise.unwrap_or(1e-3),
                measurement_noise: self.measurement_noise.unwrap_or(1e-2),
            },
            "autoregressive" => Prediction::Autoregressive {
                order: self.order.unwrap_or(2),
            },
            other => {
                return Err(MindError::invalid(
                    "method",
                    format!(
                        "unknown prediction method `{other}` (linear, average, kalman, \
                         autoregressive)"
                    ),
                ))
            }
        })
    }
}

/// One reasoning operation on a collection.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReasonRequest {
    /// `Σ wᵢ·conceptᵢ`, normalised, and its nearest points.
    Arithmetic {
        /// The weighted terms.
        terms: Vec<ConceptSpec>,
        /// Nearest points returned (default 10; 0 for the vector only).
        #[serde(default = "default_k")]
        k: usize,
        /// Only points whose payload matches.
        #[serde(default)]
        filter: Option<Filter>,
    },
    /// "`a` is to `b` as `c` is to ?" (the points nearest to `b − a + c`, excluding the
    /// stored `a`, `b`, `c`).
    Analogy {
        /// First term.
        a: ConceptSpec,
        /// Second term.
        b: ConceptSpec,
        /// Third term.
        c: ConceptSpec,
        /// Answers returned (default 10).
        #[serde(default = "default_k")]
        k: usize,
        /// `add` (default) or `3cosmul`.
        #[serde(default)]
        method: AnalogyMethod,
        /// `3cosmul`: candidates re-ranked (default max(10·k, 100)).
        #[serde(default)]
        pool: Option<usize>,
    },
    /// A blend of concepts and its nearest points.
    Blend {
        /// Two concepts for `lerp` / `slerp`; any number for `centroid`.
        concepts: Vec<ConceptSpec>,
        /// `lerp` (default), `slerp` or `centroid`.
        #[serde(default)]
        mode: BlendMode,
        /// Position between the two concepts for `lerp` / `slerp` (default 0.5).
        #[serde(default = "default_t")]
        t: f32,
        /// Nearest points returned (default 10; 0 for the vector only).
        #[serde(default = "default_k")]
        k: usize,
    },
    /// Search with per-dimension weights.
    Attention {
        /// The query.
        vector: Vec<f32>,
        /// One non-negative weight per dimension.
        weights: Vec<f32>,
        /// Hits returned (default 10).
        #[serde(default = "default_k")]
        k: usize,
        /// `l2`: candidates re-ranked by the weighted distance (default max(10·k, 100)).
        #[serde(default)]
        pool: Option<usize>,
        /// Only points whose payload matches.
        #[serde(default)]
        filter: Option<Filter>,
    },
    /// A point's trajectory from its kept versions (collections keeping history):
    /// samples, speeds, curvature, and optionally a prediction.
    Trajectory {
        /// The point.
        id: PointId,
        /// Predict where it goes.
        #[serde(default)]
        predict: Option<PredictSpec>,
    },
}

/// A point's trajectory in a [`ReasonResponse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryReport {
    /// Sample times (ms since the Unix epoch), oldest first.
    pub times: Vec<i64>,
    /// The vector at each time.
    pub vectors: Vec<Vec<f32>>,
    /// Speed over each segment (units per second).
    pub speeds: Vec<f32>,
    /// Turning angle per unit length at each inner sample.
    pub curvature: Vec<f32>,
    /// When a prediction was asked: its time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_at: Option<i64>,
}

/// The answer to a [`ReasonRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasonResponse {
    /// The vector the operation produced (arithmetic, analogy query, blend, prediction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    /// Nearest stored points, best first.
    pub hits: Vec<ScoredPoint>,
    /// For `trajectory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trajectory: Option<TrajectoryReport>,
}

fn check_k(k: usize, allow_zero: bool) -> Result<()> {
    if (k == 0 && !allow_zero) || k > MAX_K {
        let low = if allow_zero { 0 } else { 1 };
        return Err(MindError::invalid(
            "k",
            format!("must be between {low} and {MAX_K}, got {k}"),
        ));
    }
    Ok(())
}

fn nearest(collection: &Collection, vector: &[f32], k: usize) -> Result<Vec<ScoredPoint>> {
    nearest_filtered(collection, vector, k, None)
}

fn nearest_filtered(
    collection: &Collection,
    vector: &[f32],
    k: usize,
    filter: Option<Filter>,
) -> Result<Vec<ScoredPoint>> {
    if k == 0 {
        return Ok(Vec::new());
    }
    let mut request = SearchRequest::new(vector.to_vec(), k);
    request.with_payload = true;
    request.filter = filter;
    Ok(collection.search(&request)?)
}

/// Runs one reasoning operation.
pub fn reason(collection: &Collection, request: &ReasonRequest) -> Result<ReasonResponse> {
    let plain = |vector: Vec<f32>, hits| ReasonResponse {
        vector: Some(vector),
        hits,
        trajectory: None,
    };
    match request {
        ReasonRequest::Arithmetic { terms, k, filter } => {
            check_k(*k, true)?;
            if terms.is_empty() {
                return Err(MindError::invalid("terms", "need at least one term"));
            }
            let terms = terms
                .iter()
                .map(|t| Ok((t.weight("terms")?, t.concept("terms")?)))
                .collect::<Result<Vec<_>>>()?;
            let vector = reasoning::arithmetic(collection, &terms)?;
            let hits = nearest_filtered(collection, &vector, *k, filter.clone())?;
            Ok(plain(vector, hits))
        }
        ReasonRequest::Analogy {
            a,
            b,
            c,
            k,
            method,
            pool,
        } => {
            check_k(*k, false)?;
            let (a, b, c) = (a.concept("a")?, b.concept("b")?, c.concept("c")?);
            let vector = reasoning::arithmetic(
                collection,
                &[(-1.0, a.clone()), (1.0, b.clone()), (1.0, c.clone())],
            )?;
            let mut hits = match method {
                AnalogyMethod::Add => reasoning::analogy(collection, &a, &b, &c, *k)?,
                AnalogyMethod::CosMul => {
                    let pool = pool.unwrap_or((10 * k).max(100)).min(MAX_K);
                    reasoning::analogy_3cosmul(collection, &a, &b, &c, *k, pool)?
                }
            };
            for hit in &mut hits {
                hit.vector = None;
            }
            Ok(plain(vector, hits))
        }
        ReasonRequest::Blend {
            concepts,
            mode,
            t,
            k,
        } => {
            check_k(*k, true)?;
            if !t.is_finite() {
                return Err(MindError::invalid("t", "must be finite"));
            }
            let specs = concepts
                .iter()
                .map(|c| c.concept("concepts"))
                .collect::<Result<Vec<_>>>()?;
            let vectors = reasoning::resolve(collection, &specs)?;
            let vector = match mode {
                BlendMode::Lerp | BlendMode::Slerp => {
                    let [a, b] = vectors.as_slice() else {
                        return Err(MindError::invalid(
                            "concepts",
                            format!(
                                "lerp and slerp blend exactly two concepts, got {}",
                                vectors.len()
                            ),
                        ));
                    };
                    if *mode == BlendMode::Lerp {
                        reasoning::lerp(a, b, *t)
                    } else {
                        reasoning::slerp(a, b, *t)
                    }
                }
                BlendMode::Centroid => {
                    let weights = concepts
                        .iter()
                        .map(|c| c.weight("concepts"))
                        .collect::<Result<Vec<_>>>()?;
                    let items: Vec<(&[f32], f32)> =
                        vectors.iter().map(Vec::as_slice).zip(weights).collect();
                    reasoning::weighted_centroid(&items)?
                }
            };
            let hits = nearest(collection, &vector, *k)?;
            Ok(plain(vector, hits))
        }
        ReasonRequest::Attention {
            vector,
            weights,
            k,
            pool,
            filter,
        } => {
            check_k(*k, false)?;
            let pool = pool.unwrap_or((10 * k).max(100)).min(MAX_K);
            let hits =
                reasoning::attention_search(collection, vector, weights, *k, pool, filter.clone())?;
            Ok(ReasonResponse {
                vector: None,
                hits: hits
                    .into_iter()
                    .map(|h| ScoredPoint { vector: None, ..h })
                    .collect(),
                trajectory: None,
            })
        }
        ReasonRequest::Trajectory { id, predict } => {
            let trajectory = Trajectory::of(collection, id)?;
            let mut report = TrajectoryReport {
                times: trajectory.times().to_vec(),
                vectors: trajectory.vectors().to_vec(),
                speeds: trajectory.speeds(),
                curvature: trajectory.curvature(),
                predicted_at: None,
            };
            let mut vector = None;
            if let Some(spec) = predict {
                let times = trajectory.times();
                let last = *times.last().expect("a trajectory has samples");
                let at = match spec.at {
                    Some(at) => at,
                    None if times.len() >= 2 => {
                        last + (last - times[0]) / (times.len() as i64 - 1).max(1)
                    }
                    None => last,
                };
                vector = Some(trajectory.predict(at, &spec.prediction()?)?);
                report.predicted_at = Some(at);
            }
            Ok(ReasonResponse {
                vector,
                hits: Vec::new(),
                trajectory: Some(report),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paradox_engine::{CollectionConfig, Engine, Metric, NewPoint};
    use serde_json::json;

    fn parse(value: serde_json::Value) -> ReasonRequest {
        serde_json::from_value(value).unwrap()
    }

    fn ids(response: &ReasonResponse) -> Vec<PointId> {
        response.hits.iter().map(|h| h.id.clone()).collect()
    }

    #[test]
    fn every_operation_runs_from_its_json_form() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let col = engine
            .create_collection(CollectionConfig {
                history: true,
                ..CollectionConfig::new("c", 3, Metric::Cosine)
            })
            .unwrap();
        // man, king, woman, queen along axes: king − man + woman = queen.
        let points = [
            ("man", [1.0, 0.0, 0.0]),
            ("king", [1.0, 1.0, 0.0]),
            ("woman", [0.0, 0.0, 1.0]),
            ("queen", [0.0, 1.0, 1.0]),
            ("other", [1.0, -1.0, -1.0]),
        ];
        col.upsert(
            points
                .iter()
                .map(|(id, v)| NewPoint::new(*id, v.to_vec()))
                .collect(),
        )
        .unwrap();
        let queen = PointId::Str("queen".into());

        let add = reason(
            &col,
            &parse(
                json!({"op": "analogy", "a": {"id": "man"}, "b": {"id": "king"},
                          "c": {"id": "woman"}, "k": 1}),
            ),
        )
        .unwrap();
        assert_eq!(ids(&add), vec![queen.clone()]);
        let mul = reason(
            &col,
            &parse(
                json!({"op": "analogy", "a": {"id": "man"}, "b": {"id": "king"},
                          "c": {"id": "woman"}, "k": 1, "method": "3cosmul"}),
            ),
        )
        .unwrap();
        assert_eq!(ids(&mul), vec![queen.clone()]);

        let sum = reason(
            &col,
            &parse(json!({"op": "arithmetic", "k": 1, "terms": [
                {"id": "king"}, {"id": "man", "weight": -1}, {"vector": [0.0, 0.0, 1.0]}]})),
        )
        .unwrap();
        assert_eq!(ids(&sum), vec![queen.clone()]);
        let v = sum.vector.unwrap();
        assert!((v.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);

        let blend = reason(
            &col,
            &parse(json!({"op": "blend", "mode": "slerp", "t": 0.9, "k": 1,
                          "concepts": [{"id": "man"}, {"id": "queen"}]})),
        )
        .unwrap();
        assert_eq!(ids(&blend), vec![queen.clone()]);

        let attention = reason(
            &col,
            &parse(json!({"op": "attention", "vector": [1.0, 1.0, 1.0],
                          "weights": [0.0, 0.0, 1.0], "k": 2})),
        )
        .unwrap();
        let top: Vec<PointId> = ids(&attention);
        assert!(top.contains(&queen) && top.contains(&PointId::Str("woman".into())));

        col.upsert(vec![NewPoint::new("queen", vec![0.0, 1.0, 2.0])])
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(3));
        col.upsert(vec![NewPoint::new("queen", vec![0.0, 1.0, 3.0])])
            .unwrap();
        let traj = reason(
            &col,
            &parse(json!({"op": "trajectory", "id": "queen", "predict": {"method": "linear"}})),
        )
        .unwrap();
        let report = traj.trajectory.unwrap();
        assert_eq!(report.times.len(), report.vectors.len());
        assert!(report.times.len() >= 2);
        assert!(traj.vector.is_some() && report.predicted_at.is_some());
    }

    #[test]
    fn bad_requests_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let col = engine
            .create_collection(CollectionConfig::new("c", 2, Metric::L2))
            .unwrap();
        col.upsert(vec![NewPoint::new(1u64, vec![1.0, 0.0])])
            .unwrap();
        let cases = [
            (json!({"op": "arithmetic", "terms": []}), "terms"),
            (
                json!({"op": "arithmetic", "terms": [{"id": 1, "vector": [1.0, 0.0]}]}),
                "exactly one",
            ),
            (
                json!({"op": "arithmetic", "terms": [{"id": 9}]}),
                "not found",
            ),
            (
                json!({"op": "arithmetic", "terms": [{"vector": [1.0]}]}),
                "dimension",
            ),
            (
                json!({"op": "blend", "concepts": [{"id": 1}]}),
                "exactly two",
            ),
            (
                json!({"op": "attention", "vector": [1.0, 0.0], "weights": [1.0, -1.0]}),
                "weights",
            ),
            (
                json!({"op": "analogy", "a": {"id": 1}, "b": {"id": 1}, "c": {"id": 1}, "k": 0}),
                "k",
            ),
            (json!({"op": "trajectory", "id": 1}), "history"),
        ];
        for (body, needle) in cases {
            let request: ReasonRequest = serde_json::from_value(body.clone()).unwrap();
            let error = reason(&col, &request).unwrap_err().to_string();
            assert!(error.contains(needle), "{body}: {error}");
        }
        let unknown = serde_json::from_value::<ReasonRequest>(json!({"op": "dream"}));
        assert!(unknown.unwrap_err().to_string().contains("dream"));
    }
}
