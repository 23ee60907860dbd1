//! The live-id map of a collection: each live point's id to where its current row is.
//!
//! One entry per live point, so its size is RAM per point at every scale. Locations are
//! packed into 8 bytes. Numeric ids (the common case) live in a sorted array of
//! `(u64, location)`, 16 bytes an id, with an ordered map for ids added since it was
//! built (see [`NumMap`]); a `BTreeMap<PointId, Location>` costs 37 to 70. String ids
//! are keyed by a boxed `str` in an ordered map.
//!
//! Order is the ids' order (numbers first, numerically, then strings bytewise), so a scan
//! of the map is the scroll order.

use super::state::Location;
use crate::point::PointId;
use std::collections::BTreeMap;
use std::ops::Bound;

/// A [`Location`] in 8 bytes: the kind in the top two bits, the sealed segment's index
/// in the next 30, the row in the low 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed(u64);

const KIND_SHIFT: u32 = 62;
const SEGMENT_SHIFT: u32 = 32;
const SEGMENT_MASK: u64 = (1 << (KIND_SHIFT - SEGMENT_SHIFT)) - 1;
const SEALED: u64 = 0;
const GROWING: u64 = 1;
const HISTORY: u64 = 2;

impl From<Location> for Packed {
    fn from(location: Location) -> Packed {
        Packed(match location {
            Location::Sealed { segment, row } => {
                // A collection never holds 2^30 sealed segments: merges keep them few,
                // and each is an open file.
                debug_assert!(
                    u64::from(segment) <= SEGMENT_MASK,
                    "segment index {segment}"
                );
                (SEALED << KIND_SHIFT)
                    | ((u64::from(segment) & SEGMENT_MASK) << SEGMENT_SHIFT)
                    | u64::from(row)
            }
            Location::Growing { row } => (GROWING << KIND_SHIFT) | u64::from(row),
            Location::History { row } => (HISTORY << KIND_SHIFT) | u64::from(row),
        })
    }
}

impl From<Packed> for Location {
    fn from(packed: Packed) -> Location {
        let row = packed.0 as u32;
        match packed.0 >> KIND_SHIFT {
            SEALED => Location::Sealed {
                segment: ((packed.0 >> SEGMENT_SHIFT) & SEGMENT_MASK) as u32,
                row,
            },
            GROWING => Location::Growing { row },
            _ => Location::History { row },
        }
    }
}

/// A numeric id's slot in [`NumMap::base`] whose id was removed.
const VACANT: Packed = Packed(u64::MAX);

/// Ids added since the last fold beyond which the numeric ids are folded into one sorted
/// array again (and at least as many as the array holds, so folding is amortised O(1)).
const FOLD_MIN: usize = if cfg!(test) { 8 } else { 4096 };

/// Numeric ids: a sorted array (16 bytes an id, built in one pass, updated in place; a
/// removed id leaves a vacant slot) and an ordered map of ids added since, folded into
/// the array once it outgrows it. An id is in one of the two, never both.
#[derive(Debug, Default)]
struct NumMap {
    base: Vec<(u64, Packed)>,
    /// Slots of `base` not vacant.
    base_live: usize,
    added: BTreeMap<u64, Packed>,
}

impl NumMap {
    fn from_entries(mut entries: Vec<(u64, Packed)>) -> NumMap {
        // Sealed segments hold ids mostly written in ascending order: usually no sort.
        if !entries.is_sorted_by(|a, b| a.0 < b.0) {
            // Of equal ids the last wins: reversed, a stable sort puts it first of its run.
            entries.reverse();
            entries.sort_by_key(|e| e.0);
            entries.dedup_by_key(|e| e.0);
        }
        entries.shrink_to_fit();
        NumMap {
            base_live: entries.len(),
            base: entries,
            added: BTreeMap::new(),
        }
    }

    fn slot(&self, n: u64) -> Option<usize> {
        self.base.binary_search_by_key(&n, |e| e.0).ok()
    }

    fn len(&self) -> usize {
        self.base_live + self.added.len()
    }

    fn get(&self, n: u64) -> Option<Packed> {
        match self.slot(n) {
            Some(i) => Some(self.base[i].1).filter(|&p| p != VACANT),
            None => self.added.get(&n).copied(),
        }
    }

    fn insert(&mut self, n: u64, packed: Packed) -> Option<Packed> {
        let Some(i) = self.slot(n) else {
            let old = self.added.insert(n, packed);
            if self.added.len() > self.base.len().max(FOLD_MIN) {
                self.fold();
            }
            return old;
        };
        let old = std::mem::replace(&mut self.base[i].1, packed);
        if old == VACANT {
            self.base_live += 1;
            None
        } else {
            Some(old)
        }
    }

