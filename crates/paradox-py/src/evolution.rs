//! Guided evolution (`paradox_mind::evolution`) for Python: ask/tell optimisers over
//! NumPy arrays, the safety guard, MAP-Elites, the novelty archive and `minimize`.
//!
//! Every optimiser minimises. Candidates go out as float64 arrays of shape
//! `(count, dimension)`; fitness comes back as any sequence of numbers (NaN counts as
//! worst). Shapes and values are checked here, so a mistake is a `ValueError` naming the
//! argument, never a panic in the core.

use crate::errors::invalid;
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use paradox_mind::evolution::{
    AskTell, Cmaes, CmaesConfig, Crossover, ForbiddenBall, Ga, GaConfig, KnnSurrogate, MapElites,
    Mutation, NoveltyArchive, QuadraticSurrogate, RestartStrategy, Restarts, SafetyGuard,
    Surrogate, SurrogateAssisted, SurrogateConfig,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// A population and its fitness, as NumPy arrays.
type Generation<'py> = (Bound<'py, PyArray2<f64>>, Bound<'py, PyArray1<f64>>);

/// Most cells a MAP-Elites archive may have.
const MAX_CELLS: usize = 10_000_000;
/// Largest population (CMA-ES, GA) and most candidates per `MapElites.ask`.
const MAX_POPULATION: usize = 1_000_000;
/// Longest vector full CMA-ES takes (its covariance has n² entries); the separable
/// variant has no such limit.
const MAX_FULL_CMAES_DIM: usize = 4_096;
/// Most large-population restarts `minimize` runs.
const MAX_RESTARTS: usize = 30;

/// A 1-D float64 vector from any array-like, finite, of length `dim` when given.
fn vector(obj: &Bound<'_, PyAny>, what: &str, dim: Option<usize>) -> PyResult<Vec<f64>> {
    let rows = matrix(obj, what, dim, true)?;
    Ok(rows.into_iter().next().unwrap_or_default())
}

/// Rows of a 2-D float64 array (a 1-D one is one row when `single`), all finite.
fn matrix(
    obj: &Bound<'_, PyAny>,
    what: &str,
    dim: Option<usize>,
    single: bool,
) -> PyResult<Vec<Vec<f64>>> {
    let numpy = obj.py().import("numpy")?;
    let array = numpy
        .call_method1("asarray", (obj, "float64"))
        .map_err(|e| invalid(what, format!("expected an array of real numbers: {e}")))?;
    let array = array.downcast::<numpy::PyArrayDyn<f64>>()?.readonly();
    let shape = array.shape().to_vec();
    let (rows, cols) = match (shape.as_slice(), single) {
        ([n], true) => (1, *n),
        ([r, c], false) => (*r, *c),
        _ => {
            let want = if single {
                "a 1-D vector"
            } else {
                "a 2-D array"
            };
            return Err(invalid(
                what,
                format!("expected {want}, got shape {shape:?}"),
            ));
        }
    };
    if cols == 0 {
        return Err(invalid(what, "vectors must have at least one coordinate"));
    }
    if let Some(dim) = dim {
        if cols != dim {
            return Err(invalid(
                what,
                format!("dimension mismatch: expected length {dim}, got {cols}"),
            ));
        }
    }
    let data = array.as_array();
    let flat: Vec<f64> = data.iter().copied().collect();
    if let Some(bad) = flat.iter().position(|v| !v.is_finite()) {
        return Err(invalid(
            what,
            format!("value {} at flat index {bad} is not finite", flat[bad]),
        ));
    }
    Ok((0..rows)
        .map(|r| flat[r * cols..(r + 1) * cols].to_vec())
        .collect())
}

/// Fitness values, one per candidate; NaN allowed (worst), infinities too.
fn fitness(obj: &Bound<'_, PyAny>, count: usize) -> PyResult<Vec<f64>> {
    let numpy = obj.py().import("numpy")?;
    let array = numpy
        .call_method1("asarray", (obj, "float64"))
        .map_err(|e| invalid("fitness", format!("expected numbers: {e}")))?;
    let array = array.call_method1("reshape", (-1,))?;
    let values: Vec<f64> = array.extract()?;
    if values.len() != count {
        return Err(invalid(
            "fitness",
            format!(
                "expected one value per candidate ({count}), got {}",
                values.len()
            ),
        ));
    }
    Ok(values)
}

fn rows_to_py<'py>(py: Python<'py>, rows: &[Vec<f64>]) -> PyResult<Bound<'py, PyArray2<f64>>> {
    if rows.is_empty() {
        return Ok(PyArray2::zeros(py, [0, 0], false));
    }
    PyArray2::from_vec2(py, rows).map_err(|e| PyValueError::new_err(e.to_string()))
}

