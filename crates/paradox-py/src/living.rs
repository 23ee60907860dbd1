//! `paradox.LivingCollection`: a collection seen through several vector spaces (the
//! `paradox-lifecycle` crate). Texts are encoded into every space that has an encoder,
//! searches are adapter-backed while a new space fills, a background migration re-encodes
//! the most valuable points first, drift is measured per space.
//!
//! Encoders are named by spec (`"hashing:256"`, `"minilm"`, `"minilm:3"`) or are Python
//! callables `f(texts: list[str]) -> array (len(texts), dim)`; a callable lives in this
//! process only, so after reopening it is attached again with `attach_encoder`. Every
//! call into the lifecycle releases the GIL; a Python encoder takes it back while it runs
//! (also from the migration's thread; migrations are paused at interpreter exit). An
//! exception a Python encoder raises reaches the caller as itself.

use std::path::PathBuf;
use std::sync::Arc;

use paradox_lifecycle::drift::DriftConfig;
use paradox_lifecycle::encoder::{parse_space, Encoder, EncoderInfo};
use paradox_lifecycle::living::{
    DriftWindow, LivingCollection, LivingOptions, LivingSearch, MigrationOptions, MigrationPhase,
    SpaceSpec,
};
use paradox_lifecycle::spec::{adapter_kind_from_spec, encoder_from_spec};
use paradox_lifecycle::LifecycleError;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};
use serde::Serialize;

use crate::collection::{read_filter, read_new_points, read_payloads};
use crate::convert::{id_to_py, json_to_py, read_ids, read_vectors};
use crate::engine::PyEngine;
use crate::errors::{invalid, to_py, ParadoxError};

/// The `kind` of an encoder implemented by a Python callable.
const PYTHON_KIND: &str = "python";

/// How often a blocking wait lets Python deliver signals (Ctrl-C).
const SIGNAL_POLL: std::time::Duration = std::time::Duration::from_millis(100);

thread_local! {
    /// The exception a Python encoder raised on this thread (or the `ValueError` for its
    /// wrong output), re-raised as itself when the lifecycle call it failed returns.
    static ENCODER_ERROR: std::cell::RefCell<Option<PyErr>> = const { std::cell::RefCell::new(None) };
}

/// Collections whose migrations may run through Python encoders; paused at exit.
static MIGRATING: std::sync::Mutex<Vec<std::sync::Weak<LivingCollection>>> =
    std::sync::Mutex::new(Vec::new());

/// Maps a lifecycle error: a Python encoder's own exception as itself, caller mistakes
/// as `ValueError`, engine errors as the engine's, the rest as `ParadoxError`.
fn lifecycle_to_py(error: LifecycleError) -> PyErr {
    let raised = ENCODER_ERROR.with(|e| e.borrow_mut().take());
    match error {
        LifecycleError::Model(_) if raised.is_some() => raised.expect("checked"),
        LifecycleError::Engine(e) => to_py(e),
        LifecycleError::InvalidArgument(_) => PyValueError::new_err(error.to_string()),
        _ => ParadoxError::new_err(error.to_string()),
    }
}

/// Pauses every migration started from Python (registered with `atexit` by the
/// package): their threads must not need the GIL while the interpreter shuts down.
#[pyfunction]
pub fn _pause_living_migrations(py: Python<'_>) {
    let collections: Vec<Arc<LivingCollection>> = MIGRATING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
        .filter_map(|w| w.upgrade())
        .collect();
    py.allow_threads(|| {
        for living in collections {
            living.pause_migration();
        }
    });
}

fn to_dict<T: Serialize>(py: Python<'_>, value: &T) -> PyResult<PyObject> {
    let json = serde_json::to_value(value)
        .map_err(|e| ParadoxError::new_err(format!("cannot convert a result: {e}")))?;
    json_to_py(py, &json)
}

/// An encoder implemented by a Python callable.
#[derive(Debug)]
struct PyEncoder {
    info: EncoderInfo,
    func: Py<PyAny>,
}

impl PyEncoder {
    fn new(func: &Bound<'_, PyAny>, space: &str, dim: usize) -> PyResult<PyEncoder> {
        let (name, version) = parse_space(space).ok_or_else(|| {
            invalid(
                "space",
                format!("`{space}` must look like NAME@VERSION to name an encoder"),
            )
        })?;
        Ok(PyEncoder {
            info: EncoderInfo {
                name: name.to_string(),
                version,
                dim,
                kind: PYTHON_KIND.to_string(),
                params: serde_json::json!({}),
            },
            func: func.clone().unbind(),
        })
    }
}

impl Encoder for PyEncoder {
    fn info(&self) -> &EncoderInfo {
        &self.info
    }

