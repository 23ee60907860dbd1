//! Python bindings for the Paradox engine: the native module `paradox._native` of the
//! `paradoxlf` package (imported as `paradox`).
//!
//! This crate only translates: Python values in (NumPy arrays read in place when they
//! are C-contiguous float32, ids, dict payloads and filters), engine calls with the GIL
//! released, NumPy arrays and dicts out, engine errors as `ValueError` / `KeyError` /
//! `paradox.ParadoxError`. The pure-Python part of the package (`python/paradox`) builds
//! the paradoxlf 0.17 compatibility layer on top. It never holds engine logic, nor server
//! logic: `serve` runs `paradox-server` as it is, on its own runtime.

mod collection;
mod convert;
mod engine;
mod errors;
mod evolution;
mod living;
mod server;
mod simulation;

use pyo3::prelude::*;

/// The native core of `paradox`: `Engine`, `Collection`, `ParadoxError`, `serve` and its
/// `Server`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::PyEngine>()?;
    m.add_class::<collection::PyCollection>()?;
    m.add_class::<collection::ScrollIter>()?;
    m.add_class::<server::PyServer>()?;
    m.add_function(wrap_pyfunction!(server::serve, m)?)?;
    evolution::register(m)?;
    m.add_class::<simulation::PySimulation>()?;
    m.add_class::<living::PyLiving>()?;
    m.add_function(wrap_pyfunction!(living::_pause_living_migrations, m)?)?;
    m.add("ParadoxError", m.py().get_type::<errors::ParadoxError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