fn positive(what: &str, value: f64) -> PyResult<f64> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(invalid(
            what,
            format!("must be a positive number, got {value}"),
        ))
    }
}

/// Checks that `candidates` are those of the last `ask`: same count, same dimension.
fn told(
    obj: &Bound<'_, PyAny>,
    fit: &Bound<'_, PyAny>,
    dim: usize,
    expected: Option<usize>,
) -> PyResult<(Vec<Vec<f64>>, Vec<f64>)> {
    let xs = matrix(obj, "candidates", Some(dim), false)?;
    if let Some(n) = expected {
        if xs.len() != n {
            return Err(invalid(
                "candidates",
                format!(
                    "tell takes the {n} candidates of the last ask, got {}",
                    xs.len()
                ),
            ));
        }
    }
    let fs = fitness(fit, xs.len())?;
    Ok((xs, fs))
}

/// Constraints on candidates: norm bounds, a box, forbidden balls.
#[pyclass(name = "SafetyGuard", module = "paradox._native")]
#[derive(Debug, Clone)]
pub struct PySafetyGuard {
    pub(crate) guard: SafetyGuard,
}

#[pymethods]
impl PySafetyGuard {
    #[new]
    #[pyo3(signature = (*, min_norm=None, max_norm=None, lower=None, upper=None, forbidden=None))]
    fn new(
        min_norm: Option<f64>,
        max_norm: Option<f64>,
        lower: Option<&Bound<'_, PyAny>>,
        upper: Option<&Bound<'_, PyAny>>,
        forbidden: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        for (what, v) in [("min_norm", min_norm), ("max_norm", max_norm)] {
            if let Some(v) = v {
                if !v.is_finite() || v < 0.0 {
                    return Err(invalid(what, format!("must be finite and >= 0, got {v}")));
                }
            }
        }
        if let (Some(lo), Some(hi)) = (min_norm, max_norm) {
            if lo > hi {
                return Err(invalid("min_norm", format!("{lo} exceeds max_norm {hi}")));
            }
        }
        let bounds = match (lower, upper) {
            (None, None) => None,
            (Some(l), Some(u)) => {
                let l = vector(l, "lower", None)?;
                let u = vector(u, "upper", Some(l.len()))?;
                if let Some(i) = (0..l.len()).find(|&i| l[i] > u[i]) {
                    return Err(invalid(
                        "lower",
                        format!("lower[{i}] = {} exceeds upper[{i}] = {}", l[i], u[i]),
                    ));
                }
                Some((l, u))
            }
            _ => {
                return Err(invalid(
                    "lower",
                    "give both `lower` and `upper`, or neither",
                ))
            }
        };
        let mut balls = Vec::new();
        if let Some(list) = forbidden {
            for (i, item) in list.try_iter()?.enumerate() {
                let item = item?;
                let (center, radius): (Bound<'_, PyAny>, f64) = item.extract().map_err(|_| {
                    invalid(
                        "forbidden",
                        format!("item {i} must be a (center, radius) pair"),
                    )
                })?;
                let dim = bounds
                    .as_ref()
                    .map(|(l, _)| l.len())
                    .or(balls.first().map(|b: &ForbiddenBall| b.center.len()));
                let center = vector(&center, "forbidden", dim)?;
                if !radius.is_finite() || radius < 0.0 {
                    return Err(invalid(
                        "forbidden",
                        format!("item {i}: radius must be finite and >= 0, got {radius}"),
                    ));
                }
                balls.push(ForbiddenBall { center, radius });
            }
        }
        Ok(PySafetyGuard {
            guard: SafetyGuard {
                min_norm,
                max_norm,
                bounds,
                forbidden: balls,
            },
        })
    }

    /// True when `x` satisfies every constraint.
    fn is_allowed(&self, x: &Bound<'_, PyAny>) -> PyResult<bool> {
        let x = vector(x, "x", self.dimension())?;
        Ok(self.guard.is_allowed(&x))
    }

    /// `x` moved into the allowed set (a copy; unchanged when already allowed).
    fn repair<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let mut x = vector(x, "x", self.dimension())?;
        self.guard.repair(&mut x);
        Ok(PyArray1::from_vec(py, x))
    }

    /// Every row of `xs` repaired: `(repaired, how many rows changed)`.
    fn repair_all<'py>(
        &self,
        py: Python<'py>,
        xs: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyArray2<f64>>, usize)> {
        let mut xs = matrix(xs, "xs", self.dimension(), false)?;
        let mut changed = 0;
        for x in &mut xs {
            let before = x.clone();
            self.guard.repair(x);
            changed += usize::from(*x != before);
        }
        Ok((rows_to_py(py, &xs)?, changed))
    }

    #[getter]
    fn min_norm(&self) -> Option<f64> {
        self.guard.min_norm
    }

    #[getter]
    fn max_norm(&self) -> Option<f64> {
        self.guard.max_norm
    }

    fn __repr__(&self) -> String {
        format!(
            "SafetyGuard(min_norm={:?}, max_norm={:?}, box={}, forbidden={})",
            self.guard.min_norm,
            self.guard.max_norm,
            self.guard.bounds.is_some(),
            self.guard.forbidden.len()
        )
    }
}

