//! Which sealed segments the background worker rewrites, and when. Pure functions over
//! segment sizes, so the policy is tested alone.
//!
//! * **Compaction**: a segment whose reclaimable rows (deleted rows the persisted deletes
//!   file marks, which is what a rewrite can drop; rows deleted since the last seal are
//!   carried to the new segment) exceed `deleted_fraction` of its rows is rewritten alone,
//!   without them (the most deleted first). Counting only those keeps a rewrite from
//!   being due again at once.
//! * **Tiered merge**: segments are grouped in size tiers by live bytes (bytes × live
//!   fraction). Tier 0 holds segments under `base · factor / 2` (a freshly sealed growing
//!   segment is about `base` = `seal_bytes`); tier `t` spans `[base · factor^t / 2,
//!   base · factor^(t+1) / 2)`, so merging `factor` segments of one tier gives one of the
//!   next. When a tier holds at least `factor` segments, its `factor` smallest are merged.
//!   Segments of `max_merge_bytes` live bytes or more never take part, nor a merge whose
//!   result would exceed that. Each row is thus rewritten about `log_factor(n / base)`
//!   times, and a collection holds at most `factor − 1` segments per tier plus the large
//!   ones.
//!
//! Jobs come out in the order to run them: compactions, then merges from the lowest tier.

/// Sizes of one sealed segment, as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SegmentSizes {
    pub id: u64,
    pub rows: usize,
    /// Rows deleted now.
    pub deleted: usize,
    /// Rows deleted as of the manifest's `applied_seq`: those a rewrite drops.
    pub reclaimable: usize,
    /// Bytes of the segment (its file).
    pub bytes: u64,
}

impl SegmentSizes {
    fn live_bytes(&self) -> u64 {
        if self.rows == 0 {
            return 0;
        }
        (self.bytes as f64 * (self.rows - self.deleted) as f64 / self.rows as f64) as u64
    }

    fn deleted_fraction(&self) -> f64 {
        if self.rows == 0 {
            0.0
        } else {
            self.reclaimable as f64 / self.rows as f64
        }
    }
}

/// The policy's settings (from `EngineOptions`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MergePolicy {
    /// Size of a freshly sealed segment: `seal_bytes`.
    pub base_bytes: u64,
    /// Segments merged at once; below 2, no merging.
    pub factor: usize,
    pub max_merge_bytes: u64,
    pub deleted_fraction: f64,
}

/// One rewrite: the segments (by id) that become one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Job {
    /// One segment with too many deleted rows.
    Compact(u64),
    /// Segments of one tier.
    Merge(Vec<u64>),
}

impl Job {
    pub fn sources(&self) -> Vec<u64> {
        match self {
            Job::Compact(id) => vec![*id],
            Job::Merge(ids) => ids.clone(),
        }
    }
}

impl MergePolicy {
    /// The tier of a segment of `live_bytes`.
    fn tier(&self, live_bytes: u64) -> u32 {
        let factor = self.factor.max(2) as u64;
        let mut bound = self.base_bytes.max(1).saturating_mul(factor) / 2;
        let mut tier = 0;
        while live_bytes >= bound && bound < u64::MAX {
            tier += 1;
            bound = bound.saturating_mul(factor);
        }
        tier
    }

