//! Simulation (`paradox_mind::simulation`) for Python: built-in dynamics, compiled
//! expressions and Python callables over NumPy blocks, stepped over a collection's
//! vectors and written back as new versions.
//!
//! Each step runs the native dynamics first (built-ins and expressions, in their given
//! order, in parallel over rows, without the GIL), then each Python callable in its given
//! order, on blocks of `block_rows` rows: `f(block, step, dt)` receives a float32 array
//! `(rows, dim)` it may change in place, or it returns the new block.

use crate::collection::{read_filter, PyCollection};
use crate::convert::{id_to_py, py_to_json};
use crate::errors::{invalid, mind_to_py};
use numpy::{PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use paradox_mind::simulation::{Dynamics, Expression, Simulation, VectorBuffer};
use pyo3::prelude::*;
use pyo3::types::PyList;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// A built-in dynamic or an expression, as a Python dict `{"kind": ..., ...}`.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Spec {
    GravityWell {
        center: Vec<f32>,
        strength: f32,
        #[serde(default = "default_softening")]
        softening: f32,
    },
    Attraction {
        centroids: Vec<Vec<f32>>,
        rate: f32,
    },
    Repulsion {
        sources: Vec<Vec<f32>>,
        strength: f32,
        radius: f32,
    },
    Decay {
        rate: f32,
    },
    Noise {
        sigma: f32,
        #[serde(default)]
        seed: u64,
    },
    Flocking {
        cohesion: f32,
        alignment: f32,
        separation: f32,
        separation_radius: f32,
    },
    Expression {
        source: String,
        #[serde(default)]
        scalars: BTreeMap<String, f32>,
        #[serde(default)]
        vectors: BTreeMap<String, Vec<f32>>,
    },
}

fn default_softening() -> f32 {
    0.1
}

const KINDS: &str = "gravity_well, attraction, repulsion, decay, noise, flocking, expression";

/// A parameter and its value.
type Named<'a> = (&'a str, f32);

/// Every number a dynamic takes must be finite (JSON has no NaN, but `1e39` overflows
/// `f32`), and lengths, rates and spreads must not be negative.
fn check_numbers(spec: &Spec) -> PyResult<()> {
    let (finite, non_negative): (Vec<Named<'_>>, Vec<Named<'_>>) = match spec {
        Spec::GravityWell {
            strength,
            softening,
            ..
        } => (
            vec![("strength", *strength)],
            vec![("softening", *softening)],
        ),
        Spec::Attraction { rate, .. } => (vec![], vec![("rate", *rate)]),
        Spec::Repulsion {
            strength, radius, ..
        } => (vec![("strength", *strength)], vec![("radius", *radius)]),
        Spec::Decay { rate } => (vec![("rate", *rate)], vec![]),
        Spec::Noise { sigma, .. } => (vec![], vec![("sigma", *sigma)]),
        Spec::Flocking {
            cohesion,
            alignment,
            separation,
            separation_radius,
        } => (
            vec![
                ("cohesion", *cohesion),
                ("alignment", *alignment),
                ("separation", *separation),
            ],
            vec![("separation_radius", *separation_radius)],
        ),
        Spec::Expression { scalars, .. } => (
            scalars.iter().map(|(k, v)| (k.as_str(), *v)).collect(),
            vec![],
        ),
    };
    for (name, v) in finite {
        if !v.is_finite() {
            return Err(invalid(
                "dynamics",
                format!("`{name}` must be finite, got {v}"),
            ));
        }
    }
    for (name, v) in non_negative {
        if !(v.is_finite() && v >= 0.0) {
            return Err(invalid(
                "dynamics",
                format!("`{name}` must be finite and >= 0, got {v}"),
            ));
        }
    }
    let vectors: Vec<&Vec<f32>> = match spec {
        Spec::GravityWell { center, .. } => vec![center],
        Spec::Attraction { centroids, .. } => centroids.iter().collect(),
        Spec::Repulsion { sources, .. } => sources.iter().collect(),
        Spec::Expression { vectors, .. } => vectors.values().collect(),
        _ => vec![],
    };
    if vectors.iter().any(|v| v.iter().any(|x| !x.is_finite())) {
        return Err(invalid("dynamics", "a vector of the dynamic is not finite"));
    }
    Ok(())
}

