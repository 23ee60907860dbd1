//! `paradox.Collection`: upsert, search, get, delete, count, scroll, snapshot.
//!
//! Every call that touches the engine releases the GIL (`allow_threads`) once its
//! arguments are read, so other Python threads run during searches, writes and builds.

use crate::convert::{
    id_to_py, json_to_py, payload_to_py, py_to_json, read_id, read_ids, read_payload, read_vectors,
    Vectors,
};
use crate::engine::snapshot_dict;
use crate::errors::{invalid, mind_to_py, to_py};
use numpy::PyArray1;
use paradox_engine::{
    Collection, Engine, Filter, NewPoint, Payload, Point, PointId, ScoredPoint, ScrollRequest,
    SearchParams, SearchRequest,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Points fetched per engine call while iterating `scroll` (default).
const SCROLL_PAGE: usize = 256;

/// A named set of points of one dimension and metric. Obtained from
/// :meth:`Engine.create_collection` or :meth:`Engine.collection`.
#[pyclass(name = "Collection", module = "paradox._native", frozen)]
#[derive(Debug)]
pub struct PyCollection {
    // Keeps the engine (and its directory lock) alive as long as a collection is used.
    engine: Arc<Engine>,
    inner: Arc<Collection>,
}

impl PyCollection {
    /// The engine and its collection (for the other native modules, which keep both
    /// alive as this type does).
    pub(crate) fn parts(&self) -> (&Arc<Engine>, &Arc<Collection>) {
        (&self.engine, &self.inner)
    }

    pub fn new(engine: Arc<Engine>, inner: Arc<Collection>) -> Self {
        PyCollection { engine, inner }
    }
}

#[pymethods]
impl PyCollection {
    /// The collection's name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_string()
    }

    /// Vector length.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.config().dimension
    }

    /// ``"cosine"``, ``"dot"`` or ``"l2"``.
    #[getter]
    fn metric(&self) -> &'static str {
        self.inner.config().metric.as_str()
    }

    /// Inserts or replaces points. ``ids``: ints (0 to 2**64-1) or strs; ``vectors``: a
    /// 2-D array with one row per id (a 1-D array for a single id); ``payloads``: a
    /// dict (or None) per id. Returns the number of points written.
    #[pyo3(signature = (ids, vectors, payloads = None))]
    fn upsert(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        vectors: &Bound<'_, PyAny>,
        payloads: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let points = read_new_points(ids, vectors, payloads)?;
        if points.is_empty() {
            return Ok(0);
        }
        let written = py
            .allow_threads(|| self.inner.upsert(points))
            .map_err(to_py)?;
        Ok(written.count)
    }

    /// The ``k`` nearest points to each query.
    ///
    /// ``queries``: a 1-D array (one query) or a 2-D array (one query per row); float32
    /// arrays are read in place, other inputs are converted. ``filter``: a payload filter
    /// as a dict or JSON string (``{"key": "lang", "eq": "en"}``, ``in``, ``range``,
    /// ``exists``, ``and``/``or``/``not``). ``params``: ``{"ef": int, "exact": bool}``.
    ///
    /// Returns ``(ids, scores)`` (and ``payloads`` when ``with_payload``): for a 1-D
    /// query, arrays of length <= k; for a 2-D batch, arrays of shape ``(n, k)``, rows with
    /// fewer hits padded with id -1 (None for string ids) and score NaN. Ids are int64
    /// (an object array when the collection uses string ids). Scores: squared distance
    /// for l2 (lower is better), similarity for dot and cosine (higher is better).
    ///
    /// ``as_of``: search the collection as it was at that time (milliseconds since the
    /// Unix epoch); needs a collection created with ``history=True``.
    #[pyo3(signature = (queries, k = 10, filter = None, params = None, with_payload = false, as_of = None))]
    #[allow(clippy::too_many_arguments)]
    fn search<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        k: usize,
        filter: Option<&Bound<'py, PyAny>>,
        params: Option<&Bound<'py, PyAny>>,
        with_payload: bool,
        as_of: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let queries = read_vectors(queries, "queries")?;
        let filter = filter.map(read_filter).transpose()?;
        let params = params.map(read_params).transpose()?.unwrap_or_default();
        let Vectors {
            data,
            rows,
            dim,
            single,
        } = queries;
        if single {
            let request = SearchRequest {
                vector: data,
                k,
                filter,
                with_payload,
                with_vector: false,
                params,
                as_of,
            };
            let hits = py
                .allow_threads(|| self.inner.search(&request))
                .map_err(to_py)?;
            return hits_to_py(py, &[hits], None, with_payload);
        }
        if rows == 0 {
            return Err(invalid("queries", "no queries (the array has 0 rows)"));
        }
        let requests: Vec<SearchRequest> = data
            .chunks_exact(dim)
            .map(|vector| SearchRequest {
                vector: vector.to_vec(),
                k,
                filter: filter.clone(),
                with_payload,
                with_vector: false,
                params,
                as_of,
            })
            .collect();
        let hits = py
            .allow_threads(|| self.inner.search_batch(&requests))
            .map_err(to_py)?;
        hits_to_py(py, &hits, Some(k), with_payload)
    }

    /// Points by id: a dict (``id``, ``vector``, ``payload``, ``encoder_version``,
    /// ``created_at``, ``updated_at``) or None per id; one id gives one result.
    fn get<'py>(&self, py: Python<'py>, ids: &Bound<'py, PyAny>) -> PyResult<PyObject> {
        let (ids, single) = read_ids(ids)?;
        let points = py.allow_threads(|| self.inner.get(&ids)).map_err(to_py)?;
        let list = PyList::empty(py);
        for point in &points {
            match point {
                Some(point) => list.append(point_to_py(py, point, true)?)?,
                None => list.append(py.None())?,
            }
        }
        if single {
            return Ok(list.get_item(0)?.unbind());
        }
        Ok(list.into_any().unbind())
    }

    /// Every version of point ``id``, oldest first: dicts like :meth:`get`'s plus
    /// ``valid_to`` (when the version was replaced or deleted, ms since the Unix epoch;
    /// None for the current one). Needs a collection created with ``history=True``.
    fn history<'py>(&self, py: Python<'py>, id: &Bound<'py, PyAny>) -> PyResult<PyObject> {
        let id = read_id(id)?;
        let versions = py
            .allow_threads(|| self.inner.history(&id))
            .map_err(to_py)?;
        let list = PyList::empty(py);
        for version in &versions {
            let dict = point_to_py(py, &version.point, true)?;
            dict.bind(py).set_item("valid_to", version.valid_to)?;
            list.append(dict)?;
        }
        Ok(list.into_any().unbind())
    }

    /// Runs one reasoning operation given as a dict, e.g. ``{"op": "analogy", "a": {"id":
    /// "man"}, "b": {"id": "king"}, "c": {"id": "woman"}, "k": 5}``; ops: ``arithmetic``,
    /// ``analogy`` (``method``: ``"add"`` or ``"3cosmul"``), ``blend`` (``lerp``,
    /// ``slerp``, ``centroid``), ``attention``, ``trajectory``. Returns a dict with
    /// ``vector`` (when the op produces one), ``hits`` and, for ``trajectory``,
    /// ``trajectory``. The helpers in :mod:`paradox.reasoning` build these dicts.
    fn reason<'py>(&self, py: Python<'py>, request: &Bound<'py, PyAny>) -> PyResult<PyObject> {
        let value = py_to_json(request, "request")?;
        let request: paradox_mind::api::ReasonRequest =
            serde_json::from_value(value).map_err(|e| invalid("request", e))?;
        let response = py
            .allow_threads(|| paradox_mind::api::reason(&self.inner, &request))
            .map_err(mind_to_py)?;
        let value = serde_json::to_value(&response)
            .map_err(|e| invalid("response", format!("cannot be represented: {e}")))?;
        json_to_py(py, &value)
    }

    /// Deletes points by id (``ids``) or every point matching ``filter``; returns how many
    /// existed.
    #[pyo3(signature = (ids = None, filter = None))]
    fn delete(
        &self,
        py: Python<'_>,
        ids: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let result = match (ids, filter) {
            (Some(ids), None) => {
                let (ids, _) = read_ids(ids)?;
                py.allow_threads(|| self.inner.delete(&ids))
            }
            (None, Some(filter)) => {
                let filter = read_filter(filter)?;
                py.allow_threads(|| self.inner.delete_by_filter(&filter))
            }
            _ => return Err(invalid("delete", "pass exactly one of `ids` or `filter`")),
        };
        Ok(result.map_err(to_py)?.count)
    }

    /// Number of points (matching ``filter`` when given).
    #[pyo3(signature = (filter = None))]
    fn count(&self, py: Python<'_>, filter: Option<&Bound<'_, PyAny>>) -> PyResult<usize> {
        let filter = filter.map(read_filter).transpose()?;
        py.allow_threads(|| self.inner.count(filter.as_ref()))
            .map_err(to_py)
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.count(py, None)
    }

    /// Iterates over points in id order (dicts as from :meth:`get`), fetching
    /// ``batch_size`` at a time; vectors only with ``with_vector``.
    #[pyo3(signature = (filter = None, batch_size = SCROLL_PAGE, with_vector = false))]
    fn scroll(
        &self,
        filter: Option<&Bound<'_, PyAny>>,
        batch_size: usize,
        with_vector: bool,
    ) -> PyResult<ScrollIter> {
        if batch_size == 0 {
            return Err(invalid("batch_size", "must be at least 1"));
        }
        Ok(ScrollIter {
            _engine: self.engine.clone(),
            collection: self.inner.clone(),
            request: Mutex::new(ScrollState {
                request: ScrollRequest {
                    after: None,
                    limit: batch_size,
                    filter: filter.map(read_filter).transpose()?,
                    with_vector,
                },
                page: Vec::new().into_iter(),
                done: false,
            }),
        })
    }

    /// Writes a snapshot of this collection into the file ``dest``; returns a dict
    /// (collection, points, files, bytes, applied_seq).
    fn snapshot<'py>(&self, py: Python<'py>, dest: PathBuf) -> PyResult<Bound<'py, PyDict>> {
        let name = self.inner.name().to_string();
        let info = py
            .allow_threads(|| self.engine.snapshot_collection(&name, &dest))
            .map_err(to_py)?;
        snapshot_dict(py, &info)
    }

    /// Sizes and settings: points, segments, bytes, index config.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let info = py.allow_threads(|| self.inner.info());
        let dict = PyDict::new(py);
        dict.set_item("name", &info.name)?;
        dict.set_item("dimension", info.dimension)?;
        dict.set_item("metric", &info.metric)?;
        let index = serde_json::to_value(info.index).map_err(|e| invalid("index", e))?;
        dict.set_item("index", crate::convert::json_to_py(py, &index)?)?;
        dict.set_item("points", info.points)?;
        dict.set_item("sealed_segments", info.sealed_segments)?;
        dict.set_item("sealed_rows", info.sealed_rows)?;
        dict.set_item("growing_rows", info.growing_rows)?;
        dict.set_item("deleted_rows", info.deleted_rows)?;
        dict.set_item("segment_bytes", info.segment_bytes)?;
        dict.set_item("wal_bytes", info.wal_bytes)?;
        dict.set_item("fsync", &info.fsync)?;
        Ok(dict)
    }

    /// Blocks until background index builds of sealed segments are done.
    fn wait_for_indexes(&self, py: Python<'_>) {
        py.allow_threads(|| self.inner.wait_for_indexes());
    }

    /// Makes every acknowledged write of this collection durable now.
    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        py.allow_threads(|| self.inner.sync()).map_err(to_py)
    }

    fn __repr__(&self) -> String {
        let config = self.inner.config();
        format!(
            "Collection(name={:?}, dim={}, metric={:?})",
            config.name,
            config.dimension,
            config.metric.as_str()
        )
    }
}

