//! Python values in and out: NumPy arrays of vectors (read in place when they are
//! contiguous float32), point ids, and JSON payloads/filters.

use crate::errors::invalid;
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use paradox_engine::{Payload, PointId};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use pyo3::IntoPyObjectExt;
use serde_json::{Map, Number, Value};

/// Deepest nesting accepted in a payload or filter converted from Python.
const MAX_JSON_DEPTH: usize = 64;

/// Row-major vectors read from a 1-D (one vector) or 2-D (one per row) array.
#[derive(Debug)]
pub struct Vectors {
    /// `rows × dim` values.
    pub data: Vec<f32>,
    pub rows: usize,
    pub dim: usize,
    /// The input was a single 1-D vector.
    pub single: bool,
}

impl Vectors {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Reads vectors from `obj`. A C-contiguous float32 NumPy array is read directly from
/// its buffer (the engine copies each vector once into its own request); anything else
/// (float64, integers, lists, strided views) is converted by NumPy first. Shapes other
/// than 1-D/2-D, non-numeric dtypes and ragged lists are a `ValueError` naming `what`.
pub fn read_vectors(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vectors> {
    if let Ok(array) = obj.downcast::<PyArrayDyn<f32>>() {
        if array.is_c_contiguous() {
            let view = array.readonly();
            return from_slice(
                view.as_slice().map_err(|e| invalid(what, e))?,
                view.shape(),
                what,
            );
        }
    }
    let py = obj.py();
    let numpy = py.import("numpy")?;
    let array = numpy
        .call_method1("asarray", (obj,))
        .map_err(|e| invalid(what, format!("expected a 1-D or 2-D array of numbers: {e}")))?;
    let kind: char = array.getattr("dtype")?.getattr("kind")?.extract()?;
    if !matches!(kind, 'f' | 'i' | 'u' | 'b') {
        let dtype = array.getattr("dtype")?.str()?.to_string();
        return Err(invalid(
            what,
            format!("expected real numbers (float32, float64 or integers), got dtype {dtype}"),
        ));
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", numpy.getattr("float32")?)?;
    let converted = numpy.call_method("ascontiguousarray", (array,), Some(&kwargs))?;
    let array = converted.downcast::<PyArrayDyn<f32>>()?;
    let view = array.readonly();
    from_slice(
        view.as_slice().map_err(|e| invalid(what, e))?,
        view.shape(),
        what,
    )
}

fn from_slice(values: &[f32], shape: &[usize], what: &str) -> PyResult<Vectors> {
    let (rows, dim, single) = match *shape {
        [dim] => (1, dim, true),
        [rows, dim] => (rows, dim, false),
        _ => {
            return Err(invalid(
                what,
                format!(
                    "expected a 1-D or 2-D array, got {} dimensions {shape:?}",
                    shape.len()
                ),
            ))
        }
    };
    if dim == 0 {
        return Err(invalid(what, "vectors must have at least one component"));
    }
    if let Some(position) = values.iter().position(|v| !v.is_finite()) {
        return Err(invalid(
            what,
            format!(
                "row {}, position {} is {} (NaN and infinities are not allowed)",
                position / dim,
                position % dim,
                values[position]
            ),
        ));
    }
    Ok(Vectors {
        data: values.to_vec(),
        rows,
        dim,
        single,
    })
}

/// One point id: a non-negative integer or a string.
pub fn read_id(obj: &Bound<'_, PyAny>) -> PyResult<PointId> {
    if let Ok(text) = obj.downcast::<PyString>() {
        return Ok(PointId::Str(text.to_str()?.to_string()));
    }
    if obj.is_instance_of::<PyBool>() {
        return Err(invalid("ids", "booleans are not ids"));
    }
    // Python ints and NumPy integer scalars.
    let index = obj.call_method0("__index__").map_err(|_| {
        invalid(
            "ids",
            format!("expected an int or str id, got {}", type_name(obj)),
        )
    })?;
    index.extract::<u64>().map(PointId::Num).map_err(|_| {
        invalid(
            "ids",
            format!("ids must be between 0 and 2**64-1, got {index}"),
        )
    })
}

/// A sequence of ids (list, tuple, NumPy integer array), or one id (int or str).
/// Returns the ids and whether a single id was given.
pub fn read_ids(obj: &Bound<'_, PyAny>) -> PyResult<(Vec<PointId>, bool)> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyInt>() {
        return Ok((vec![read_id(obj)?], true));
    }
    if let Ok(array) = obj.downcast::<PyArrayDyn<i64>>() {
        let view = array.readonly();
        if let Ok(values) = view.as_slice() {
            if view.ndim() == 1 {
                return values
                    .iter()
                    .map(|&v| {
                        u64::try_from(v).map(PointId::Num).map_err(|_| {
                            invalid("ids", format!("ids must be non-negative, got {v}"))
                        })
                    })
                    .collect::<PyResult<Vec<_>>>()
                    .map(|ids| (ids, false));
            }
        }
    }
    let iter = obj.try_iter().map_err(|_| {
        invalid(
            "ids",
            format!("expected a sequence of ids, got {}", type_name(obj)),
        )
    })?;
    let ids = iter
        .map(|item| read_id(&item?))
        .collect::<PyResult<Vec<_>>>()?;
    Ok((ids, false))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A point id as a Python int or str.
pub fn id_to_py(py: Python<'_>, id: &PointId) -> PyResult<PyObject> {
    match id {
        PointId::Num(n) => n.into_py_any(py),
        PointId::Str(s) => s.into_py_any(py),
    }
}

/// Converts a Python value (dict, list, tuple, str, int, float, bool, None, NumPy
/// scalars and arrays) into JSON.
pub fn py_to_json(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    to_json(obj, what, 0)
}

fn to_json(obj: &Bound<'_, PyAny>, what: &str, depth: usize) -> PyResult<Value> {
    if depth > MAX_JSON_DEPTH {
        return Err(invalid(
            what,
            format!("nested deeper than {MAX_JSON_DEPTH} levels"),
        ));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.downcast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(s) = obj.downcast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_string()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(n) = obj.extract::<i64>() {
            return Ok(Value::from(n));
        }
        if let Ok(n) = obj.extract::<u64>() {
            return Ok(Value::from(n));
        }
        return Err(invalid(
            what,
            format!("integer {obj} does not fit in 64 bits"),
        ));
    }
    if let Ok(f) = obj.downcast::<PyFloat>() {
        let value = f.value();
        return Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| invalid(what, format!("{value} is not a JSON number")));
    }
    if let Ok(dict) = obj.downcast::<PyDict>() {
        let mut map = Map::with_capacity(dict.len());
        for (key, value) in dict.iter() {
            let key = key.downcast::<PyString>().map_err(|_| {
                invalid(
                    what,
                    format!("object keys must be strings, got {}", type_name(&key)),
                )
            })?;
            map.insert(key.to_str()?.to_string(), to_json(&value, what, depth + 1)?);
        }
        return Ok(Value::Object(map));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let items = obj
            .try_iter()?
            .map(|item| to_json(&item?, what, depth + 1))
            .collect::<PyResult<Vec<_>>>()?;
        return Ok(Value::Array(items));
    }
    // NumPy scalars and arrays: `tolist()` gives plain Python values.
    if obj.hasattr("tolist")? {
        return to_json(&obj.call_method0("tolist")?, what, depth + 1);
    }
    Err(invalid(
        what,
        format!(
            "{} is not JSON-serialisable (use dict, list, str, int, float, bool, None)",
            type_name(obj)
        ),
    ))
}

/// A payload: a dict, or None for an empty one.
pub fn read_payload(obj: &Bound<'_, PyAny>) -> PyResult<Payload> {
    match py_to_json(obj, "payloads")? {
        Value::Null => Ok(Payload::new()),
        Value::Object(map) => Ok(map),
        other => Err(PyValueError::new_err(format!(
            "invalid argument `payloads`: each payload must be a dict or None, got {other}"
        ))),
    }
}

/// JSON into plain Python values.
pub fn json_to_py(py: Python<'_>, value: &Value) -> PyResult<PyObject> {
    Ok(match value {
        Value::Null => py.None(),
        Value::Bool(b) => b.into_py_any(py)?,
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_py_any(py)?
            } else if let Some(u) = n.as_u64() {
                u.into_py_any(py)?
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_py_any(py)?
            }
        }
        Value::String(s) => s.into_py_any(py)?,
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any().unbind()
        }
        Value::Object(map) => payload_to_py(py, map)?,
    })
}

/// A payload as a Python dict.
pub fn payload_to_py(py: Python<'_>, map: &Payload) -> PyResult<PyObject> {
    let dict = PyDict::new(py);
    for (key, value) in map {
        dict.set_item(key, json_to_py(py, value)?)?;
    }
    Ok(dict.into_any().unbind())
}