impl PySafetyGuard {
    /// The dimension the guard's box or balls fix, if any.
    fn dimension(&self) -> Option<usize> {
        self.guard.bounds.as_ref().map(|(l, _)| l.len()).or(self
            .guard
            .forbidden
            .first()
            .map(|b| b.center.len()))
    }

    fn check_dimension(&self, dim: usize) -> PyResult<()> {
        match self.dimension() {
            Some(d) if d != dim => Err(invalid(
                "guard",
                format!("dimension mismatch: the guard is for length {d}, x0 has length {dim}"),
            )),
            _ => Ok(()),
        }
    }
}

/// CMA-ES (full or separable covariance), ask/tell.
#[pyclass(name = "CMAES", module = "paradox._native")]
#[derive(Debug)]
pub struct PyCmaes {
    es: Cmaes,
    /// The last `ask`'s candidates, until told.
    asked: Option<Vec<Vec<f64>>>,
}

/// Refuses a full-covariance run too large to hold.
fn check_cmaes_dimension(n: usize, separable: bool) -> PyResult<()> {
    if !separable && n > MAX_FULL_CMAES_DIM {
        return Err(invalid(
            "x0",
            format!(
                "full CMA-ES keeps an n x n covariance: n = {n} exceeds {MAX_FULL_CMAES_DIM}; \
                 use separable=True"
            ),
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn cmaes_config(
    sigma0: f64,
    popsize: Option<usize>,
    separable: bool,
    active: bool,
    seed: u64,
    target: Option<f64>,
    max_evals: Option<u64>,
) -> PyResult<CmaesConfig> {
    if let Some(p) = popsize {
        if !(2..=MAX_POPULATION).contains(&p) {
            return Err(invalid(
                "popsize",
                format!("must be between 2 and {MAX_POPULATION}, got {p}"),
            ));
        }
    }
    Ok(CmaesConfig {
        sigma0: positive("sigma0", sigma0)?,
        population: popsize,
        separable,
        active: active && !separable,
        target,
        max_evaluations: max_evals,
        seed,
        ..Default::default()
    })
}

#[pymethods]
impl PyCmaes {
    #[new]
    #[pyo3(signature = (x0, sigma0, *, popsize=None, separable=false, active=true, seed=0, target=None, max_evals=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        x0: &Bound<'_, PyAny>,
        sigma0: f64,
        popsize: Option<usize>,
        separable: bool,
        active: bool,
        seed: u64,
        target: Option<f64>,
        max_evals: Option<u64>,
    ) -> PyResult<Self> {
        let x0 = vector(x0, "x0", None)?;
        check_cmaes_dimension(x0.len(), separable)?;
        let config = cmaes_config(sigma0, popsize, separable, active, seed, target, max_evals)?;
        Ok(PyCmaes {
            es: Cmaes::new(x0, config),
            asked: None,
        })
    }

    /// The next population, shape `(popsize, dimension)`.
    fn ask<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let xs = self.es.ask();
        let out = rows_to_py(py, &xs);
        self.asked = Some(xs);
        out
    }

    /// Fitness of the last `ask`'s candidates (lower is better). Candidates changed since
    /// (repaired, replaced by injected points) are clipped to the sampling distribution's
    /// reach before they are learned from; unchanged ones are learned from as sampled.
    fn tell(&mut self, candidates: &Bound<'_, PyAny>, fitness: &Bound<'_, PyAny>) -> PyResult<()> {
        let lambda = self.es.population();
        let Some(asked) = self.asked.as_ref() else {
            return Err(PyValueError::new_err("tell before ask: call ask() first"));
        };
        let (mut xs, fs) = told(candidates, fitness, self.es.dimension(), Some(lambda))?;
        for (x, sampled) in xs.iter_mut().zip(asked) {
            if x != sampled {
                self.es.clip_injected(x);
            }
        }
        self.es.tell(&xs, &fs);
        self.asked = None;
        Ok(())
    }

    /// Why the run should stop (`"target"`, `"max_evaluations"`, `"tol_fun"`, ...),
    /// or None while it should go on.
    fn stop(&self) -> Option<&'static str> {
        self.es.should_stop().map(|r| r.as_str())
    }

    /// `(x, f)`: the best candidate told so far and its fitness.
    #[getter]
    fn best<'py>(&self, py: Python<'py>) -> (Bound<'py, PyArray1<f64>>, f64) {
        let (x, f) = self.es.best();
        (PyArray1::from_slice(py, x), f)
    }

    /// The distribution's mean.
    #[getter]
    fn mean<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, self.es.mean())
    }

    #[getter]
    fn sigma(&self) -> f64 {
        self.es.sigma()
    }

    #[getter]
    fn generation(&self) -> u64 {
        self.es.generation()
    }

    #[getter]
    fn evaluations(&self) -> u64 {
        self.es.evaluations()
    }

    #[getter]
    fn popsize(&self) -> usize {
        self.es.population()
    }

    #[getter]
    fn dimension(&self) -> usize {
        self.es.dimension()
    }

    fn __repr__(&self) -> String {
        format!(
            "CMAES(dimension={}, popsize={}, generation={}, evaluations={}, best={})",
            self.es.dimension(),
            self.es.population(),
            self.es.generation(),
            self.es.evaluations(),
            self.es.best().1
        )
    }
}

