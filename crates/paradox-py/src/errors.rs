//! Engine errors as Python exceptions: caller mistakes become `ValueError` (or
//! `KeyError` for an unknown collection), everything else `paradox.ParadoxError`.

use paradox_engine::EngineError;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyKeyError, PyValueError};
use pyo3::PyErr;

create_exception!(
    paradox,
    ParadoxError,
    PyException,
    "An engine failure that is not the caller's fault: I/O, corrupt data, a locked directory."
);

/// Maps an engine error to the Python exception a caller would expect.
pub fn to_py(error: EngineError) -> PyErr {
    match &error {
        EngineError::UnknownCollection(_) => PyKeyError::new_err(error.to_string()),
        _ if error.is_user_error() => PyValueError::new_err(error.to_string()),
        _ => ParadoxError::new_err(error.to_string()),
    }
}

/// Maps a reasoning error: caller mistakes are `ValueError`, a missing point `KeyError`.
pub fn mind_to_py(error: paradox_mind::MindError) -> PyErr {
    match error {
        paradox_mind::MindError::Engine(e) => to_py(e),
        paradox_mind::MindError::PointNotFound { .. } => PyKeyError::new_err(error.to_string()),
        _ => PyValueError::new_err(error.to_string()),
    }
}

/// A `ValueError` naming the argument and what was expected.
pub fn invalid(argument: &str, message: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("invalid argument `{argument}`: {message}"))
}