    /// Every job due now, in the order to run them (see the module doc).
    pub fn plan(&self, segments: &[SegmentSizes]) -> Vec<Job> {
        let mut compactions: Vec<&SegmentSizes> = segments
            .iter()
            .filter(|s| s.rows > 0 && s.deleted_fraction() > self.deleted_fraction)
            .collect();
        compactions.sort_by(|a, b| b.deleted_fraction().total_cmp(&a.deleted_fraction()));
        let mut jobs: Vec<Job> = compactions.iter().map(|s| Job::Compact(s.id)).collect();
        if self.factor < 2 {
            return jobs;
        }
        let mut candidates: Vec<(u32, u64, u64)> = segments
            .iter()
            .filter(|s| !compactions.iter().any(|c| c.id == s.id))
            .map(|s| (s.live_bytes(), s.id))
            .filter(|&(live, _)| live < self.max_merge_bytes)
            .map(|(live, id)| (self.tier(live), live, id))
            .collect();
        candidates.sort_unstable();
        for group in candidates.chunk_by(|a, b| a.0 == b.0) {
            for merge in group.chunks_exact(self.factor) {
                let total: u64 = merge.iter().map(|&(_, live, _)| live).sum();
                if total <= self.max_merge_bytes {
                    jobs.push(Job::Merge(merge.iter().map(|&(_, _, id)| id).collect()));
                }
            }
        }
        jobs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn policy() -> MergePolicy {
        MergePolicy {
            base_bytes: 32 * MIB,
            factor: 4,
            max_merge_bytes: 1024 * MIB,
            deleted_fraction: 0.2,
        }
    }

    fn segment(id: u64, mib: u64, rows: usize, deleted: usize) -> SegmentSizes {
        SegmentSizes {
            id,
            rows,
            deleted,
            reclaimable: deleted,
            bytes: mib * MIB,
        }
    }

    #[test]
    fn tiers_start_at_half_a_merge_of_fresh_segments() {
        let p = policy();
        // A fresh seal (~32 MiB) is tier 0; four merged (~128 MiB) tier 1; sixteen, tier 2.
        assert_eq!(p.tier(0), 0);
        assert_eq!(p.tier(32 * MIB), 0);
        assert_eq!(p.tier(63 * MIB), 0);
        assert_eq!(p.tier(64 * MIB), 1);
        assert_eq!(p.tier(128 * MIB), 1);
        assert_eq!(p.tier(255 * MIB), 1);
        assert_eq!(p.tier(512 * MIB), 2);
        assert_eq!(p.tier(u64::MAX), p.tier(u64::MAX - 1));
    }

    #[test]
    fn three_small_segments_wait_four_merge() {
        let p = policy();
        let mut segments: Vec<_> = (1..=3).map(|id| segment(id, 30, 1000, 0)).collect();
        assert_eq!(p.plan(&segments), vec![]);
        segments.push(segment(4, 33, 1000, 0));
        assert_eq!(p.plan(&segments), vec![Job::Merge(vec![1, 2, 3, 4])]);
        // A large segment of another tier does not join them.
        segments.push(segment(5, 600, 1000, 0));
        assert_eq!(p.plan(&segments), vec![Job::Merge(vec![1, 2, 3, 4])]);
    }

    #[test]
    fn the_smallest_of_a_crowded_tier_merge_first_and_lower_tiers_first() {
        let p = policy();
        let mut segments: Vec<_> = [(1, 20), (2, 10), (3, 30), (4, 25), (5, 5)]
            .iter()
            .map(|&(id, mib)| segment(id, mib, 1000, 0))
            .collect();
        segments.extend((10..14).map(|id| segment(id, 100, 1000, 0)));
        assert_eq!(
            p.plan(&segments),
            vec![
                Job::Merge(vec![5, 2, 1, 4]),
                Job::Merge(vec![10, 11, 12, 13])
            ]
        );
    }

    #[test]
    fn deleted_fraction_triggers_a_compaction_most_deleted_first() {
        let p = policy();
        let segments = vec![
            segment(1, 500, 1000, 200), // exactly 20%: not yet
            segment(2, 500, 1000, 201),
            segment(3, 500, 1000, 900),
            segment(4, 10, 0, 0), // empty: nothing to reclaim
        ];
        assert_eq!(p.plan(&segments), vec![Job::Compact(3), Job::Compact(2)]);
        // A compacted segment is not also merged, and deleted rows do not count as size.
        let mut small: Vec<_> = (10..13).map(|id| segment(id, 30, 1000, 0)).collect();
        small.push(segment(13, 600, 1000, 990)); // 6 MiB live, but compacted alone
        assert_eq!(p.plan(&small), vec![Job::Compact(13)]);
    }

    #[test]
    fn large_segments_and_oversized_merges_are_left_alone() {
        let p = MergePolicy {
            max_merge_bytes: 100 * MIB,
            ..policy()
        };
        // Four tier-0 segments whose sum passes the bound: no merge.
        let segments: Vec<_> = (1..=4).map(|id| segment(id, 30, 1000, 0)).collect();
        assert_eq!(p.plan(&segments), vec![]);
        // Segments at the bound never merge, whatever their number.
        let big: Vec<_> = (1..=8).map(|id| segment(id, 100, 1000, 0)).collect();
        assert_eq!(p.plan(&big), vec![]);
        // Merging off: only compactions.
        let off = MergePolicy {
            factor: 1,
            ..policy()
        };
        let mut segments: Vec<_> = (1..=8).map(|id| segment(id, 1, 1000, 0)).collect();
        assert_eq!(off.plan(&segments), vec![]);
        segments.push(segment(9, 1, 1000, 500));
        assert_eq!(off.plan(&segments), vec![Job::Compact(9)]);
    }

    #[test]
    fn only_persisted_deletions_make_a_compaction_due() {
        let p = policy();
        // 60% deleted, but only 10% persisted yet: a rewrite would carry the rest.
        let s = SegmentSizes {
            reclaimable: 100,
            ..segment(1, 500, 1000, 600)
        };
        assert_eq!(p.plan(&[s]), vec![]);
        assert_eq!(
            p.plan(&[SegmentSizes {
                reclaimable: 201,
                ..s
            }]),
            vec![Job::Compact(1)]
        );
    }
}