/// A real-coded genetic algorithm whose operators are chosen by a bandit, ask/tell.
// `unsendable`: the GA may hold a generator plugin, which is not `Send`; Python objects
// of this class stay on the thread that made them.
#[pyclass(name = "GA", module = "paradox._native", unsendable)]
#[derive(Debug)]
pub struct PyGa {
    ga: Ga,
    dim: usize,
    asked: Option<usize>,
}

#[pymethods]
impl PyGa {
    #[new]
    #[pyo3(signature = (x0, *, popsize=50, elite=2, tournament=3, crossover_rate=0.9, mutation_rate=0.1, mutation_scale=0.1, init_sigma=1.0, adaptive=true, seed=0, guard=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        x0: &Bound<'_, PyAny>,
        popsize: usize,
        elite: usize,
        tournament: usize,
        crossover_rate: f64,
        mutation_rate: f64,
        mutation_scale: f64,
        init_sigma: f64,
        adaptive: bool,
        seed: u64,
        guard: Option<PySafetyGuard>,
    ) -> PyResult<Self> {
        let x0 = vector(x0, "x0", None)?;
        if !(2..=MAX_POPULATION).contains(&popsize) || elite >= popsize {
            return Err(invalid(
                "popsize",
                format!(
                    "need 2 <= popsize <= {MAX_POPULATION}, elite < popsize; got popsize {popsize}, elite {elite}"
                ),
            ));
        }
        if tournament == 0 {
            return Err(invalid("tournament", "must be at least 1"));
        }
        for (what, p) in [
            ("crossover_rate", crossover_rate),
            ("mutation_rate", mutation_rate),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(invalid(
                    what,
                    format!("must be a probability in [0, 1], got {p}"),
                ));
            }
        }
        let sigma = positive("mutation_scale", mutation_scale)?;
        let config = GaConfig {
            population: popsize,
            elite,
            tournament,
            crossover_rate,
            mutation_rate,
            operators: vec![
                (
                    Crossover::Blend { alpha: 0.5 },
                    Mutation::Gaussian { sigma },
                ),
                (Crossover::Uniform, Mutation::Gaussian { sigma }),
                (
                    Crossover::Arithmetic,
                    Mutation::Cauchy { scale: sigma / 2.0 },
                ),
            ],
            adaptive,
            init_sigma: positive("init_sigma", init_sigma)?,
            seed,
        };
        let dim = x0.len();
        let mut ga = Ga::new(x0, config);
        if let Some(guard) = guard {
            guard.check_dimension(dim)?;
            ga = ga.with_guard(guard.guard);
        }
        Ok(PyGa {
            ga,
            dim,
            asked: None,
        })
    }

    /// The next candidates: the whole first population, then the offspring of each
    /// generation (popsize - elite).
    fn ask<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let xs = self.ga.ask();
        self.asked = Some(xs.len());
        rows_to_py(py, &xs)
    }

    /// Fitness of the last `ask`'s candidates, in order (lower is better).
    fn tell(&mut self, candidates: &Bound<'_, PyAny>, fitness: &Bound<'_, PyAny>) -> PyResult<()> {
        let Some(n) = self.asked else {
            return Err(PyValueError::new_err("tell before ask: call ask() first"));
        };
        let (xs, fs) = told(candidates, fitness, self.dim, Some(n))?;
        self.ga.tell(&xs, &fs);
        self.asked = None;
        Ok(())
    }

    #[getter]
    fn best<'py>(&self, py: Python<'py>) -> (Bound<'py, PyArray1<f64>>, f64) {
        let (x, f) = self.ga.best();
        (PyArray1::from_slice(py, x), f)
    }

    #[getter]
    fn evaluations(&self) -> u64 {
        self.ga.evaluations()
    }

    /// `(population, fitness)` of the current generation.
    #[getter]
    fn population<'py>(&self, py: Python<'py>) -> PyResult<Generation<'py>> {
        let (xs, fs) = self.ga.population();
        Ok((rows_to_py(py, xs)?, PyArray1::from_slice(py, fs)))
    }

    /// The operator bandit's value per operator (blend, uniform, arithmetic+Cauchy):
    /// how often each one produced a child better than its better parent, recently.
    #[getter]
    fn operator_values(&self) -> Vec<f64> {
        self.ga.bandit().values().to_vec()
    }
}

