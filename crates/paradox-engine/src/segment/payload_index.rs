//! The payload index of a sealed segment: for every dotted key path, the rows holding
//! each scalar value (postings), the rows' numbers sorted (for ranges), and the rows
//! where the key is present. A filter then becomes set operations on row bitsets instead
//! of a JSON walk per row, and its selectivity is known exactly before searching.
//!
//! Semantics match [`Filter::matches`] exactly (the tests check them against each other):
//! an array matches if any element does; numbers compare by value; a path only descends
//! through objects. Filter values that are objects or arrays are not indexed: such a
//! filter is evaluated row by row instead.

use crate::filter::{Filter, Range};
use crate::point::RowPayload;
use serde_json::Value;
use std::collections::HashMap;

/// A set of rows of one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowSet {
    words: Vec<u64>,
    rows: usize,
}

impl RowSet {
    pub fn empty(rows: usize) -> RowSet {
        RowSet {
            words: vec![0; rows.div_ceil(64)],
            rows,
        }
    }

    pub fn full(rows: usize) -> RowSet {
        let mut set = RowSet {
            words: vec![u64::MAX; rows.div_ceil(64)],
            rows,
        };
        set.trim();
        set
    }

    fn from_rows(rows: usize, members: impl IntoIterator<Item = u32>) -> RowSet {
        let mut set = RowSet::empty(rows);
        for r in members {
            set.insert(r);
        }
        set
    }

    fn trim(&mut self) {
        let tail = self.rows % 64;
        if tail != 0 {
            if let Some(last) = self.words.last_mut() {
                *last &= (1u64 << tail) - 1;
            }
        }
    }

    pub fn insert(&mut self, row: u32) {
        self.words[row as usize / 64] |= 1 << (row % 64);
    }

    pub fn remove(&mut self, row: u32) {
        self.words[row as usize / 64] &= !(1 << (row % 64));
    }

    #[inline]
    pub fn contains(&self, row: u32) -> bool {
        self.words
            .get(row as usize / 64)
            .is_some_and(|w| w & (1 << (row % 64)) != 0)
    }

    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    fn and(mut self, other: &RowSet) -> RowSet {
        self.words
            .iter_mut()
            .zip(&other.words)
            .for_each(|(a, b)| *a &= b);
        self
    }

    fn or(mut self, other: &RowSet) -> RowSet {
        self.words
            .iter_mut()
            .zip(&other.words)
            .for_each(|(a, b)| *a |= b);
        self
    }

    fn not(mut self) -> RowSet {
        self.words.iter_mut().for_each(|w| *w = !*w);
        self.trim();
        self
    }

    /// Members in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let mut w = word;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros();
                w &= w - 1;
                Some(i as u32 * 64 + bit)
            })
        })
    }
}

/// A scalar payload value as an index key (numbers by value, so `1` and `1.0` meet).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Scalar {
    Null,
    Bool(bool),
    Number(u64),
    Text(String),
}

impl Scalar {
    fn of(value: &Value) -> Option<Scalar> {
        match value {
            Value::Null => Some(Scalar::Null),
            Value::Bool(b) => Some(Scalar::Bool(*b)),
            Value::Number(n) => n
                .as_f64()
                .map(|x| Scalar::Number(if x == 0.0 { 0 } else { x.to_bits() })),
            Value::String(s) => Some(Scalar::Text(s.clone())),
            Value::Array(_) | Value::Object(_) => None,
        }
    }

    /// A stable text form, unique per scalar: names a posting across processes (the
    /// payload graphs of an index file are keyed by it).
    fn key(&self) -> String {
        match self {
            Scalar::Null => "null".into(),
            Scalar::Bool(b) => format!("b:{b}"),
            Scalar::Number(bits) => format!("n:{bits:016x}"),
            Scalar::Text(t) => format!("s:{t}"),
        }
    }
}

#[derive(Debug, Default)]
struct KeyIndex {
    postings: HashMap<Scalar, Vec<u32>>,
    /// (value, row) for every number, sorted by value.
    numbers: Vec<(f64, u32)>,
    /// Rows where the path resolves to a non-null value.
    present: Vec<u32>,
    /// Rows where the path resolves to an object or array that holds objects/arrays
    /// (values the postings cannot represent).
    complex: Vec<u32>,
}

/// Postings and sorted numbers for every key path of a segment's payloads.
#[derive(Debug)]
pub(crate) struct PayloadIndex {
    rows: usize,
    keys: HashMap<String, KeyIndex>,
}