    fn encode_texts(&self, texts: &[&str]) -> paradox_lifecycle::Result<Vec<f32>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let space = self.info.space();
        Python::with_gil(|py| -> PyResult<Vec<f32>> {
            let out = self.func.call1(py, (PyList::new(py, texts)?,))?;
            let vectors = read_vectors(out.bind(py), "the encoder's output")?;
            if vectors.rows != texts.len() || vectors.dim != self.info.dim {
                return Err(PyValueError::new_err(format!(
                    "returned {} rows of {} values for {} texts; expected {} values each",
                    vectors.rows,
                    vectors.dim,
                    texts.len(),
                    self.info.dim
                )));
            }
            Ok(vectors.data)
        })
        .map_err(|e| {
            let message = format!("python encoder for `{space}`: {e}");
            ENCODER_ERROR.with(|slot| *slot.borrow_mut() = Some(e));
            LifecycleError::Model(message)
        })
    }
}

/// Either a spec string or a Python callable, as the encoder of `space`.
fn read_encoder(
    obj: &Bound<'_, PyAny>,
    space: &str,
    dim: Option<usize>,
    model_dir: Option<&PathBuf>,
) -> PyResult<Arc<dyn Encoder>> {
    if let Ok(spec) = obj.downcast::<PyString>() {
        let spec = spec.to_str()?.to_string();
        let space = space.to_string();
        let dir = model_dir.cloned();
        return obj
            .py()
            .allow_threads(|| encoder_from_spec(&spec, &space, dir.as_deref()))
            .map_err(lifecycle_to_py);
    }
    if !obj.is_callable() {
        return Err(invalid(
            "encoder",
            "expected a spec string (\"hashing:DIM\", \"minilm\", \"minilm:LAYERS\") or a \
             callable f(texts) -> array (len(texts), dim)",
        ));
    }
    let dim = dim.ok_or_else(|| invalid("dim", "a Python encoder needs its dimension (dim=)"))?;
    Ok(Arc::new(PyEncoder::new(obj, space, dim)?))
}

/// A collection managed through its vector spaces (see `docs/lifecycle.md`).
///
/// Example::
///
///     import paradox
///     engine = paradox.Engine("./data")
///     engine.create_collection("docs", 64, "cosine")
///     docs = paradox.LivingCollection.init(engine, "docs", "hash@1", encoder="hashing:64",
///                                          text_field="text")
///     docs.upsert_texts([1, 2], ["a cat sat", "stock prices fell"])
///     docs.add_space("hash@2", encoder="hashing:128")
///     docs.fit_adapters("hash@1", "hash@2", kind="affine")
///     docs.migrate("hash@2")
///     docs.wait_for_migration()
///     docs.search(text="a sitting cat", k=1)
#[pyclass(name = "LivingCollection", module = "paradox._native", frozen)]
#[derive(Debug)]
pub struct PyLiving {
    inner: Arc<LivingCollection>,
}

#[pymethods]
impl PyLiving {
    /// Starts managing collection ``name`` (which must exist): its vectors become space
    /// ``space`` (``NAME@VERSION``). ``encoder``: a spec (``"hashing:DIM"``,
    /// ``"minilm"``, ``"minilm:LAYERS"``) or a callable ``f(texts) -> array``; its
    /// dimension is the collection's. ``text_field``: the payload field that keeps each
    /// point's text (what a migration re-encodes). Opens the existing state when the
    /// collection is already managed with the same first space.
    #[staticmethod]
    #[pyo3(signature = (engine, name, space, encoder = None, text_field = None, model_dir = None))]
    fn init(
        py: Python<'_>,
        engine: &PyEngine,
        name: &str,
        space: &str,
        encoder: Option<&Bound<'_, PyAny>>,
        text_field: Option<String>,
        model_dir: Option<PathBuf>,
    ) -> PyResult<PyLiving> {
        let engine = engine.engine();
        let dim = engine.collection(name).map_err(to_py)?.config().dimension;
        let encoder = encoder
            .filter(|e| !e.is_none())
            .map(|e| read_encoder(e, space, Some(dim), model_dir.as_ref()))
            .transpose()?;
        let options = LivingOptions {
            space: space.to_string(),
            encoder: encoder.as_ref().map(|e| e.info().clone()),
            text_field,
        };
        let inner = py
            .allow_threads(|| LivingCollection::init(engine, name, options))
            .map_err(lifecycle_to_py)?;
        if let Some(encoder) = encoder {
            inner
                .attach_encoder(space, encoder)
                .map_err(lifecycle_to_py)?;
        }
        Ok(PyLiving { inner })
    }