/// MAP-Elites: the best solution per behaviour cell (a grid, or CVT cells).
#[pyclass(name = "MapElites", module = "paradox._native")]
#[derive(Debug)]
pub struct PyMapElites {
    map: MapElites,
    behavior_dim: usize,
    dim: Option<usize>,
}

#[pymethods]
impl PyMapElites {
    /// `bins` per behaviour dimension over the box `[lower, upper]`, or (with
    /// `cvt_cells`) that many CVT cells from k-means over `samples` uniform points.
    #[new]
    #[pyo3(signature = (lower, upper, *, bins=None, cvt_cells=None, samples=10_000, seed=0))]
    fn new(
        lower: &Bound<'_, PyAny>,
        upper: &Bound<'_, PyAny>,
        bins: Option<usize>,
        cvt_cells: Option<usize>,
        samples: usize,
        seed: u64,
    ) -> PyResult<Self> {
        let lower = vector(lower, "lower", None)?;
        let upper = vector(upper, "upper", Some(lower.len()))?;
        if let Some(i) =
            (0..lower.len()).find(|&i| lower[i] >= upper[i] || !(upper[i] - lower[i]).is_finite())
        {
            return Err(invalid(
                "lower",
                format!(
                    "lower[{i}] = {} must be below upper[{i}] = {}, a finite distance apart",
                    lower[i], upper[i]
                ),
            ));
        }
        let behavior_dim = lower.len();
        let map = match (bins, cvt_cells) {
            (Some(bins), None) => {
                let cells = u32::try_from(behavior_dim)
                    .ok()
                    .and_then(|d| bins.checked_pow(d))
                    .filter(|&c| bins >= 1 && c <= MAX_CELLS);
                if cells.is_none() {
                    return Err(invalid(
                        "bins",
                        format!(
                            "{bins} bins over {behavior_dim} dimensions is not between 1 and \
                             {MAX_CELLS} cells: use cvt_cells for many behaviour dimensions"
                        ),
                    ));
                }
                MapElites::grid(lower, upper, bins, seed)
            }
            (None, Some(k)) => {
                if k == 0 || k > 100_000 {
                    return Err(invalid("cvt_cells", format!("must be 1..=100000, got {k}")));
                }
                MapElites::cvt(lower, upper, k, samples.min(1_000_000), seed)
            }
            _ => {
                return Err(invalid(
                    "bins",
                    "give exactly one of `bins` and `cvt_cells`",
                ))
            }
        };
        Ok(PyMapElites {
            map,
            behavior_dim,
            dim: None,
        })
    }

