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
//!
//! The map is changed under the collection's state write lock, which every search waits
//! for, so its two O(n) operations are kept out of that lock (see [`IdMap::freeze_growing`],
//! [`IdMap::folded_nums`] and [`IdMap::relocated_nums`]).

use super::state::Location;
use crate::point::PointId;
use std::collections::BTreeMap;
use std::ops::Bound;

/// A [`Location`] in 8 bytes: the kind in the top two bits, the sealed segment's index
/// (for a growing row inside an [`IdMap`]: the growing segment's generation) in the next
/// 30, the row in the low 32.
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

/// Ids added since the last fold beyond which the numeric ids are due to be folded into
/// one sorted array again ([`NumMap::fold_due`]): at least this many, and at least a
/// quarter of the array, so folding is amortised O(1) per insert.
const FOLD_MIN: usize = if cfg!(test) { 8 } else { 4096 };

/// How far past due the added ids may grow before an insert folds them itself: the live
/// write path folds when due, outside the exclusive lock; replay (and a caller that
/// never folds) relies on this.
const FOLD_BACKSTOP: usize = 4;

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
            if self.added.len() > FOLD_BACKSTOP * self.fold_threshold() {
                *self = self.folded(|p| p);
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

    fn fold_threshold(&self) -> usize {
        (self.base.len() / 4).max(FOLD_MIN)
    }

    fn fold_due(&self) -> bool {
        self.added.len() > self.fold_threshold()
    }

    /// The same ids in one sorted array, each location passed through `f`: a copy, so
    /// it can be made while readers use this one.
    fn folded(&self, f: impl FnMut(Packed) -> Packed) -> NumMap {
        let mut merged = Vec::with_capacity(self.len());
        merged.extend(self.after(None));
        let mut f = f;
        for entry in &mut merged {
            entry.1 = f(entry.1);
        }
        NumMap {
            base_live: merged.len(),
            base: merged,
            added: BTreeMap::new(),
        }
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

/// Which sealed segment each frozen growing segment became, by generation: growing rows'
/// locations carry their segment's generation, so freezing the growing segment is O(1)
/// (no location is rewritten); a location of a frozen generation reads as a row of the
/// sealed segment it became. The next [`IdMap::relocated_nums`] (a merge) rewrites them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Generations {
    /// The growing segment's generation.
    current: u32,
    /// Generation of `frozen[0]`; `frozen` covers `first..current`.
    first: u32,
    /// Sealed segment index of each frozen generation.
    frozen: Vec<u32>,
}

impl Generations {
    fn pack(&self, location: Location) -> Packed {
        match location {
            Location::Growing { row } => Packed(
                (GROWING << KIND_SHIFT)
                    | (u64::from(self.current) << SEGMENT_SHIFT)
                    | u64::from(row),
            ),
            other => other.into(),
        }
    }

    fn unpack(&self, packed: Packed) -> Location {
        if packed.0 >> KIND_SHIFT != GROWING {
            return packed.into();
        }
        let row = packed.0 as u32;
        let generation = ((packed.0 >> SEGMENT_SHIFT) & SEGMENT_MASK) as u32;
        if generation == self.current {
            return Location::Growing { row };
        }
        let at = generation.wrapping_sub(self.first) & SEGMENT_MASK as u32;
        let segment = *self
            .frozen
            .get(at as usize)
            .expect("a growing location is of the current or a frozen generation");
        Location::Sealed { segment, row }
    }

    fn freeze(&mut self, segment: u32) {
        self.frozen.push(segment);
        self.current = (self.current + 1) & SEGMENT_MASK as u32;
    }

    /// After every location was rewritten unpacked: no frozen generation is referenced.
    fn forget_frozen(&mut self) {
        self.frozen.clear();
        self.first = self.current;
    }
}

/// Live ids and their locations.
#[derive(Debug, Default)]
pub(crate) struct IdMap {
    nums: NumMap,
    strs: BTreeMap<Box<str>, Packed>,
    generations: Generations,
}

/// The numeric ids of an [`IdMap`] rebuilt as one sorted array, made under a read lock
/// and installed with [`IdMap::install_nums`] under the write lock. Valid only if the map
/// did not change in between (the collection's writer mutex is held throughout).
#[derive(Debug)]
pub(crate) struct RebuiltNums {
    nums: NumMap,
    generations: Generations,
}

/// Numeric ids replaced by [`IdMap::install_nums`]: dropping them frees up to millions of
/// entries, which should not happen under the lock that installed their replacement.
#[must_use = "drop it once the lock is released"]
#[derive(Debug)]
pub(crate) struct ReplacedNums {
    _nums: NumMap,
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
        .map(|p| self.generations.unpack(p))
    }

    pub fn contains(&self, id: &PointId) -> bool {
        self.get(id).is_some()
    }

    /// Sets `id`'s location; returns the one it replaces.
    pub fn insert(&mut self, id: PointId, location: Location) -> Option<Location> {
        let packed = self.generations.pack(location);
        match id {
            PointId::Num(n) => self.nums.insert(n, packed),
            PointId::Str(s) => self.strs.insert(s.into_boxed_str(), packed),
        }
        .map(|p| self.generations.unpack(p))
    }

    pub fn remove(&mut self, id: &PointId) -> Option<Location> {
        match id {
            PointId::Num(n) => self.nums.remove(*n),
            PointId::Str(s) => self.strs.remove(s.as_str()),
        }
        .map(|p| self.generations.unpack(p))
    }

    /// The locations of the ids after `after` (all of them for `None`), in id order.
    pub fn locations_after(
        &self,
        after: Option<&PointId>,
    ) -> Box<dyn Iterator<Item = Location> + '_> {
        let unpack = |(_, p)| self.generations.unpack(p);
        let strs = move |lower: Bound<&str>| {
            self.strs
                .range::<str, _>((lower, Bound::Unbounded))
                .map(move |(_, &p)| self.generations.unpack(p))
        };
        match after {
            None => Box::new(
                self.nums
                    .after(None)
                    .map(unpack)
                    .chain(strs(Bound::Unbounded)),
            ),
            Some(PointId::Num(n)) => Box::new(
                self.nums
                    .after(Some(*n))
                    .map(unpack)
                    .chain(strs(Bound::Unbounded)),
            ),
            Some(PointId::Str(s)) => Box::new(strs(Bound::Excluded(s.as_str()))),
        }
    }

    /// The growing segment's rows became sealed segment `segment` (same row numbers):
    /// O(1), their locations now read as that segment's rows.
    pub fn freeze_growing(&mut self, segment: u32) {
        self.generations.freeze(segment);
    }

    /// Whether enough numeric ids were added since the last fold that
    /// [`IdMap::folded_nums`] is due (else an insert will fold them itself, under the
    /// caller's lock, once they are [`FOLD_BACKSTOP`] times as many).
    pub fn fold_due(&self) -> bool {
        self.nums.fold_due()
    }

    /// The numeric ids folded into one sorted array: O(n), a copy, made while readers use
    /// this map.
    pub fn folded_nums(&self) -> RebuiltNums {
        RebuiltNums {
            nums: self.nums.folded(|p| p),
            generations: self.generations.clone(),
        }
    }

    /// The numeric ids folded as [`IdMap::folded_nums`] does, each location rewritten
    /// through `f` (after segments were renumbered): the O(n) part of a relocation, made
    /// while readers use this map. String ids are left to [`IdMap::install_nums`].
    pub fn relocated_nums(&self, mut f: impl FnMut(Location) -> Location) -> RebuiltNums {
        let generations = &self.generations;
        let nums = self
            .nums
            .folded(|p| generations.pack(f(generations.unpack(p))));
        let mut generations = generations.clone();
        generations.forget_frozen();
        RebuiltNums { nums, generations }
    }

    /// Installs `rebuilt` (made from this map, unchanged since); `strs`: how each string
    /// id's location is rewritten (the same `f` as given to [`IdMap::relocated_nums`]),
    /// or `None` after [`IdMap::folded_nums`]. Returns the replaced numeric ids, for the
    /// caller to drop after it releases its lock.
    pub fn install_nums(
        &mut self,
        rebuilt: RebuiltNums,
        strs: Option<&mut dyn FnMut(Location) -> Location>,
    ) -> ReplacedNums {
        debug_assert_eq!(rebuilt.nums.len(), self.nums.len(), "the map changed");
        if let Some(f) = strs {
            let generations = &self.generations;
            for slot in self.strs.values_mut() {
                *slot = rebuilt.generations.pack(f(generations.unpack(*slot)));
            }
        }
        self.generations = rebuilt.generations;
        ReplacedNums {
            _nums: std::mem::replace(&mut self.nums, rebuilt.nums),
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
            generations: Generations::default(),
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
        /// The growing rows become this sealed segment's.
        Freeze(u32),
        /// Every sealed segment index shifted by this much (a merge's renumbering).
        Renumber(u32),
        Fold,
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (arb_id(), arb_location()).prop_map(|(i, l)| Op::Insert(i, l)),
            2 => arb_id().prop_map(Op::Remove),
            1 => (0u32..1000).prop_map(Op::Freeze),
            1 => (0u32..8).prop_map(Op::Renumber),
            1 => Just(Op::Fold),
        ]
    }

    fn renumbered(location: Location, by: u32) -> Location {
        match location {
            Location::Sealed { segment, row } => Location::Sealed {
                segment: (segment + by) % (1 << 30),
                row,
            },
            other => other,
        }
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
                    Op::Freeze(segment) => {
                        for slot in model.values_mut() {
                            if let Location::Growing { row } = *slot {
                                *slot = Location::Sealed { segment, row };
                            }
                        }
                        map.freeze_growing(segment);
                    }
                    Op::Renumber(by) => {
                        for slot in model.values_mut() {
                            *slot = renumbered(*slot, by);
                        }
                        let rebuilt = map.relocated_nums(|l| renumbered(l, by));
                        let _old = map.install_nums(rebuilt, Some(&mut |l| renumbered(l, by)));
                    }
                    Op::Fold => {
                        let folded = map.folded_nums();
                        let _old = map.install_nums(folded, None);
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
            let to_history = |l| match l {
                Location::Growing { row } => Location::History { row },
                other => other,
            };
            let rebuilt = map.relocated_nums(to_history);
            let _old = map.install_nums(rebuilt, Some(&mut { to_history }));
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
