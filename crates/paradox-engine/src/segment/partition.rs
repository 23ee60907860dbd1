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
use parking_lot::RwLock;
use std::sync::Arc;

/// A new batch's lists, computed with `quantisers` (one list per row, in batch order).
#[derive(Debug)]
pub(crate) struct Assigned {
    pub quantisers: Arc<IvfIndex>,
    pub lists: Vec<u32>,
}

/// A segment's rows by list. See the module doc.
///
/// The growing segment files rows while searches read the lists (rows are appended under
/// the collection state's read lock, see `GrowingSegment::append`), so the lists sit
/// behind their own lock, held for a copy or a batch's pushes only.
#[derive(Debug)]
pub(crate) struct Partition {
    quantisers: Arc<IvfIndex>,
    nlist: usize,
    rows: RwLock<Lists>,
}

#[derive(Debug)]
struct Lists {
    lists: Vec<Vec<u32>>,
    unassigned: Vec<u32>,
}

impl Partition {
    /// A partition with `quantisers`' lists whose rows `0..rows` (already in the segment)
    /// are unassigned.
    pub fn new(quantisers: Arc<IvfIndex>, rows: u32) -> Self {
        let nlist = quantisers.nlist();
        Partition {
            rows: RwLock::new(Lists {
                lists: vec![Vec::new(); nlist],
                unassigned: (0..rows).collect(),
            }),
            nlist,
            quantisers,
        }
    }

    pub fn quantisers(&self) -> &Arc<IvfIndex> {
        &self.quantisers
    }

    /// Files `row` in list `list` when that was computed with this partition's quantisers,
    /// else with the unassigned rows.
    #[cfg(test)]
    pub fn push(&self, row: u32, list: Option<(&Arc<IvfIndex>, u32)>) {
        match list {
            Some((quantisers, list)) => self.push_rows(row, 1, Some((quantisers, &[list]))),
            None => self.push_rows(row, 1, None),
        }
    }

    /// Files rows `first..first + n`: row `first + i` in list `lists[i]` when the lists
    /// were computed with this partition's quantisers, else with the unassigned rows.
    pub fn push_rows(&self, first: u32, n: usize, lists: Option<(&Arc<IvfIndex>, &[u32])>) {
        let mut rows = self.rows.write();
        let Lists {
            lists: by_list,
            unassigned,
        } = &mut *rows;
        let ours = lists.filter(|(q, l)| Arc::ptr_eq(q, &self.quantisers) && l.len() == n);
        for i in 0..n {
            let row = first + i as u32;
            match ours.map(|(_, l)| l[i] as usize) {
                Some(list) if list < by_list.len() => by_list[list].push(row),
                _ => unassigned.push(row),
            }
        }
    }

    pub fn nlist(&self) -> usize {
        self.nlist
    }

    /// Rows scanned by every search.
    pub fn unassigned(&self) -> usize {
        self.rows.read().unassigned.len()
    }

    /// Each of the first `rows` rows' list, `u32::MAX` for an unassigned row (the form
    /// [`IvfIndex::build_like_listed`] takes).
    pub fn row_lists(&self, rows: usize) -> Vec<u32> {
        let mut out = vec![u32::MAX; rows];
        for (l, list) in self.rows.read().lists.iter().enumerate() {
            for &row in list {
                if let Some(slot) = out.get_mut(row as usize) {
                    *slot = l as u32;
                }
            }
        }
        out
    }

    /// The rows below `limit` a search visiting the `nprobe` lists nearest to `query`
    /// scores: those lists' rows and the unassigned ones. (Rows are filed just before the
    /// growing segment publishes them, so a search bounds them by the rows it sees.)
    pub fn candidates(&self, query: &[f32], nprobe: usize, limit: usize) -> Vec<u32> {
        let lists = self.quantisers.nearest_lists(query, nprobe);
        let filed = self.rows.read();
        let total = filed.unassigned.len()
            + lists
                .iter()
                .map(|&l| filed.lists[l as usize].len())
                .sum::<usize>();
        let mut rows = Vec::with_capacity(total);
        // Each list (and the unassigned rows) is in row order: rows past `limit` end it.
        let mut take = |list: &[u32]| {
            let end = list.partition_point(|&row| (row as usize) < limit);
            rows.extend_from_slice(&list[..end]);
        };
        for &l in &lists {
            take(&filed.lists[l as usize]);
        }
        take(&filed.unassigned);
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
        let partition = Partition::new(quantisers.clone(), 2);
        let lists = quantisers.assign_lists(&[0.5, 0.0, 100.5, 100.0]);
        assert_ne!(lists[0], lists[1]);
        partition.push(2, Some((&quantisers, lists[0])));
        partition.push(3, Some((&quantisers, lists[1])));
        // Assigned with other quantisers, or with none: scanned by every search.
        partition.push(4, Some((&other, lists[0])));
        partition.push(5, None);
        assert_eq!(partition.unassigned(), 4);
        let near_zero = partition.candidates(&[0.0, 0.0], 1, usize::MAX);
        assert!(near_zero.contains(&2) && !near_zero.contains(&3));
        for row in [0, 1, 4, 5] {
            assert!(near_zero.contains(&row));
        }
        let both = partition.candidates(&[0.0, 0.0], 2, usize::MAX);
        assert_eq!(both.len(), 6);
        // Rows past the limit (filed, not yet published) are left out.
        let mut seen = partition.candidates(&[0.0, 0.0], 2, 3);
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 2]);
        let u = u32::MAX;
        assert_eq!(partition.row_lists(7), [u, u, lists[0], lists[1], u, u, u]);
    }
}