    /// Offers `x` with its fitness (lower is better) and behaviour; True when it became
    /// its cell's elite.
    fn insert(
        &mut self,
        x: &Bound<'_, PyAny>,
        fitness: f64,
        behavior: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let x = vector(x, "x", self.dim)?;
        let behavior = vector(behavior, "behavior", Some(self.behavior_dim))?;
        self.dim = Some(x.len());
        Ok(self.map.insert(x, fitness, behavior))
    }

    /// `n` new candidates varied from random elites; None while the archive is empty.
    fn ask<'py>(
        &mut self,
        py: Python<'py>,
        n: usize,
    ) -> PyResult<Option<Bound<'py, PyArray2<f64>>>> {
        if n > MAX_POPULATION {
            return Err(invalid(
                "n",
                format!("at most {MAX_POPULATION} per call, got {n}"),
            ));
        }
        match self.map.ask(n) {
            Some(xs) => Ok(Some(rows_to_py(py, &xs)?)),
            None => Ok(None),
        }
    }

    /// The elites: a list of `(x, fitness, behavior)`.
    fn elites<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items: Vec<_> = self
            .map
            .elites()
            .map(|e| {
                (
                    PyArray1::from_slice(py, &e.x),
                    e.fitness,
                    PyArray1::from_slice(py, &e.behavior),
                )
            })
            .collect();
        PyList::new(py, items)
    }

    /// The cell index of a behaviour.
    fn cell_of(&self, behavior: &Bound<'_, PyAny>) -> PyResult<usize> {
        let behavior = vector(behavior, "behavior", Some(self.behavior_dim))?;
        Ok(self.map.cell_of(&behavior))
    }

    /// Fraction of cells occupied.
    #[getter]
    fn coverage(&self) -> f64 {
        self.map.coverage()
    }

    #[getter]
    fn cells(&self) -> usize {
        self.map.cells()
    }
}

/// Novelty: mean distance from a behaviour to its `k` nearest archived (and given) ones.
#[pyclass(name = "NoveltyArchive", module = "paradox._native")]
#[derive(Debug)]
pub struct PyNoveltyArchive {
    archive: NoveltyArchive,
}

#[pymethods]
impl PyNoveltyArchive {
    #[new]
    #[pyo3(signature = (k=15))]
    fn new(k: usize) -> PyResult<Self> {
        if k == 0 {
            return Err(invalid("k", "must be at least 1"));
        }
        Ok(PyNoveltyArchive {
            archive: NoveltyArchive::new(k),
        })
    }

