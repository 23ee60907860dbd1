//! Living embeddings: the lifecycle of the vectors a collection stores.
//!
//! * [`encoder`]: the [`Encoder`] trait (text / bytes -> vector), encoder identities and
//!   a registry of versions; built in: [`hashing::HashingEncoder`] (deterministic
//!   n-gram hashing, no weights) and [`minilm::MiniLmEncoder`] (all-MiniLM-L6-v2 on
//!   `candle`, from local files only).
//! * [`adapter`]: maps between two encoder versions' spaces learned from paired samples
//!   (orthogonal Procrustes, affine least squares, low-rank affine, residual MLP).
//! * [`normalize`]: per-space centring and whitening.
//! * [`drift`]: reference window vs recent vectors (mean shift, MMD, classifier AUC).
//! * [`living`]: a collection seen through several vector spaces: adapter-backed search
//!   while a new space fills, prioritised background re-encoding, context overlays,
//!   drift reports.

pub mod adapter;
pub mod drift;
pub mod encoder;
pub mod error;
pub mod hashing;
pub mod linalg;
pub mod living;

pub mod minilm;
pub mod normalize;
pub mod spec;
pub mod tensor_file;

pub use error::{LifecycleError, Result};

/// A linear or non-linear map from one vector space into another: what an adapter or a
/// normaliser does to one vector.
pub trait VectorMap: Send + Sync {
    /// Dimension of the vectors it reads.
    fn dim_in(&self) -> usize;
    /// Dimension of the vectors it writes.
    fn dim_out(&self) -> usize;
    /// Maps `x` (`dim_in` values) into `out` (`dim_out` values).
    fn map_into(&self, x: &[f32], out: &mut [f32]);

    /// Maps one vector into a new buffer.
    fn map(&self, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; self.dim_out()];
        self.map_into(x, &mut out);
        out
    }

    /// Maps `n` row-major vectors (`n * dim_in` values) into `n * dim_out` values.
    fn map_batch(&self, xs: &[f32]) -> Vec<f32> {
        let (din, dout) = (self.dim_in(), self.dim_out());
        let n = xs.len() / din.max(1);
        let mut out = vec![0.0; n * dout];
        for (x, o) in xs.chunks_exact(din).zip(out.chunks_exact_mut(dout)) {
            self.map_into(x, o);
        }
        out
    }
}