/// Paths deeper than this are not indexed (filters on them are evaluated row by row).
const MAX_INDEXED_DEPTH: usize = 8;

impl PayloadIndex {
    /// Indexes `payloads`, row 0 first.
    pub fn build<P: std::ops::Deref<Target = RowPayload>>(
        payloads: impl IntoIterator<Item = P>,
    ) -> PayloadIndex {
        let mut keys: HashMap<String, KeyIndex> = HashMap::new();
        let mut rows = 0;
        for (row, payload) in payloads.into_iter().enumerate() {
            rows = row + 1;
            for (key, value) in payload.iter() {
                index_value(&mut keys, key.clone(), value, row as u32, 1);
            }
        }
        for index in keys.values_mut() {
            index.numbers.sort_by(|a, b| a.0.total_cmp(&b.0));
            for rows in index.postings.values_mut() {
                rows.dedup();
            }
            index.present.dedup();
        }
        PayloadIndex { rows, keys }
    }

    /// The rows matching `filter`, or `None` when some part of it cannot be answered from
    /// the index (then the caller evaluates it row by row).
    pub fn eval(&self, filter: &Filter) -> Option<RowSet> {
        let rows = self.rows;
        Some(match filter {
            Filter::Eq { key, value } => self.postings(key, value)?,
            Filter::In { key, values } => {
                let mut set = RowSet::empty(rows);
                for v in values {
                    set = set.or(&self.postings(key, v)?);
                }
                set
            }
            Filter::Range { key, range } => self.range(key, range)?,
            Filter::Exists { key, exists } => {
                let present = match self.keys.get(key) {
                    Some(k) => RowSet::from_rows(rows, k.present.iter().copied()),
                    None if key.split('.').count() > MAX_INDEXED_DEPTH => return None,
                    None => RowSet::empty(rows),
                };
                if *exists {
                    present
                } else {
                    present.not()
                }
            }
            Filter::And(parts) => {
                let mut set = RowSet::full(rows);
                for p in parts {
                    set = set.and(&self.eval(p)?);
                }
                set
            }
            Filter::Or(parts) => {
                let mut set = RowSet::empty(rows);
                for p in parts {
                    set = set.or(&self.eval(p)?);
                }
                set
            }
            Filter::Not(inner) => self.eval(inner)?.not(),
        })
    }

    fn key(&self, key: &str) -> Option<Option<&KeyIndex>> {
        match self.keys.get(key) {
            // Rows holding nested arrays/objects under this key might match in ways the
            // postings do not record: answer row by row.
            Some(k) if !k.complex.is_empty() => None,
            Some(k) => Some(Some(k)),
            None if key.split('.').count() > MAX_INDEXED_DEPTH => None,
            None => Some(None),
        }
    }

    /// Every posting (key path, value key, ascending rows) of `min..=max` rows, on keys the
    /// index answers exactly (no nested arrays or objects under them). Value keys are those
    /// of [`PayloadIndex::value_key`].
    pub fn postings_sized(&self, min: usize, max: usize) -> Vec<(&str, String, &[u32])> {
        let mut out = Vec::new();
        for (key, index) in &self.keys {
            if !index.complex.is_empty() {
                continue;
            }
            for (scalar, rows) in &index.postings {
                if (min..=max).contains(&rows.len()) {
                    out.push((key.as_str(), scalar.key(), rows.as_slice()));
                }
            }
        }
        out
    }

    /// The value key of an equality filter's value (`None` for arrays and objects).
    pub fn value_key(value: &Value) -> Option<String> {
        Scalar::of(value).map(|s| s.key())
    }

    fn postings(&self, key: &str, value: &Value) -> Option<RowSet> {
        let scalar = Scalar::of(value)?;
        let index = self.key(key)?;
        let rows = index
            .and_then(|k| k.postings.get(&scalar))
            .map(|r| r.iter().copied());
        Some(RowSet::from_rows(self.rows, rows.into_iter().flatten()))
    }

