//! Rows filed in the lists of trained IVF quantisers as they arrive, so a segment not
//! indexed yet (the growing segment, then the frozen and freshly sealed segment until its
//! background build lands) is searched like an `ivf_flat` index rather than scanned whole.
//!
//! The write path assigns each new row to its nearest centroid of the collection's last
//! trained quantisers (outside every lock; see `Collection::assign_lists`) and the row is
//! filed when applied. Rows with no assignment (written before any quantisers existed,
//! replayed from the log, or assigned with quantisers the segment does not use) go to an
//! unassigned list that every search scans exactly, so no row is ever out of reach.

use paradox_index::IvfIndex;
use std::sync::Arc;

/// A new batch's lists, computed with `quantisers` (one list per row, in batch order).
#[derive(Debug)]
pub(crate) struct Assigned {
    pub quantisers: Arc<IvfIndex>,
    pub lists: Vec<u32>,
}

/// A segment's rows by list. See the module doc.
#[derive(Debug, Clone)]
pub(crate) struct Partition {
    quantisers: Arc<IvfIndex>,
    lists: Vec<Vec<u32>>,
    unassigned: Vec<u32>,
}

impl Partition {
    /// A partition with `quantisers`' lists whose rows `0..rows` (already in the segment)
    /// are unassigned.
    pub fn new(quantisers: Arc<IvfIndex>, rows: u32) -> Self {
        Partition {
            lists: vec![Vec::new(); quantisers.nlist()],
            quantisers,
            unassigned: (0..rows).collect(),
        }
    }

    pub fn quantisers(&self) -> &Arc<IvfIndex> {
        &self.quantisers
    }

    /// Files `row` in list `list` when that was computed with this partition's quantisers,
    /// else with the unassigned rows.
    pub fn push(&mut self, row: u32, list: Option<(&Arc<IvfIndex>, u32)>) {
        match list {
            Some((quantisers, list))
                if Arc::ptr_eq(quantisers, &self.quantisers)
                    && (list as usize) < self.lists.len() =>
            {
                self.lists[list as usize].push(row)
            }
            _ => self.unassigned.push(row),
        }
    }

    pub fn nlist(&self) -> usize {
        self.lists.len()
    }

    /// Rows scanned by every search.
    pub fn unassigned(&self) -> usize {
        self.unassigned.len()
    }

    /// Each of the first `rows` rows' list, `u32::MAX` for an unassigned row (the form
    /// [`IvfIndex::build_like_listed`] takes).
    pub fn row_lists(&self, rows: usize) -> Vec<u32> {
        let mut out = vec![u32::MAX; rows];
        for (l, list) in self.lists.iter().enumerate() {
            for &row in list {
                if let Some(slot) = out.get_mut(row as usize) {
                    *slot = l as u32;
                }
            }
        }
        out
    }

    /// The rows a search visiting the `nprobe` lists nearest to `query` scores: those
    /// lists' rows and the unassigned ones.
    pub fn candidates(&self, query: &[f32], nprobe: usize) -> Vec<u32> {
        let lists = self.quantisers.nearest_lists(query, nprobe);
        let total = self.unassigned.len()
            + lists
                .iter()
                .map(|&l| self.lists[l as usize].len())
                .sum::<usize>();
        let mut rows = Vec::with_capacity(total);
        for &l in &lists {
            rows.extend_from_slice(&self.lists[l as usize]);
        }
        rows.extend_from_slice(&self.unassigned);
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paradox_index::{IvfCodec, IvfParams, VectorView};
    use paradox_kernels::Metric;

    #[test]
    fn rows_go_to_their_lists_or_stay_reachable() {
        // Two clusters far apart: two lists.
        let data: Vec<f32> = (0..64)
            .flat_map(|i| {
                let c = if i % 2 == 0 { 0.0 } else { 100.0 };
                [c + (i as f32) * 0.01, c]
            })
            .collect();
        let view = VectorView {
            data: &data,
            dim: 2,
            metric: Metric::L2,
        };
        let params = IvfParams {
            nlist: 2,
            codec: IvfCodec::Flat,
            ..Default::default()
        };
        let quantisers = Arc::new(IvfIndex::build(view, params).unwrap());
        let other = Arc::new(IvfIndex::build(view, params).unwrap());
        let mut partition = Partition::new(quantisers.clone(), 2);
        let lists = quantisers.assign_lists(&[0.5, 0.0, 100.5, 100.0]);
        assert_ne!(lists[0], lists[1]);
        partition.push(2, Some((&quantisers, lists[0])));
        partition.push(3, Some((&quantisers, lists[1])));
        // Assigned with other quantisers, or with none: scanned by every search.
        partition.push(4, Some((&other, lists[0])));
        partition.push(5, None);
        assert_eq!(partition.unassigned(), 4);
        let near_zero = partition.candidates(&[0.0, 0.0], 1);
        assert!(near_zero.contains(&2) && !near_zero.contains(&3));
        for row in [0, 1, 4, 5] {
            assert!(near_zero.contains(&row));
        }
        let both = partition.candidates(&[0.0, 0.0], 2);
        assert_eq!(both.len(), 6);
        let u = u32::MAX;
        assert_eq!(partition.row_lists(7), [u, u, lists[0], lists[1], u, u, u]);
    }
}
