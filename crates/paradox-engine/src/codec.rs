//! Binary encoding of what the engine writes: write-ahead-log operations and per-row
//! metadata in segment files. Layouts are documented in `docs/formats.md` ("Engine files").
//!
//! Decoding never panics: every read is bounds-checked and a short or malformed buffer
//! becomes [`DecodeError`].

use crate::point::{Payload, PointId, Provenance, RowMeta, RowPayload, Versions};

/// A buffer that did not decode; `what` says which field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    pub what: String,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed record: {}", self.what)
    }
}

pub(crate) type DResult<T> = Result<T, DecodeError>;

fn err<T>(what: impl Into<String>) -> DResult<T> {
    Err(DecodeError { what: what.into() })
}

/// Appends little-endian values to a byte buffer.
pub(crate) struct Writer<'a>(pub &'a mut Vec<u8>);

impl Writer<'_> {
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    pub fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.bytes(s.as_bytes()),
            None => self.u32(u32::MAX),
        }
    }
    pub fn f32s(&mut self, values: &[f32]) {
        extend_f32_le(self.0, values);
    }
    pub fn id(&mut self, id: &PointId) {
        match id {
            PointId::Num(n) => {
                self.u8(0);
                self.u64(*n);
            }
            PointId::Str(s) => {
                self.u8(1);
                self.bytes(s.as_bytes());
            }
        }
    }
}

/// Appends `values` as little-endian f32 bytes.
pub(crate) fn extend_f32_le(buf: &mut Vec<u8>, values: &[f32]) {
    if cfg!(target_endian = "little") {
        // SAFETY: f32 has no padding and every bit pattern is a valid u8 sequence; on a
        // little-endian target the in-memory bytes are exactly the LE encoding.
        let bytes = unsafe {
            std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
        };
        buf.extend_from_slice(bytes);
    } else {
        for v in values {
            buf.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// Reads little-endian values from a byte slice.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }
    fn take(&mut self, n: usize, what: &str) -> DResult<&'a [u8]> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            _ => err(format!(
                "{what}: needs {n} bytes at offset {}, buffer has {}",
                self.pos,
                self.buf.len()
            )),
        }
    }
    pub fn u8(&mut self, what: &str) -> DResult<u8> {
        Ok(self.take(1, what)?[0])
    }
    pub fn u32(&mut self, what: &str) -> DResult<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self, what: &str) -> DResult<u64> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    pub fn i64(&mut self, what: &str) -> DResult<i64> {
        Ok(self.u64(what)? as i64)
    }
    pub fn bytes(&mut self, what: &str) -> DResult<&'a [u8]> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }
    /// Steps over what [`Writer::opt_str`] wrote.
    pub fn skip_opt_str(&mut self, what: &str) -> DResult<()> {
        let len = self.u32(what)?;
        if len != u32::MAX {
            self.take(len as usize, what)?;
        }
        Ok(())
    }
    /// What [`Writer::opt_str`] wrote, borrowed from the buffer.
    pub fn opt_str(&mut self, what: &str) -> DResult<Option<&'a str>> {
        let len = self.u32(what)?;
        if len == u32::MAX {
            return Ok(None);
        }
        let b = self.take(len as usize, what)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(Some(s)),
            Err(_) => err(format!("{what}: not UTF-8")),
        }
    }
    pub fn f32s_into(&mut self, n: usize, out: &mut Vec<f32>, what: &str) -> DResult<()> {
        let b = self.take(
            n.checked_mul(4).ok_or(DecodeError { what: what.into() })?,
            what,
        )?;
        out.extend(
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
        Ok(())
    }
    pub fn id(&mut self) -> DResult<PointId> {
        match self.u8("id tag")? {
            0 => Ok(PointId::Num(self.u64("numeric id")?)),
            1 => {
                let b = self.bytes("string id")?;
                match std::str::from_utf8(b) {
                    Ok(s) => Ok(PointId::Str(s.to_string())),
                    Err(_) => err("string id: not UTF-8"),
                }
            }
            t => err(format!("unknown id tag {t}")),
        }
    }
}