#[derive(Debug)]
struct ScrollState {
    request: ScrollRequest,
    page: std::vec::IntoIter<Point>,
    done: bool,
}

/// Iterator returned by :meth:`Collection.scroll`.
#[pyclass(name = "ScrollIterator", module = "paradox._native", frozen)]
#[derive(Debug)]
pub struct ScrollIter {
    // Like a collection handle, an iterator keeps the engine (and its lock) alive.
    _engine: Arc<Engine>,
    collection: Arc<Collection>,
    // A frozen pyclass must be Sync; the iterator's position lives behind a mutex.
    request: Mutex<ScrollState>,
}

#[pymethods]
impl ScrollIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyObject>> {
        let mut state = self
            .request
            .lock()
            .map_err(|_| invalid("scroll", "iterator poisoned by an earlier panic"))?;
        loop {
            if let Some(point) = state.page.next() {
                let with_vector = state.request.with_vector;
                return point_to_py(py, &point, with_vector).map(Some);
            }
            if state.done {
                return Ok(None);
            }
            let request = state.request.clone();
            let page = py
                .allow_threads(|| self.collection.scroll(&request))
                .map_err(to_py)?;
            state.done = page.next.is_none();
            state.request.after = page.next;
            state.page = page.points.into_iter();
        }
    }
}

