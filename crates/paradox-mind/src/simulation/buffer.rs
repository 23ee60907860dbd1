//! The scratch buffer a simulation steps: vectors in one contiguous row-major `f32`
//! array (what the hot loop wants), with the points' ids and metadata kept aside so
//! results can be written back as upserts without losing payloads.

use crate::error::{MindError, Result};
use paradox_engine::{Collection, Filter, NewPoint, Point, PointId, ScrollRequest, MAX_BATCH};

/// Vectors being simulated.
#[derive(Debug, Clone)]
pub struct VectorBuffer {
    dim: usize,
    data: Vec<f32>,
    /// Where each row came from (`None` for rows made up by the caller).
    points: Vec<Option<Point>>,
}

impl VectorBuffer {
    /// `rows × dim` vectors from a flat row-major array, not tied to any collection.
    pub fn from_flat(dim: usize, data: Vec<f32>) -> Result<Self> {
        if dim == 0 || !data.len().is_multiple_of(dim) {
            return Err(MindError::invalid(
                "data",
                format!("length {} is not a multiple of dimension {dim}", data.len()),
            ));
        }
        let rows = data.len() / dim;
        Ok(VectorBuffer {
            dim,
            data,
            points: vec![None; rows],
        })
    }

    /// Every point of `collection` matching `filter`, read by scrolling (vectors and
    /// payloads included).
    pub fn from_collection(collection: &Collection, filter: Option<Filter>) -> Result<Self> {
        let dim = collection.config().dimension;
        let mut data = Vec::new();
        let mut points = Vec::new();
        let mut after = None;
        loop {
            let page = collection.scroll(&ScrollRequest {
                after,
                limit: 10_000,
                filter: filter.clone(),
                with_vector: true,
            })?;
            for mut point in page.points {
                data.extend_from_slice(&point.vector);
                point.vector = Vec::new();
                points.push(Some(point));
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(VectorBuffer { dim, data, points })
    }

    /// Vector length.
    pub fn dimension(&self) -> usize {
        self.dim
    }

    /// Number of vectors.
    pub fn rows(&self) -> usize {
        self.points.len()
    }

    /// All vectors, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// All vectors, row-major, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The id of row `i`, when it came from a collection.
    pub fn id(&self, i: usize) -> Option<&PointId> {
        self.points[i].as_ref().map(|p| &p.id)
    }

    /// Upserts every row that came from a collection back into `collection` (same id,
    /// payload, encoder version and provenance; the new vector), in batches. Returns the
    /// number of points written.
    pub fn write_back(&self, collection: &Collection) -> Result<usize> {
        let mut batch = Vec::new();
        let mut written = 0;
        for (i, point) in self.points.iter().enumerate() {
            let Some(point) = point else { continue };
            batch.push(NewPoint {
                id: point.id.clone(),
                vector: self.row(i).to_vec(),
                payload: point.payload.clone(),
                encoder_version: point.encoder_version.clone(),
                provenance: point.provenance.clone(),
            });
            if batch.len() == MAX_BATCH.min(10_000) {
                written += batch.len();
                collection.upsert(std::mem::take(&mut batch))?;
            }
        }
        if !batch.is_empty() {
            written += batch.len();
            collection.upsert(batch)?;
        }
        Ok(written)
    }
}