    fn slot_mut(&mut self, n: u64) -> Option<&mut Packed> {
        match self.slot(n) {
            Some(i) => Some(&mut self.base[i].1).filter(|p| **p != VACANT),
            None => self.added.get_mut(&n),
        }
    }

    fn remove(&mut self, n: u64) -> Option<Packed> {
        match self.slot(n) {
            Some(i) => {
                let old = std::mem::replace(&mut self.base[i].1, VACANT);
                (old != VACANT).then(|| {
                    self.base_live -= 1;
                    old
                })
            }
            None => self.added.remove(&n),
        }
    }

    /// One sorted array again: the live slots and the added ids, merged.
    fn fold(&mut self) {
        let base = std::mem::take(&mut self.base);
        let added = std::mem::take(&mut self.added);
        let mut merged = Vec::with_capacity(self.base_live + added.len());
        merged.extend(merge_ascending(
            base.into_iter().filter(|e| e.1 != VACANT),
            added.into_iter(),
        ));
        self.base_live = merged.len();
        self.base = merged;
    }

    /// The live entries after `after` (all for `None`), ascending.
    fn after(&self, after: Option<u64>) -> impl Iterator<Item = (u64, Packed)> + '_ {
        let start = after.map_or(0, |a| self.base.partition_point(|e| e.0 <= a));
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        merge_ascending(
            self.base[start..].iter().copied().filter(|e| e.1 != VACANT),
            self.added
                .range((lower, Bound::Unbounded))
                .map(|(&n, &p)| (n, p)),
        )
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Packed> {
        self.base
            .iter_mut()
            .map(|e| &mut e.1)
            .filter(|p| **p != VACANT)
            .chain(self.added.values_mut())
    }
}

/// Two ascending sequences of distinct ids as one.
fn merge_ascending(
    a: impl Iterator<Item = (u64, Packed)>,
    b: impl Iterator<Item = (u64, Packed)>,
) -> impl Iterator<Item = (u64, Packed)> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if y.0 < x.0 => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
}

/// Live ids and their locations.
#[derive(Debug, Default)]
pub(crate) struct IdMap {
    nums: NumMap,
    strs: BTreeMap<Box<str>, Packed>,
}

impl IdMap {
    pub fn len(&self) -> usize {
        self.nums.len() + self.strs.len()
    }

    pub fn get(&self, id: &PointId) -> Option<Location> {
        match id {
            PointId::Num(n) => self.nums.get(*n),
            PointId::Str(s) => self.strs.get(s.as_str()).copied(),
        }
        .map(Location::from)
    }

    pub fn contains(&self, id: &PointId) -> bool {
        self.get(id).is_some()
    }

    /// Sets `id`'s location; returns the one it replaces.
    pub fn insert(&mut self, id: PointId, location: Location) -> Option<Location> {
        let packed = Packed::from(location);
        match id {
            PointId::Num(n) => self.nums.insert(n, packed),
            PointId::Str(s) => self.strs.insert(s.into_boxed_str(), packed),
        }
        .map(Location::from)
    }

    /// Moves `id` to `location` if it is live; returns whether it was.
    pub fn relocate(&mut self, id: &PointId, location: Location) -> bool {
        let slot = match id {
            PointId::Num(n) => self.nums.slot_mut(*n),
            PointId::Str(s) => self.strs.get_mut(s.as_str()),
        };
        match slot {
            Some(slot) => {
                *slot = location.into();
                true
            }
            None => false,
        }
    }

    pub fn remove(&mut self, id: &PointId) -> Option<Location> {
        match id {
            PointId::Num(n) => self.nums.remove(*n),
            PointId::Str(s) => self.strs.remove(s.as_str()),
        }
        .map(Location::from)
    }

    /// The locations of the ids after `after` (all of them for `None`), in id order.
    pub fn locations_after(
        &self,
        after: Option<&PointId>,
    ) -> Box<dyn Iterator<Item = Location> + '_> {
        let strs = |lower: Bound<&str>| {
            self.strs
                .range::<str, _>((lower, Bound::Unbounded))
                .map(|(_, &p)| Location::from(p))
        };
        match after {
            None => Box::new(
                self.nums
                    .after(None)
                    .map(|(_, p)| Location::from(p))
                    .chain(strs(Bound::Unbounded)),
            ),
            Some(PointId::Num(n)) => Box::new(
                self.nums
                    .after(Some(*n))
                    .map(|(_, p)| Location::from(p))
                    .chain(strs(Bound::Unbounded)),
            ),
            Some(PointId::Str(s)) => Box::new(strs(Bound::Excluded(s.as_str()))),
        }
    }

    /// Rewrites every location through `f` (after segments were renumbered).
    pub fn relocate_all(&mut self, mut f: impl FnMut(Location) -> Location) {
        for slot in self.nums.values_mut().chain(self.strs.values_mut()) {
            *slot = f(Location::from(*slot)).into();
        }
    }
}