/// Payloads for `n` points: None, or a sequence of `n` dicts.
pub(crate) fn read_payloads(obj: Option<&Bound<'_, PyAny>>, n: usize) -> PyResult<Vec<Payload>> {
    let Some(obj) = obj.filter(|p| !p.is_none()) else {
        return Ok(vec![Payload::new(); n]);
    };
    let mut payloads = Vec::with_capacity(n);
    for item in obj.try_iter()? {
        payloads.push(read_payload(&item?)?);
    }
    if payloads.len() != n {
        return Err(invalid(
            "payloads",
            format!("{n} ids but {} payloads", payloads.len()),
        ));
    }
    Ok(payloads)
}

/// Points to upsert from ids, a `(len(ids), dim)` array and optional payloads (None, or a
/// sequence of one dict per id).
pub(crate) fn read_new_points(
    ids: &Bound<'_, PyAny>,
    vectors: &Bound<'_, PyAny>,
    payloads: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<NewPoint>> {
    let (ids, _) = read_ids(ids)?;
    let vectors = read_vectors(vectors, "vectors")?;
    if vectors.rows != ids.len() {
        return Err(invalid(
            "vectors",
            format!("{} ids but {} vectors", ids.len(), vectors.rows),
        ));
    }
    let payloads = read_payloads(payloads, ids.len())?;
    Ok(ids
        .into_iter()
        .zip(payloads)
        .enumerate()
        .map(|(row, (id, payload))| {
            NewPoint::new(id, vectors.row(row).to_vec()).with_payload(payload)
        })
        .collect())
}

pub(crate) fn read_filter(obj: &Bound<'_, PyAny>) -> PyResult<Filter> {
    if let Ok(text) = obj.downcast::<PyString>() {
        return Filter::from_json_str(text.to_str()?).map_err(to_py);
    }
    Filter::from_json(&py_to_json(obj, "filter")?).map_err(to_py)
}

fn read_params(obj: &Bound<'_, PyAny>) -> PyResult<SearchParams> {
    if obj.is_none() {
        return Ok(SearchParams::default());
    }
    let json = py_to_json(obj, "params")?;
    serde_json::from_value(json).map_err(|e| {
        invalid(
            "params",
            format!("{e} (expected {{\"ef\": int, \"exact\": bool}})"),
        )
    })
}

fn point_to_py(py: Python<'_>, point: &Point, with_vector: bool) -> PyResult<PyObject> {
    let dict = PyDict::new(py);
    dict.set_item("id", id_to_py(py, &point.id)?)?;
    if with_vector {
        dict.set_item("vector", PyArray1::from_slice(py, &point.vector))?;
    }
    dict.set_item("payload", payload_to_py(py, &point.payload)?)?;
    dict.set_item("encoder_version", point.encoder_version.as_deref())?;
    dict.set_item("created_at", point.created_at)?;
    dict.set_item("updated_at", point.updated_at)?;
    Ok(dict.into_any().unbind())
}

/// Builds `(ids, scores[, payloads])`. `pad_to`: `Some(k)` for a batch (2-D, padded),
/// `None` for one query (1-D, unpadded).
fn hits_to_py<'py>(
    py: Python<'py>,
    hits: &[Vec<ScoredPoint>],
    pad_to: Option<usize>,
    with_payload: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let width = pad_to.unwrap_or_else(|| hits.first().map_or(0, Vec::len));
    let total = hits.len() * width;
    let numeric = hits
        .iter()
        .flatten()
        .all(|h| matches!(h.id, PointId::Num(n) if i64::try_from(n).is_ok()));
    let mut scores = vec![f32::NAN; total];
    for (row, row_hits) in hits.iter().enumerate() {
        for (col, hit) in row_hits.iter().enumerate() {
            scores[row * width + col] = hit.score;
        }
    }
    let ids: Bound<'py, PyAny> = if numeric {
        let mut ids = vec![-1i64; total];
        for (row, row_hits) in hits.iter().enumerate() {
            for (col, hit) in row_hits.iter().enumerate() {
                if let PointId::Num(n) = hit.id {
                    ids[row * width + col] = n as i64;
                }
            }
        }
        PyArray1::from_vec(py, ids).into_any()
    } else {
        let list = PyList::empty(py);
        for row_hits in hits {
            for col in 0..width {
                match row_hits.get(col) {
                    Some(hit) => list.append(id_to_py(py, &hit.id)?)?,
                    None => list.append(py.None())?,
                }
            }
        }
        let numpy = py.import("numpy")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("dtype", numpy.getattr("object_")?)?;
        numpy.call_method("array", (list,), Some(&kwargs))?
    };
    let scores = PyArray1::from_vec(py, scores).into_any();
    let shape_ids;
    let shape_scores;
    if pad_to.is_some() {
        shape_ids = ids.call_method1("reshape", ((hits.len(), width),))?;
        shape_scores = scores.call_method1("reshape", ((hits.len(), width),))?;
    } else {
        shape_ids = ids;
        shape_scores = scores;
    }
    if !with_payload {
        return Ok((shape_ids, shape_scores).into_pyobject(py)?.into_any());
    }
    let payload_rows = PyList::empty(py);
    for row_hits in hits {
        let row = PyList::empty(py);
        for col in 0..width {
            match row_hits.get(col).and_then(|h| h.payload.as_ref()) {
                Some(payload) => row.append(payload_to_py(py, payload)?)?,
                None => row.append(py.None())?,
            }
        }
        payload_rows.append(row)?;
    }
    let payloads: Bound<'py, PyAny> = if pad_to.is_some() {
        payload_rows.into_any()
    } else {
        payload_rows.get_item(0)?
    };
    Ok((shape_ids, shape_scores, payloads)
        .into_pyobject(py)?
        .into_any())
}
