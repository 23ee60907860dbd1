//! Little-endian reading and writing helpers shared by the index byte formats. Every
//! read checks the remaining length, so a truncated buffer is an error naming the field.

/// Reads fields from a byte buffer front to back.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(format!("truncated at {what}")),
        }
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(a))
    }

    /// A `u64` count that must fit in memory.
    pub(crate) fn len(&mut self, what: &str) -> Result<usize, String> {
        usize::try_from(self.u64(what)?).map_err(|_| format!("{what} too large"))
    }

    pub(crate) fn u32s(&mut self, n: usize, what: &str) -> Result<Vec<u32>, String> {
        let b = self.take(n.checked_mul(4).ok_or(format!("{what} too large"))?, what)?;
        Ok(b.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    pub(crate) fn f32s(&mut self, n: usize, what: &str) -> Result<Vec<f32>, String> {
        Ok(self
            .u32s(n, what)?
            .into_iter()
            .map(f32::from_bits)
            .collect())
    }
}

/// Appends `u32`s little-endian.
pub(crate) fn put_u32s(out: &mut Vec<u8>, values: impl IntoIterator<Item = u32>) {
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Appends `f32`s little-endian.
pub(crate) fn put_f32s(out: &mut Vec<u8>, values: &[f32]) {
    put_u32s(out, values.iter().map(|v| v.to_bits()));
}
