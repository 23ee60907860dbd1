//! `paradox.Engine`: a data directory of collections.

use crate::collection::PyCollection;
use crate::convert::py_to_json;
use crate::errors::{invalid, to_py};
use paradox_engine::{
    CollectionConfig, Engine, EngineOptions, FsyncPolicy, IndexConfig, Metric, SnapshotInfo,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::path::PathBuf;
use std::sync::Arc;

/// An embedded Paradox store: a data directory holding named collections.
///
/// Opening creates the directory if needed and locks it for this process; the lock is
/// released when the object is garbage-collected (or with ``del``).
///
/// Example::
///
///     import numpy as np, paradox
///     engine = paradox.Engine("./paradox-data")
///     docs = engine.create_collection("docs", 384, "cosine")
///     docs.upsert([1, 2], np.random.rand(2, 384).astype(np.float32))
///     ids, scores = docs.search(np.random.rand(384).astype(np.float32), k=5)
#[pyclass(name = "Engine", module = "paradox._native", frozen)]
#[derive(Debug)]
pub struct PyEngine {
    engine: Arc<Engine>,
}

impl PyEngine {
    /// A handle on an engine opened elsewhere (the one a [`crate::server::PyServer`] serves).
    pub fn from_engine(engine: Arc<Engine>) -> Self {
        PyEngine { engine }
    }

    /// The engine behind this handle.
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.clone()
    }
}

#[pymethods]
impl PyEngine {
    /// Opens (creating if needed) the data directory ``path``.
    ///
    /// ``fsync``: ``"interval"`` (default: group commit every 50 ms), ``"always"`` (every
    /// write is on disk before the call returns) or ``"never"`` (left to the OS).
    /// ``seal_threshold``: points kept in the growing (RAM) segment before it is sealed
    /// into an immutable segment file (default 100,000).
    #[new]
    #[pyo3(signature = (path, fsync = "interval", seal_threshold = None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        fsync: &str,
        seal_threshold: Option<usize>,
    ) -> PyResult<Self> {
        let mut options = EngineOptions {
            fsync: FsyncPolicy::parse(fsync).ok_or_else(|| {
                invalid(
                    "fsync",
                    format!("expected always, interval or never, got {fsync:?}"),
                )
            })?,
            ..EngineOptions::default()
        };
        if let Some(threshold) = seal_threshold {
            if threshold == 0 {
                return Err(invalid("seal_threshold", "must be at least 1"));
            }
            options.seal_threshold = threshold;
        }
        let engine = py
            .allow_threads(|| Engine::open_with(&path, options))
            .map_err(to_py)?;
        Ok(PyEngine {
            engine: Arc::new(engine),
        })
    }

    /// The data directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.engine.root().to_path_buf()
    }

    /// Creates a collection and returns it.
    ///
    /// ``metric``: ``"cosine"`` (default), ``"dot"`` or ``"l2"`` (also ``"euclidean"``).
    /// ``index``: ``"auto"`` (default: HNSW for sealed segments of 20,000+ points),
    /// ``"flat"`` (always exact), ``"hnsw"``, or a dict such as
    /// ``{"kind": "hnsw", "m": 16, "ef_construction": 200, "ef_search": 64,
    /// "encoding": "sq8", "rerank": 3}``.
    /// ``history``: keep every past version of every point, for
    /// :meth:`Collection.history`, ``search(..., as_of=t)`` and trajectories.
    #[pyo3(signature = (name, dim, metric = "cosine", index = None, history = false))]
    fn create_collection(
        &self,
        py: Python<'_>,
        name: &str,
        dim: usize,
        metric: &str,
        index: Option<&Bound<'_, PyAny>>,
        history: bool,
    ) -> PyResult<PyCollection> {
        let metric = Metric::parse(metric).ok_or_else(|| {
            invalid(
                "metric",
                format!("expected cosine, dot or l2, got {metric:?}"),
            )
        })?;
        let mut config = CollectionConfig::new(name, dim, metric);
        config.history = history;
        if let Some(index) = index {
            config.index = parse_index(index)?;
        }
        let collection = py
            .allow_threads(|| self.engine.create_collection(config))
            .map_err(to_py)?;
        Ok(PyCollection::new(self.engine.clone(), collection))
    }

    /// The collection called ``name`` (``KeyError`` if there is none).
    fn collection(&self, name: &str) -> PyResult<PyCollection> {
        let collection = self.engine.collection(name).map_err(to_py)?;
        Ok(PyCollection::new(self.engine.clone(), collection))
    }

    /// Same as :meth:`collection`.
    fn __getitem__(&self, name: &str) -> PyResult<PyCollection> {
        self.collection(name)
    }

    fn __contains__(&self, name: &str) -> bool {
        self.engine.collection(name).is_ok()
    }

    /// Names of every collection, sorted.
    fn list_collections(&self) -> Vec<String> {
        let mut names = self.engine.list_collections();
        names.sort();
        names
    }

    /// Deletes a collection and its files.
    fn drop_collection(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        py.allow_threads(|| self.engine.drop_collection(name))
            .map_err(to_py)
    }

    /// Writes a snapshot of collection ``name`` into the file ``dest``; returns a dict
    /// (collection, points, files, bytes, applied_seq).
    fn snapshot<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        dest: PathBuf,
    ) -> PyResult<Bound<'py, PyDict>> {
        let info = py
            .allow_threads(|| self.engine.snapshot_collection(name, &dest))
            .map_err(to_py)?;
        snapshot_dict(py, &info)
    }

    /// Restores a snapshot file as a new collection (named ``name``, default: the name it
    /// was snapshotted under) and returns it.
    #[pyo3(signature = (file, name = None))]
    fn restore(&self, py: Python<'_>, file: PathBuf, name: Option<&str>) -> PyResult<PyCollection> {
        let collection = py
            .allow_threads(|| self.engine.restore_collection(&file, name))
            .map_err(to_py)?;
        Ok(PyCollection::new(self.engine.clone(), collection))
    }

    /// Makes every acknowledged write durable now.
    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        py.allow_threads(|| self.engine.sync()).map_err(to_py)
    }

    fn __repr__(&self) -> String {
        format!("Engine({:?})", self.engine.root().display().to_string())
    }
}

/// `"flat" | "hnsw" | "auto"` or the JSON form as a dict.
fn parse_index(index: &Bound<'_, PyAny>) -> PyResult<IndexConfig> {
    if let Ok(name) = index.downcast::<PyString>() {
        let name = name.to_str()?;
        return IndexConfig::parse(name).ok_or_else(|| {
            invalid(
                "index",
                format!("expected flat, hnsw, auto or a dict, got {name:?}"),
            )
        });
    }
    let json = py_to_json(index, "index")?;
    serde_json::from_value(json).map_err(|e| invalid("index", e))
}

pub fn snapshot_dict<'py>(py: Python<'py>, info: &SnapshotInfo) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("collection", &info.collection)?;
    dict.set_item("points", info.points)?;
    dict.set_item("files", info.files)?;
    dict.set_item("bytes", info.bytes)?;
    dict.set_item("applied_seq", info.applied_seq)?;
    Ok(dict)
}