fn native(spec: Spec, dim: usize) -> PyResult<Dynamics> {
    check_numbers(&spec)?;
    Ok(match spec {
        Spec::GravityWell {
            center,
            strength,
            softening,
        } => Dynamics::GravityWell {
            center,
            strength,
            softening,
        },
        Spec::Attraction { centroids, rate } => Dynamics::Attraction { centroids, rate },
        Spec::Repulsion {
            sources,
            strength,
            radius,
        } => Dynamics::Repulsion {
            sources,
            strength,
            radius,
        },
        Spec::Decay { rate } => Dynamics::Decay { rate },
        Spec::Noise { sigma, seed } => Dynamics::Noise { sigma, seed },
        Spec::Flocking {
            cohesion,
            alignment,
            separation,
            separation_radius,
        } => Dynamics::Flocking {
            cohesion,
            alignment,
            separation,
            separation_radius,
        },
        Spec::Expression {
            source,
            scalars,
            vectors,
        } => {
            let scalars: Vec<(&str, f32)> = scalars.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            let vectors: Vec<(&str, Vec<f32>)> = vectors
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            Dynamics::Expression(
                Expression::compile(&source, dim, &scalars, &vectors).map_err(mind_to_py)?,
            )
        }
    })
}

/// Vectors of a collection (or a filtered subset) under dynamics, stepped in place.
#[pyclass(name = "Simulation", module = "paradox._native")]
pub struct PySimulation {
    sim: Simulation,
    callables: Vec<Py<PyAny>>,
    collection: Arc<paradox_engine::Collection>,
    // Keeps the engine (and its directory lock) alive while the simulation may write back.
    _engine: Arc<paradox_engine::Engine>,
    block_rows: usize,
}

impl std::fmt::Debug for PySimulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PySimulation")
            .field("callables", &self.callables.len())
            .field("block_rows", &self.block_rows)
            .finish_non_exhaustive()
    }
}

impl PySimulation {
    fn sim(&self) -> &Simulation {
        &self.sim
    }

    /// Runs the Python callables over every block of the buffer.
    fn run_callables(&mut self, py: Python<'_>, step: u64) -> PyResult<()> {
        let sim = &mut self.sim;
        let dim = sim.buffer.dimension();
        let rows = sim.buffer.rows();
        let dt = sim.dt;
        for callable in &self.callables {
            let mut first = 0;
            while first < rows {
                let last = (first + self.block_rows).min(rows);
                let data = &mut sim.buffer.data_mut()[first * dim..last * dim];
                let block = numpy::PyArray1::from_slice(py, data).reshape([last - first, dim])?;
                let out = callable.bind(py).call1((block.clone(), step, dt))?;
                let result = if out.is_none() { block.into_any() } else { out };
                let array = py
                    .import("numpy")?
                    .call_method1("ascontiguousarray", (result, "float32"))
                    .map_err(|e| {
                        invalid("dynamics", format!("a callable returned a non-array: {e}"))
                    })?;
                let array = array.downcast::<numpy::PyArrayDyn<f32>>()?.readonly();
                if array.shape() != [last - first, dim] {
                    return Err(invalid(
                        "dynamics",
                        format!(
                            "a callable returned shape {:?} for a block of shape ({}, {dim})",
                            array.shape(),
                            last - first
                        ),
                    ));
                }
                let values = array.as_slice().map_err(|e| invalid("dynamics", e))?;
                if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
                    return Err(invalid(
                        "dynamics",
                        format!(
                            "a callable produced a non-finite value at row {}",
                            first + bad / dim
                        ),
                    ));
                }
                data.copy_from_slice(values);
                first = last;
            }
        }
        Ok(())
    }
}