    /// Archives one behaviour (1-D) or several (2-D).
    fn add(&mut self, behavior: &Bound<'_, PyAny>) -> PyResult<()> {
        let dim = self.archive.behaviors().first().map(Vec::len);
        let ndim: usize = behavior
            .py()
            .import("numpy")?
            .call_method1("ndim", (behavior,))?
            .extract()?;
        let rows = matrix(behavior, "behavior", dim, ndim == 1)?;
        for row in rows {
            self.archive.add(row);
        }
        Ok(())
    }

    /// Novelty of `behavior` against the archive and `population` (rows); a row of the
    /// population equal to `behavior` at index `skip` is left out. Infinite when there is
    /// nothing to compare with.
    #[pyo3(signature = (behavior, population=None, skip=None))]
    fn novelty(
        &self,
        behavior: &Bound<'_, PyAny>,
        population: Option<&Bound<'_, PyAny>>,
        skip: Option<usize>,
    ) -> PyResult<f64> {
        let dim = self.archive.behaviors().first().map(Vec::len);
        let b = vector(behavior, "behavior", dim)?;
        let others = match population {
            Some(p) => matrix(p, "population", Some(b.len()), false)?,
            None => Vec::new(),
        };
        Ok(self.archive.novelty(&b, &others, skip))
    }

    fn __len__(&self) -> usize {
        self.archive.behaviors().len()
    }
}

/// Calls the Python objective on a population: per row, or once on the whole array
/// (`batch`), checking what comes back.
fn evaluate(
    py: Python<'_>,
    objective: &Bound<'_, PyAny>,
    xs: &[Vec<f64>],
    batch: bool,
) -> PyResult<Vec<f64>> {
    if batch {
        let array = rows_to_py(py, xs)?;
        let out = objective.call1((array,))?;
        return fitness(&out, xs.len());
    }
    xs.iter()
        .map(|x| {
            let out = objective.call1((PyArray1::from_slice(py, x),))?;
            out.extract::<f64>().map_err(|_| {
                invalid(
                    "objective",
                    format!(
                        "must return a number, returned {}",
                        out.get_type()
                            .name()
                            .map(|n| n.to_string())
                            .unwrap_or_default()
                    ),
                )
            })
        })
        .collect()
}