/// Writes the per-row metadata (everything but the vector).
pub(crate) fn write_meta(w: &mut Writer<'_>, meta: &RowMeta) {
    w.id(&meta.id);
    w.i64(meta.created_at);
    w.i64(meta.updated_at);
    w.opt_str(meta.encoder_version.as_deref());
    let provenance = meta
        .provenance
        .as_ref()
        .map(|p| serde_json::to_string(p).expect("provenance serialises"));
    w.opt_str(provenance.as_deref());
    if meta.payload.is_empty() {
        w.bytes(b"");
    } else {
        let json = serde_json::to_vec(&*meta.payload).expect("payload serialises");
        w.bytes(&json);
    }
}

/// Reads the `(created_at, updated_at)` of what [`write_meta`] wrote, skipping the id.
pub(crate) fn read_meta_times(r: &mut Reader<'_>) -> DResult<(i64, i64)> {
    match r.u8("id tag")? {
        0 => {
            r.u64("numeric id")?;
        }
        1 => {
            r.bytes("string id")?;
        }
        t => return err(format!("unknown id tag {t}")),
    }
    Ok((r.i64("created_at")?, r.i64("updated_at")?))
}

/// Reads the payload of what [`write_meta`] wrote, skipping (not decoding) the rest.
pub(crate) fn read_meta_payload(r: &mut Reader<'_>) -> DResult<RowPayload> {
    read_meta_times(r)?;
    r.skip_opt_str("encoder_version")?;
    r.skip_opt_str("provenance")?;
    read_payload(r.bytes("payload")?)
}

fn read_payload(bytes: &[u8]) -> DResult<RowPayload> {
    if bytes.is_empty() {
        return Ok(RowPayload::default());
    }
    match serde_json::from_slice::<Payload>(bytes) {
        Ok(p) => Ok(p.into()),
        Err(e) => err(format!("payload: {e}")),
    }
}

/// Reads what [`write_meta`] wrote; equal encoder versions of consecutive rows share
/// one allocation through `versions`.
pub(crate) fn read_meta(r: &mut Reader<'_>, versions: &mut Versions) -> DResult<RowMeta> {
    let id = r.id()?;
    let created_at = r.i64("created_at")?;
    let updated_at = r.i64("updated_at")?;
    let encoder_version = r.opt_str("encoder_version")?.map(|v| versions.intern(v));
    let provenance = match r.opt_str("provenance")? {
        None => None,
        Some(text) => match serde_json::from_str::<Provenance>(text) {
            Ok(p) => Some(Box::new(p)),
            Err(e) => return err(format!("provenance: {e}")),
        },
    };
    let payload = read_payload(r.bytes("payload")?)?;
    Ok(RowMeta {
        id,
        payload,
        encoder_version,
        provenance,
        created_at,
        updated_at,
    })
}

/// One logged operation. Operations are logged after validation, with timestamps already
/// assigned and vectors already prepared for the metric, so replay is deterministic.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WalOp {
    /// Insert or replace points; `vectors` holds `metas.len() * dim` values.
    Upsert {
        dim: u32,
        metas: Vec<RowMeta>,
        vectors: Vec<f32>,
    },
    /// Remove points by id (ids that do not exist are ignored) at time `at`
    /// (milliseconds since the Unix epoch; 0 in records written before deletes carried a
    /// time). `at` ends the removed versions' validity in a collection keeping history.
    Delete { ids: Vec<PointId>, at: i64 },
}

const OP_UPSERT: u8 = 1;
/// A delete without a time (older logs; still read).
const OP_DELETE: u8 = 2;
const OP_DELETE_AT: u8 = 3;