    fn range(&self, key: &str, range: &Range) -> Option<RowSet> {
        let Some(index) = self.key(key)? else {
            return Some(RowSet::empty(self.rows));
        };
        let numbers = &index.numbers;
        let lower = match (range.gt, range.gte) {
            (Some(g), _) => numbers.partition_point(|(x, _)| *x <= g),
            (None, Some(g)) => numbers.partition_point(|(x, _)| *x < g),
            (None, None) => 0,
        };
        let upper = match (range.lt, range.lte) {
            (Some(l), _) => numbers.partition_point(|(x, _)| *x < l),
            (None, Some(l)) => numbers.partition_point(|(x, _)| *x <= l),
            (None, None) => numbers.len(),
        };
        // Both bounds of each kind may be given: filter the slice by the full range.
        let members = numbers[lower..upper.max(lower)]
            .iter()
            .filter(|(x, _)| {
                range.gt.is_none_or(|b| *x > b)
                    && range.gte.is_none_or(|b| *x >= b)
                    && range.lt.is_none_or(|b| *x < b)
                    && range.lte.is_none_or(|b| *x <= b)
            })
            .map(|(_, r)| *r);
        Some(RowSet::from_rows(self.rows, members))
    }
}

fn index_value(
    keys: &mut HashMap<String, KeyIndex>,
    path: String,
    value: &Value,
    row: u32,
    depth: usize,
) {
    if depth > MAX_INDEXED_DEPTH {
        return;
    }
    if let Value::Object(map) = value {
        for (k, v) in map {
            index_value(keys, format!("{path}.{k}"), v, row, depth + 1);
        }
    }
    let entry = keys.entry(path).or_default();
    if !value.is_null() {
        entry.present.push(row);
    }
    let add = |v: &Value, entry: &mut KeyIndex| {
        if let Some(s) = Scalar::of(v) {
            entry.postings.entry(s).or_default().push(row);
            if let Some(x) = v.as_f64() {
                entry.numbers.push((x, row));
            }
        }
    };
    match value {
        Value::Array(items) => {
            for item in items {
                if matches!(item, Value::Array(_) | Value::Object(_)) {
                    entry.complex.push(row);
                } else {
                    add(item, entry);
                }
            }
        }
        Value::Object(_) => {}
        scalar => add(scalar, entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::payload;
    use crate::point::{PointId, RowMeta};
    use proptest::prelude::*;
    use serde_json::json;

    fn meta(p: Value) -> RowMeta {
        RowMeta {
            id: PointId::Num(0),
            payload: payload(p).into(),
            encoder_version: None,
            provenance: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (0i64..5).prop_map(Value::from),
            (0i64..5).prop_map(|x| Value::from(x as f64 + 0.5)),
            "[ab]".prop_map(Value::from),
            proptest::collection::vec((0i64..4).prop_map(Value::from), 0..3).prop_map(Value::from),
            (0i64..4).prop_map(|x| json!({"in": x})),
        ]
    }

    fn arb_filter() -> impl Strategy<Value = Filter> {
        let key = prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("a.in".to_string())
        ];
        let leaf = prop_oneof![
            (key.clone(), arb_value()).prop_map(|(key, value)| Filter::Eq { key, value }),
            (key.clone(), proptest::collection::vec(arb_value(), 0..3))
                .prop_map(|(key, values)| Filter::In { key, values }),
            (key.clone(), 0i64..5, 0i64..6).prop_map(|(key, lo, hi)| Filter::Range {
                key,
                range: Range {
                    gte: Some(lo as f64),
                    lt: Some(hi as f64),
                    ..Default::default()
                }
            }),
            (key, any::<bool>()).prop_map(|(key, exists)| Filter::Exists { key, exists }),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Filter::And),
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Filter::Or),
                inner.prop_map(|f| Filter::Not(Box::new(f))),
            ]
        })
    }

    proptest! {
        #[test]
        fn index_answers_exactly_like_row_by_row_evaluation(
            rows in proptest::collection::vec((proptest::option::of(arb_value()), proptest::option::of(arb_value())), 0..70),
            filter in arb_filter(),
        ) {
            let metas: Vec<RowMeta> = rows
                .iter()
                .map(|(a, b)| {
                    let mut p = serde_json::Map::new();
                    if let Some(a) = a { p.insert("a".into(), a.clone()); }
                    if let Some(b) = b { p.insert("b".into(), b.clone()); }
                    meta(Value::Object(p))
                })
                .collect();
            let index = PayloadIndex::build(metas.iter().map(|m| &m.payload));
            if let Some(set) = index.eval(&filter) {
                for (row, m) in metas.iter().enumerate() {
                    prop_assert_eq!(set.contains(row as u32), filter.matches(&m.payload), "row {} filter {:?}", row, filter);
                }
                prop_assert_eq!(set.iter().count(), set.count());
            }
        }
    }
}