impl IdMap {
    /// Builds the map in one pass from about `capacity` entries; of equal ids the last
    /// one wins, as inserting them in order would.
    pub fn build(capacity: usize, entries: impl IntoIterator<Item = (PointId, Location)>) -> IdMap {
        let mut nums = Vec::with_capacity(capacity);
        let mut strs = Vec::new();
        for (id, location) in entries {
            match id {
                PointId::Num(n) => nums.push((n, Packed::from(location))),
                PointId::Str(s) => strs.push((s.into_boxed_str(), Packed::from(location))),
            }
        }
        IdMap {
            nums: NumMap::from_entries(nums),
            strs: strs.into_iter().collect(),
        }
    }
}

impl FromIterator<(PointId, Location)> for IdMap {
    fn from_iter<I: IntoIterator<Item = (PointId, Location)>>(entries: I) -> IdMap {
        let entries = entries.into_iter();
        IdMap::build(entries.size_hint().0, entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_id() -> impl Strategy<Value = PointId> {
        prop_oneof![
            (0u64..64).prop_map(PointId::Num),
            any::<u64>().prop_map(PointId::Num),
            "[a-c]{0,3}".prop_map(PointId::Str),
        ]
    }

    fn arb_location() -> impl Strategy<Value = Location> {
        prop_oneof![
            (0u32..(1 << 30), any::<u32>())
                .prop_map(|(segment, row)| Location::Sealed { segment, row }),
            any::<u32>().prop_map(|row| Location::Growing { row }),
            any::<u32>().prop_map(|row| Location::History { row }),
        ]
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(PointId, Location),
        Remove(PointId),
        Relocate(PointId, Location),
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (arb_id(), arb_location()).prop_map(|(i, l)| Op::Insert(i, l)),
            arb_id().prop_map(Op::Remove),
            (arb_id(), arb_location()).prop_map(|(i, l)| Op::Relocate(i, l)),
        ]
    }

    proptest! {
        #[test]
        fn packing_round_trips(location in arb_location()) {
            prop_assert_eq!(Location::from(Packed::from(location)), location);
        }

        /// The map behaves as an ordered map keyed by `PointId`.
        #[test]
        fn matches_an_ordered_map(
            initial in proptest::collection::vec((arb_id(), arb_location()), 0..40),
            ops in proptest::collection::vec(arb_op(), 0..80),
            after in proptest::option::of(arb_id()),
        ) {
            let mut map: IdMap = initial.iter().cloned().collect();
            let mut model: BTreeMap<PointId, Location> = BTreeMap::new();
            for (id, location) in initial {
                model.insert(id, location);
            }
            for op in ops {
                match op {
                    Op::Insert(id, l) => {
                        prop_assert_eq!(map.insert(id.clone(), l), model.insert(id, l));
                    }
                    Op::Remove(id) => prop_assert_eq!(map.remove(&id), model.remove(&id)),
                    Op::Relocate(id, l) => {
                        let live = model.get_mut(&id).map(|slot| *slot = l).is_some();
                        prop_assert_eq!(map.relocate(&id, l), live);
                    }
                }
            }
            prop_assert_eq!(map.len(), model.len());
            for id in model.keys() {
                prop_assert!(map.contains(id));
                prop_assert_eq!(map.get(id), model.get(id).copied());
            }
            let all: Vec<Location> = model.values().copied().collect();
            prop_assert_eq!(map.locations_after(None).collect::<Vec<_>>(), all);
            let tail: Vec<Location> = match &after {
                None => model.values().copied().collect(),
                Some(a) => model
                    .range::<PointId, _>((Bound::Excluded(a), Bound::Unbounded))
                    .map(|(_, &l)| l)
                    .collect(),
            };
            prop_assert_eq!(map.locations_after(after.as_ref()).collect::<Vec<_>>(), tail);
            map.relocate_all(|l| match l {
                Location::Growing { row } => Location::History { row },
                other => other,
            });
            for (id, l) in &model {
                let expected = match *l {
                    Location::Growing { row } => Location::History { row },
                    other => other,
                };
                prop_assert_eq!(map.get(id), Some(expected));
            }
        }
    }

    #[test]
    fn the_last_of_equal_ids_wins_a_bulk_build() {
        let map: IdMap = [
            (PointId::Num(1), Location::Growing { row: 1 }),
            (PointId::Num(1), Location::Growing { row: 2 }),
            (PointId::from("a"), Location::Growing { row: 3 }),
            (PointId::from("a"), Location::History { row: 4 }),
        ]
        .into_iter()
        .collect();
        assert_eq!(map.len(), 2);
        assert_eq!(
            map.get(&PointId::Num(1)),
            Some(Location::Growing { row: 2 })
        );
        assert_eq!(
            map.get(&PointId::from("a")),
            Some(Location::History { row: 4 })
        );
    }
}