/// Minimises `objective` from `x0` with CMA-ES: optionally with restarts (`"ipop"`,
/// `"bipop"`) or with a surrogate model screening candidates (`"quadratic"`, `"knn"`).
/// Returns a dict: `x`, `f`, `evaluations`, `stop`, `runs` (restarts), `surrogate_tau`.
#[pyfunction]
#[pyo3(signature = (objective, x0, sigma0, *, restarts=None, surrogate=None, max_evals=100_000, target=None, popsize=None, separable=false, seed=0, max_restarts=9, batch=false))]
#[allow(clippy::too_many_arguments)]
pub fn minimize<'py>(
    py: Python<'py>,
    objective: &Bound<'py, PyAny>,
    x0: &Bound<'py, PyAny>,
    sigma0: f64,
    restarts: Option<&str>,
    surrogate: Option<&str>,
    max_evals: u64,
    target: Option<f64>,
    popsize: Option<usize>,
    separable: bool,
    seed: u64,
    max_restarts: usize,
    batch: bool,
) -> PyResult<Bound<'py, PyDict>> {
    if !objective.is_callable() {
        return Err(invalid("objective", "must be callable"));
    }
    if max_evals == 0 {
        return Err(invalid("max_evals", "must be at least 1"));
    }
    if max_restarts > MAX_RESTARTS {
        return Err(invalid(
            "max_restarts",
            format!("at most {MAX_RESTARTS}, got {max_restarts}"),
        ));
    }
    let x0 = vector(x0, "x0", None)?;
    check_cmaes_dimension(x0.len(), separable)?;
    let config = cmaes_config(
        sigma0,
        popsize,
        separable,
        true,
        seed,
        target,
        Some(max_evals),
    )?;
    let out = PyDict::new(py);
    match (restarts, surrogate) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "surrogate",
                "restarts and a surrogate do not combine: choose one",
            ))
        }
        (None, Some(kind)) => {
            let n = x0.len();
            // The ES also counts the candidates the model screened out: the budget of
            // true evaluations is the loop's to enforce, not the ES's.
            let es = Cmaes::new(
                x0,
                CmaesConfig {
                    max_evaluations: None,
                    ..config
                },
            );
            let settings = SurrogateConfig::for_dimension(n, es.population());
            match kind {
                "quadratic" => surrogate_loop(
                    py,
                    objective,
                    batch,
                    SurrogateAssisted::new(es, QuadraticSurrogate::new(), settings),
                    max_evals,
                    target,
                    &out,
                )?,
                "knn" => surrogate_loop(
                    py,
                    objective,
                    batch,
                    SurrogateAssisted::new(es, KnnSurrogate::new(8), settings),
                    max_evals,
                    target,
                    &out,
                )?,
                other => {
                    return Err(invalid(
                        "surrogate",
                        format!("unknown model `{other}`: expected `quadratic` or `knn`"),
                    ))
                }
            }
        }
        (strategy, None) => {
            let strategy = match strategy {
                None => RestartStrategy::None,
                Some("ipop") => RestartStrategy::Ipop,
                Some("bipop") => RestartStrategy::Bipop,
                Some(other) => {
                    return Err(invalid(
                        "restarts",
                        format!("unknown strategy `{other}`: expected `ipop` or `bipop`"),
                    ))
                }
            };
            let schedule = Restarts {
                strategy,
                base: config,
                max_evaluations: max_evals,
                max_restarts,
            };
            let outcome =
                schedule.try_minimize(|_| x0.clone(), |xs| evaluate(py, objective, xs, batch))?;
            let runs = PyList::empty(py);
            for run in &outcome.runs {
                let d = PyDict::new(py);
                d.set_item("popsize", run.population)?;
                d.set_item("sigma0", run.sigma0)?;
                d.set_item("evaluations", run.evaluations)?;
                d.set_item("best", run.best)?;
                d.set_item("stop", run.stop.as_str())?;
                runs.append(d)?;
            }
            let stop = outcome.runs.last().map(|r| r.stop.as_str());
            out.set_item("x", PyArray1::from_vec(py, outcome.best_x))?;
            out.set_item("f", outcome.best_f)?;
            out.set_item("evaluations", outcome.evaluations)?;
            out.set_item("stop", stop)?;
            out.set_item("runs", runs)?;
        }
    }
    Ok(out)
}

/// The surrogate-screened run; with `batch` the objective still gets an array of rows
/// (one row per call: the model decides candidate by candidate what to evaluate).
fn surrogate_loop<S: Surrogate>(
    py: Python<'_>,
    objective: &Bound<'_, PyAny>,
    batch: bool,
    mut search: SurrogateAssisted<S>,
    max_evals: u64,
    target: Option<f64>,
    out: &Bound<'_, PyDict>,
) -> PyResult<()> {
    let mut failure: Option<PyErr> = None;
    let stop = loop {
        if let Some(reason) = search.es.should_stop() {
            break reason.as_str();
        }
        if search.evaluations() >= max_evals {
            break "max_evaluations";
        }
        if target.is_some_and(|t| search.best().1 <= t) {
            break "target";
        }
        search.step(|x| {
            if failure.is_some() {
                return f64::NAN;
            }
            match evaluate(py, objective, std::slice::from_ref(&x.to_vec()), batch) {
                Ok(f) => f[0],
                Err(e) => {
                    failure = Some(e);
                    f64::NAN
                }
            }
        });
        if let Some(e) = failure.take() {
            return Err(e);
        }
    };
    let (x, f) = search.best();
    out.set_item("x", PyArray1::from_slice(py, x))?;
    out.set_item("f", f)?;
    out.set_item("evaluations", search.evaluations())?;
    out.set_item("stop", stop)?;
    out.set_item("surrogate_tau", search.current_tau())?;
    out.set_item("runs", PyList::empty(py))?;
    Ok(())
}

/// Registers the classes and functions of this module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySafetyGuard>()?;
    m.add_class::<PyCmaes>()?;
    m.add_class::<PyGa>()?;
    m.add_class::<PyMapElites>()?;
    m.add_class::<PyNoveltyArchive>()?;
    m.add_function(wrap_pyfunction!(minimize, m)?)?;
    Ok(())
}