    /// Opens the lifecycle of collection ``name`` (set up earlier with :meth:`init`).
    /// Python encoders are not stored: attach them again with :meth:`attach_encoder`.
    #[staticmethod]
    fn open(py: Python<'_>, engine: &PyEngine, name: &str) -> PyResult<PyLiving> {
        let engine = engine.engine();
        let inner = py
            .allow_threads(|| LivingCollection::open(engine, name))
            .map_err(lifecycle_to_py)?;
        Ok(PyLiving { inner })
    }

    /// The collection's name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_string()
    }

    /// The space searches use by default (the newest one a migration switched to).
    #[getter]
    fn default_space(&self) -> String {
        self.inner.default_space()
    }

    /// Every space: name, dimension, encoder, companion collection, normaliser.
    fn spaces(&self, py: Python<'_>) -> PyResult<PyObject> {
        to_dict(py, &self.inner.spaces())
    }

    /// Every stored adapter and how well it fitted.
    fn adapters(&self, py: Python<'_>) -> PyResult<PyObject> {
        to_dict(py, &self.inner.adapters())
    }

    /// Adds space ``name`` with an encoder (spec or callable; a callable needs ``dim``)
    /// or, without one, of dimension ``dim`` (vectors only). Returns the space.
    #[pyo3(signature = (name, encoder = None, dim = None, model_dir = None))]
    fn add_space(
        &self,
        py: Python<'_>,
        name: &str,
        encoder: Option<&Bound<'_, PyAny>>,
        dim: Option<usize>,
        model_dir: Option<PathBuf>,
    ) -> PyResult<PyObject> {
        let encoder = encoder
            .filter(|e| !e.is_none())
            .map(|e| read_encoder(e, name, dim, model_dir.as_ref()))
            .transpose()?;
        let spec = SpaceSpec {
            name: name.to_string(),
            encoder: encoder.as_ref().map(|e| e.info().clone()),
            dim,
            index: None,
        };
        let space = py
            .allow_threads(|| self.inner.add_space(spec))
            .map_err(lifecycle_to_py)?;
        if let Some(encoder) = encoder {
            self.inner
                .attach_encoder(name, encoder)
                .map_err(lifecycle_to_py)?;
        }
        to_dict(py, &space)
    }

    /// Makes ``space`` the one searches use when they name none.
    fn set_default_space(&self, py: Python<'_>, space: &str) -> PyResult<()> {
        py.allow_threads(|| self.inner.set_default_space(space))
            .map_err(lifecycle_to_py)
    }

    /// Removes space ``name``: its companion collection, the adapters from or into it,
    /// the overlays on it and its attached encoder. Returns the space as it was. The
    /// first space, the default space (see :meth:`set_default_space`), a space a running
    /// migration uses and an unknown name raise ``ValueError`` naming the reason, and
    /// nothing is removed.
    fn remove_space(&self, py: Python<'_>, name: &str) -> PyResult<PyObject> {
        let space = py
            .allow_threads(|| self.inner.remove_space(name))
            .map_err(lifecycle_to_py)?;
        to_dict(py, &space)
    }

    /// Uses ``encoder`` (a callable ``f(texts) -> array``, or a spec) for ``space`` in
    /// this process; it must match the space's stored encoder (for a callable: the
    /// space was made with a callable of the same dimension).
    #[pyo3(signature = (space, encoder, model_dir = None))]
    fn attach_encoder(
        &self,
        space: &str,
        encoder: &Bound<'_, PyAny>,
        model_dir: Option<PathBuf>,
    ) -> PyResult<()> {
        let dim = self
            .inner
            .spaces()
            .into_iter()
            .find(|s| s.name == space)
            .map(|s| s.dim)
            .ok_or_else(|| {
                invalid(
                    "space",
                    format!("collection `{}` has no space `{space}`", self.inner.name()),
                )
            })?;
        let encoder = read_encoder(encoder, space, Some(dim), model_dir.as_ref())?;
        self.inner
            .attach_encoder(space, encoder)
            .map_err(lifecycle_to_py)
    }

    /// Writes points with raw text, encoded into every space that has an encoder (the
    /// text is kept in the payload's text field). Returns the points written.
    #[pyo3(signature = (ids, texts, payloads = None))]
    fn upsert_texts(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        texts: Vec<String>,
        payloads: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let (ids, _) = read_ids(ids)?;
        if ids.len() != texts.len() {
            return Err(invalid(
                "texts",
                format!("{} ids but {} texts", ids.len(), texts.len()),
            ));
        }
        let payloads = read_payloads(payloads, ids.len())?;
        let points = ids
            .into_iter()
            .zip(texts)
            .zip(payloads)
            .map(|((id, text), payload)| (id, text, payload))
            .collect();
        py.allow_threads(|| self.inner.upsert_texts(points))
            .map_err(lifecycle_to_py)
    }

    /// Writes vectors into one space (``vectors``: array ``(len(ids), dim)``).
    #[pyo3(signature = (space, ids, vectors, payloads = None))]
    fn upsert_vectors(
        &self,
        py: Python<'_>,
        space: &str,
        ids: &Bound<'_, PyAny>,
        vectors: &Bound<'_, PyAny>,
        payloads: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let points = read_new_points(ids, vectors, payloads)?;
        py.allow_threads(|| self.inner.upsert_vectors(space, points))
            .map_err(lifecycle_to_py)
    }

    /// Deletes points from every space; returns how many existed.
    fn delete(&self, py: Python<'_>, ids: &Bound<'_, PyAny>) -> PyResult<usize> {
        let (ids, _) = read_ids(ids)?;
        py.allow_threads(|| self.inner.delete(&ids))
            .map_err(lifecycle_to_py)
    }

    /// Points stored in ``space``.
    fn count(&self, py: Python<'_>, space: &str) -> PyResult<usize> {
        py.allow_threads(|| self.inner.count(space))
            .map_err(lifecycle_to_py)
    }

    /// Share of the first space's points that ``space`` holds (0 to 1).
    fn coverage(&self, py: Python<'_>, space: &str) -> PyResult<f64> {
        py.allow_threads(|| self.inner.coverage(space))
            .map_err(lifecycle_to_py)
    }

    /// Encodes ``texts`` with ``space``'s encoder (its normaliser applied): array
    /// ``(len(texts), dim)``.
    fn encode<'py>(
        &self,
        py: Python<'py>,
        space: &str,
        texts: Vec<String>,
    ) -> PyResult<Bound<'py, numpy::PyArray2<f32>>> {
        let dim = self
            .inner
            .spaces()
            .into_iter()
            .find(|s| s.name == space)
            .map_or(0, |s| s.dim);
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let data = py
            .allow_threads(|| self.inner.encode(space, &refs))
            .map_err(lifecycle_to_py)?;
        use numpy::PyArrayMethods;
        let array = numpy::PyArray1::from_vec(py, data);
        array.reshape([texts.len(), dim])
    }

    /// Searches by ``text`` (encoded by the space's encoder) or ``vector``, in ``space``
    /// (default: :attr:`default_space`). While a space fills, points it lacks are found
    /// through the adapter from the older space. Returns a list of dicts ``{"id",
    /// "score", "source"}`` (``"payload"`` too with ``with_payload``); ``source`` is
    /// ``"native"``, ``"rescored"`` or ``"adapter"``.
    #[pyo3(signature = (text = None, vector = None, space = None, k = 10, filter = None,
        with_payload = false, context = None, oversample = None))]
    #[allow(clippy::too_many_arguments)]
    fn search(
        &self,
        py: Python<'_>,
        text: Option<String>,
        vector: Option<&Bound<'_, PyAny>>,
        space: Option<String>,
        k: usize,
        filter: Option<&Bound<'_, PyAny>>,
        with_payload: bool,
        context: Option<String>,
        oversample: Option<usize>,
    ) -> PyResult<PyObject> {
        let vector = vector
            .filter(|v| !v.is_none())
            .map(|v| {
                let v = read_vectors(v, "vector")?;
                if !v.single && v.rows != 1 {
                    return Err(invalid("vector", "expected one vector"));
                }
                Ok(v.data)
            })
            .transpose()?;
        let request = LivingSearch {
            space,
            vector,
            text,
            k,
            filter: filter
                .filter(|f| !f.is_none())
                .map(read_filter)
                .transpose()?,
            with_payload,
            params: Default::default(),
            context,
            oversample,
        };
        let hits = py
            .allow_threads(|| self.inner.search(&request))
            .map_err(lifecycle_to_py)?;
        let out = PyList::empty(py);
        for hit in hits {
            let dict = pyo3::types::PyDict::new(py);
            dict.set_item("id", id_to_py(py, &hit.id)?)?;
            dict.set_item("score", hit.score)?;
            dict.set_item("source", to_dict(py, &hit.source)?)?;
            if let Some(payload) = &hit.payload {
                dict.set_item("payload", to_dict(py, payload)?)?;
            }
            out.append(dict)?;
        }
        Ok(out.into_any().unbind())
    }

    /// Fits adapters between two spaces (both directions) from points both hold, topped
    /// up by encoding stored text. ``kind``: ``"affine"``, ``"procrustes"``,
    /// ``"low_rank:R"`` or ``"mlp:H"``. Returns the two adapters' entries.
    #[pyo3(signature = (from_space, to_space, kind = "affine", pairs = 5000))]
    fn fit_adapters(
        &self,
        py: Python<'_>,
        from_space: &str,
        to_space: &str,
        kind: &str,
        pairs: usize,
    ) -> PyResult<(PyObject, PyObject)> {
        let kind = adapter_kind_from_spec(kind).map_err(lifecycle_to_py)?;
        let (forward, backward) = py
            .allow_threads(|| self.inner.fit_adapters(from_space, to_space, kind, pairs))
            .map_err(lifecycle_to_py)?;
        Ok((to_dict(py, &forward)?, to_dict(py, &backward)?))
    }

    /// Starts re-encoding points into ``to`` in the background, most valuable first
    /// (searched often, recent, or high in ``importance_field``), at most ``rate``
    /// points per second; ``to`` becomes the default space at coverage ``switch_at``.
    /// Returns the status at start.
    #[pyo3(signature = (to, from_space = None, rate = None, batch_size = 256,
        switch_at = 0.95, importance_field = None))]
    #[allow(clippy::too_many_arguments)]
    fn migrate(
        &self,
        py: Python<'_>,
        to: &str,
        from_space: Option<String>,
        rate: Option<f64>,
        batch_size: usize,
        switch_at: f64,
        importance_field: Option<String>,
    ) -> PyResult<PyObject> {
        let mut options = MigrationOptions::to(to);
        options.from = from_space;
        options.rate_limit = rate;
        options.batch_size = batch_size;
        options.switch_at = switch_at;
        options.weights.importance_field = importance_field;
        let status = py
            .allow_threads(|| self.inner.migrate(options))
            .map_err(lifecycle_to_py)?;
        let mut migrating = MIGRATING.lock().unwrap_or_else(|e| e.into_inner());
        migrating.retain(|w| w.strong_count() > 0);
        migrating.push(Arc::downgrade(&self.inner));
        drop(migrating);
        to_dict(py, &status)
    }

    /// The current (or last) migration's progress, or None.
    fn migration_status(&self, py: Python<'_>) -> PyResult<PyObject> {
        // Without the GIL: the status lock can be held by a waiter whose migration
        // thread needs the GIL for a Python encoder.
        match py.allow_threads(|| self.inner.migration_status()) {
            Some(status) => to_dict(py, &status),
            None => Ok(py.None()),
        }
    }

    /// Blocks until the running migration ends; returns its final status (or None).
    /// Ctrl-C interrupts the wait (the migration goes on; :meth:`pause_migration` stops
    /// it).
    fn wait_for_migration(&self, py: Python<'_>) -> PyResult<PyObject> {
        loop {
            let running = py.allow_threads(|| {
                let running = self
                    .inner
                    .migration_status()
                    .is_some_and(|s| s.phase == MigrationPhase::Running);
                if running {
                    std::thread::sleep(SIGNAL_POLL);
                }
                running
            });
            if !running {
                break;
            }
            py.check_signals()?;
        }
        match py.allow_threads(|| self.inner.wait_for_migration()) {
            Some(status) => to_dict(py, &status),
            None => Ok(py.None()),
        }
    }

    /// Stops the running migration after its batch (:meth:`migrate` resumes it).
    fn pause_migration(&self, py: Python<'_>) {
        py.allow_threads(|| self.inner.pause_migration());
    }

    /// Drift report of ``space`` (default: :attr:`default_space`): the ``window`` oldest
    /// stored points against the newest (or, with ``recent``, against the vectors
    /// written and searched in this process). The verdict is ``drifted``.
    #[pyo3(signature = (space = None, window = 500, recent = false))]
    fn drift(
        &self,
        py: Python<'_>,
        space: Option<String>,
        window: usize,
        recent: bool,
    ) -> PyResult<PyObject> {
        let space = space.unwrap_or_else(|| self.inner.default_space());
        let window = if recent {
            DriftWindow::Recent { n: window }
        } else {
            DriftWindow::Stored { n: window }
        };
        let report = py
            .allow_threads(|| self.inner.drift(&space, window, &DriftConfig::default()))
            .map_err(lifecycle_to_py)?;
        to_dict(py, &report)
    }

    fn __repr__(&self) -> String {
        let spaces: Vec<String> = self.inner.spaces().into_iter().map(|s| s.name).collect();
        format!(
            "LivingCollection(name={:?}, spaces={:?}, default={:?})",
            self.inner.name(),
            spaces,
            self.inner.default_space()
        )
    }
}