#[pymethods]
impl PySimulation {
    /// `dynamics`: a list of dicts (`{"kind": "decay", "rate": 0.1}`; kinds gravity_well,
    /// attraction, repulsion, decay, noise, flocking, expression), expression strings, and
    /// Python callables `f(block, step, dt)`. `filter` picks the points simulated.
    #[new]
    #[pyo3(signature = (collection, dynamics, *, dt=0.1, filter=None, block_rows=65536))]
    fn new(
        py: Python<'_>,
        collection: &PyCollection,
        dynamics: &Bound<'_, PyAny>,
        dt: f32,
        filter: Option<&Bound<'_, PyAny>>,
        block_rows: usize,
    ) -> PyResult<Self> {
        if block_rows == 0 {
            return Err(invalid("block_rows", "must be at least 1"));
        }
        let (engine, collection) = collection.parts();
        let (engine, collection) = (Arc::clone(engine), Arc::clone(collection));
        let dim = collection.config().dimension;
        let mut natives = Vec::new();
        let mut callables = Vec::new();
        for (i, item) in dynamics.try_iter()?.enumerate() {
            let item = item?;
            if let Ok(source) = item.extract::<String>() {
                let expr = Expression::compile(&source, dim, &[], &[]).map_err(mind_to_py)?;
                natives.push(Dynamics::Expression(expr));
            } else if item.is_callable() {
                callables.push(item.unbind());
            } else {
                let json = py_to_json(&item, "dynamics")?;
                let spec: Spec = serde_json::from_value(json)
                    .map_err(|e| invalid("dynamics", format!("item {i}: {e} (kinds: {KINDS})")))?;
                natives.push(native(spec, dim)?);
            }
        }
        let filter = filter.map(read_filter).transpose()?;
        let buffer = py
            .allow_threads(|| VectorBuffer::from_collection(&collection, filter))
            .map_err(mind_to_py)?;
        let sim = Simulation::new(buffer, natives, dt).map_err(mind_to_py)?;
        Ok(PySimulation {
            sim,
            callables,
            collection,
            _engine: engine,
            block_rows,
        })
    }

    /// Runs `steps` steps; `callback(step, total)` after each may return False to stop
    /// early (between steps). Returns the steps taken.
    #[pyo3(signature = (steps=1, callback=None))]
    fn run(&mut self, py: Python<'_>, steps: u64, callback: Option<Py<PyAny>>) -> PyResult<u64> {
        for done in 0..steps {
            let step = self.sim().steps_taken();
            let sim = &mut self.sim;
            py.allow_threads(|| sim.run(1, &AtomicBool::new(false), &mut |_| {}));
            self.run_callables(py, step)?;
            if let Some(callback) = &callback {
                let go_on = callback.bind(py).call1((done + 1, steps))?;
                if !go_on.is_none() && !go_on.is_truthy()? {
                    return Ok(done + 1);
                }
            }
            py.check_signals()?;
        }
        Ok(steps)
    }

    /// The simulated vectors, `(rows, dim)` float32 (a copy).
    #[getter]
    fn vectors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let buffer = &self.sim().buffer;
        numpy::PyArray1::from_slice(py, buffer.data()).reshape([buffer.rows(), buffer.dimension()])
    }

    /// Ids of the rows, in order.
    #[getter]
    fn ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let buffer = &self.sim().buffer;
        let ids = (0..buffer.rows())
            .filter_map(|i| buffer.id(i))
            .map(|id| id_to_py(py, id))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, ids)
    }

    /// Upserts every row back into the collection (same id and payload, the new vector;
    /// a collection with history keeps the old versions). Returns the points written.
    fn write_back(&self, py: Python<'_>) -> PyResult<usize> {
        let sim = self.sim();
        py.allow_threads(|| sim.buffer.write_back(&self.collection))
            .map_err(mind_to_py)
    }

    #[getter]
    fn steps_taken(&self) -> u64 {
        self.sim().steps_taken()
    }

    #[getter]
    fn dt(&self) -> f32 {
        self.sim().dt
    }

    fn __len__(&self) -> usize {
        self.sim().buffer.rows()
    }
}