impl WalOp {
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut w = Writer(&mut buf);
        match self {
            WalOp::Upsert {
                dim,
                metas,
                vectors,
            } => {
                w.0.reserve(vectors.len() * 4 + metas.len() * 48 + 16);
                w.u8(OP_UPSERT);
                w.u32(*dim);
                w.u32(metas.len() as u32);
                w.f32s(vectors);
                for meta in metas {
                    write_meta(&mut w, meta);
                }
            }
            WalOp::Delete { ids, at } => {
                w.u8(OP_DELETE_AT);
                w.i64(*at);
                w.u32(ids.len() as u32);
                for id in ids {
                    w.id(id);
                }
            }
        }
        buf
    }

    pub fn decode(buf: &[u8]) -> DResult<WalOp> {
        let mut r = Reader::new(buf);
        let op = match r.u8("op")? {
            OP_UPSERT => {
                let dim = r.u32("dim")?;
                if dim == 0 {
                    return err("upsert with dimension 0");
                }
                let count = r.u32("count")? as usize;
                let total = (dim as usize)
                    .checked_mul(count)
                    .filter(|t| t.checked_mul(4).is_some_and(|bytes| bytes <= buf.len()))
                    .ok_or(DecodeError {
                        what: "vector block larger than record".into(),
                    })?;
                let mut vectors = Vec::with_capacity(total);
                r.f32s_into(total, &mut vectors, "vectors")?;
                let mut metas = Vec::with_capacity(count.min(buf.len()));
                let mut versions = Versions::default();
                for _ in 0..count {
                    metas.push(read_meta(&mut r, &mut versions)?);
                }
                WalOp::Upsert {
                    dim,
                    metas,
                    vectors,
                }
            }
            tag @ (OP_DELETE | OP_DELETE_AT) => {
                let at = if tag == OP_DELETE_AT { r.i64("at")? } else { 0 };
                let count = r.u32("count")? as usize;
                let mut ids = Vec::with_capacity(count.min(buf.len()));
                for _ in 0..count {
                    ids.push(r.id()?);
                }
                WalOp::Delete { ids, at }
            }
            other => return err(format!("unknown operation {other}")),
        };
        if !r.is_empty() {
            return err("trailing bytes after operation");
        }
        Ok(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_id() -> impl Strategy<Value = PointId> {
        prop_oneof![
            any::<u64>().prop_map(PointId::Num),
            "[a-z0-9é ]{0,12}".prop_map(PointId::Str)
        ]
    }

    fn arb_meta() -> impl Strategy<Value = RowMeta> {
        (
            arb_id(),
            any::<i64>(),
            any::<i64>(),
            proptest::option::of("[a-z@0-9]{0,8}"),
            proptest::option::of("[a-z]{0,5}"),
            "[a-z]{0,6}",
            any::<i32>(),
        )
            .prop_map(|(id, c, u, ev, src, key, val)| {
                let mut payload = Payload::new();
                if !key.is_empty() {
                    payload.insert(key, serde_json::json!(val));
                }
                RowMeta {
                    id,
                    payload: payload.into(),
                    encoder_version: ev.map(Into::into),
                    provenance: src.map(|s| {
                        Box::new(Provenance {
                            source: Some(s),
                            ..Default::default()
                        })
                    }),
                    created_at: c,
                    updated_at: u,
                }
            })
    }

    proptest! {
        #[test]
        fn upsert_round_trip(dim in 1u32..20, metas in proptest::collection::vec(arb_meta(), 0..20), seed in any::<u32>()) {
            let vectors: Vec<f32> = (0..metas.len() * dim as usize).map(|i| (i as f32 + seed as f32).sin()).collect();
            let op = WalOp::Upsert { dim, metas, vectors };
            prop_assert_eq!(WalOp::decode(&op.encode()).unwrap(), op);
        }

        #[test]
        fn delete_round_trip(ids in proptest::collection::vec(arb_id(), 0..50), at in any::<i64>()) {
            let op = WalOp::Delete { ids, at };
            prop_assert_eq!(WalOp::decode(&op.encode()).unwrap(), op);
        }

        #[test]
        fn a_delete_without_a_time_still_decodes(ids in proptest::collection::vec(arb_id(), 0..20)) {
            // The layout older logs hold: tag 2, count, ids.
            let mut buf = Vec::new();
            let mut w = Writer(&mut buf);
            w.u8(OP_DELETE);
            w.u32(ids.len() as u32);
            for id in &ids {
                w.id(id);
            }
            prop_assert_eq!(WalOp::decode(&buf).unwrap(), WalOp::Delete { ids, at: 0 });
        }

        #[test]
        fn truncated_or_garbage_never_panics(metas in proptest::collection::vec(arb_meta(), 1..5), cut in any::<usize>(), garbage in proptest::collection::vec(any::<u8>(), 0..64)) {
            let op = WalOp::Upsert { dim: 3, vectors: vec![0.5; metas.len() * 3], metas };
            let bytes = op.encode();
            let cut = cut % bytes.len();
            prop_assert!(WalOp::decode(&bytes[..cut]).is_err());
            let _ = WalOp::decode(&garbage);
        }
    }
}
