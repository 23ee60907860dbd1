//! A deterministic text encoder with no weights: signed feature hashing of n-grams.
//!
//! The text is lowercased (Unicode-aware) and split into words, a word being a maximal run
//! of alphanumeric characters (`char::is_alphanumeric`, so accented letters, CJK and digits
//! count; punctuation, symbols and spaces separate words). Its features are
//!
//! * every word (unigram),
//! * every pair of adjacent words (bigram),
//! * every character n-gram, `min_ngram..=max_ngram` characters long (3 to 5 by default), of
//!   each word wrapped in boundary markers: `car` gives `<ca`, `car`, `ar>`, `<car`, `car>`
//!   and `<car>`.
//!
//! Each feature is hashed with 64-bit FNV-1a (a family tag first, so the word `ab` and the
//! character gram `ab` differ), the hash is mixed (the MurmurHash3 finaliser), and the mixed
//! hash picks a bucket (`hash % dim`) and a sign (its top bit). A feature seen `tf` times
//! adds `±(1 + ln tf)` to its bucket (sublinear term frequency). The vector is then L2
//! normalised; a text with no word at all (empty, spaces, punctuation only) encodes to the
//! zero vector.
//!
//! **What must stay true:** the output depends only on the text and the options: the same
//! bits on every platform, every run and every version of Rust (the hash is ours, features are
//! summed in sorted hash order, never in a `HashMap`'s random order). The one outside input is
//! Unicode's case and alphanumeric tables, which only change for newly assigned characters.
//! A test pins the exact output of a fixed text; if it breaks, every stored hashing vector
//! is stale and the encoder needs a new version.

use rayon::prelude::*;
use serde_json::json;

use crate::encoder::{Encoder, EncoderInfo};
use crate::error::{LifecycleError, Result};

/// The `kind` of [`EncoderInfo`] for this encoder.
pub const HASHING_KIND: &str = "hashing";

/// Largest `dim` accepted: far past any useful size, small enough that a mistake (a byte
/// count passed as a dimension) is caught before it allocates gigabytes per text.
pub const MAX_HASHING_DIM: usize = 1 << 20;

/// Family tags hashed before each feature's text.
const TAG_WORD: u8 = b'w';
const TAG_BIGRAM: u8 = b'b';
const TAG_CHAR: u8 = b'c';

/// Texts per parallel task: a text takes microseconds, so smaller tasks cost more to schedule
/// than to run.
const TEXTS_PER_TASK: usize = 64;

/// Options of a [`HashingEncoder`]; they are part of its identity (stored in the info's
/// `params`), since changing any of them changes every vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingOptions {
    /// Shortest character n-gram (default 3); 0 together with `max_ngram` 0 turns them off.
    pub min_ngram: usize,
    /// Longest character n-gram (default 5).
    pub max_ngram: usize,
    /// Whether adjacent word pairs are features (default true).
    pub word_bigrams: bool,
}

impl Default for HashingOptions {
    fn default() -> Self {
        HashingOptions {
            min_ngram: 3,
            max_ngram: 5,
            word_bigrams: true,
        }
    }
}

impl HashingOptions {
    fn validate(&self) -> Result<()> {
        let off = self.min_ngram == 0 && self.max_ngram == 0;
        if !off && (self.min_ngram == 0 || self.min_ngram > self.max_ngram || self.max_ngram > 16) {
            return Err(LifecycleError::InvalidArgument(format!(
                "hashing encoder: character n-gram range {}..={} must satisfy 1 <= min <= max <= 16 \
                 (or 0..=0 for none)",
                self.min_ngram, self.max_ngram
            )));
        }
        Ok(())
    }
}

/// Deterministic n-gram feature-hashing encoder (see the module doc for the exact recipe).
///
/// ```
/// use paradox_lifecycle::encoder::Encoder;
/// use paradox_lifecycle::hashing::HashingEncoder;
///
/// let enc = HashingEncoder::new("hash", 1, 256).unwrap();
/// let v = enc.encode_texts(&["a red car", "a red bus"]).unwrap();
/// assert_eq!(v.len(), 2 * 256);
/// assert_eq!(enc.info().space(), "hash@1");
/// ```
#[derive(Debug, Clone)]
pub struct HashingEncoder {
    info: EncoderInfo,
    options: HashingOptions,
}

impl HashingEncoder {
    /// A hashing encoder with the default options (character 3- to 5-grams, word bigrams).
    ///
    /// Errors when `dim` is 0 or above [`MAX_HASHING_DIM`], or `name` is not a valid encoder
    /// name (see [`EncoderInfo::validate`]).
    pub fn new(name: &str, version: u32, dim: usize) -> Result<Self> {
        Self::with_options(name, version, dim, HashingOptions::default())
    }

    /// A hashing encoder with explicit options.
    pub fn with_options(
        name: &str,
        version: u32,
        dim: usize,
        options: HashingOptions,
    ) -> Result<Self> {
        if dim == 0 || dim > MAX_HASHING_DIM {
            return Err(LifecycleError::InvalidArgument(format!(
                "hashing encoder `{name}`: dim must be in 1..={MAX_HASHING_DIM}, got {dim}"
            )));
        }
        options.validate()?;
        let info = EncoderInfo {
            name: name.to_string(),
            version,
            dim,
            kind: HASHING_KIND.to_string(),
            params: json!({
                "min_ngram": options.min_ngram,
                "max_ngram": options.max_ngram,
                "word_bigrams": options.word_bigrams,
            }),
        };
        info.validate()?;
        Ok(HashingEncoder { info, options })
    }

    /// Rebuilds the encoder an [`EncoderInfo`] of kind `"hashing"` describes; missing
    /// params take their defaults.
    pub fn from_info(info: &EncoderInfo) -> Result<Self> {
        if info.kind != HASHING_KIND {
            return Err(LifecycleError::InvalidArgument(format!(
                "encoder `{}`: kind is `{}`, not `{HASHING_KIND}`",
                info.space(),
                info.kind
            )));
        }
        let defaults = HashingOptions::default();
        let usize_param = |key: &str, default: usize| -> Result<usize> {
            match info.params.get(key) {
                None | Some(serde_json::Value::Null) => Ok(default),
                Some(v) => v
                    .as_u64()
                    .and_then(|x| usize::try_from(x).ok())
                    .ok_or_else(|| {
                        LifecycleError::InvalidArgument(format!(
                            "encoder `{}`: param `{key}` must be a non-negative integer, got {v}",
                            info.space()
                        ))
                    }),
            }
        };
        let word_bigrams = match info.params.get("word_bigrams") {
            None | Some(serde_json::Value::Null) => defaults.word_bigrams,
            Some(v) => v.as_bool().ok_or_else(|| {
                LifecycleError::InvalidArgument(format!(
                    "encoder `{}`: param `word_bigrams` must be a boolean, got {v}",
                    info.space()
                ))
            })?,
        };
        let options = HashingOptions {
            min_ngram: usize_param("min_ngram", defaults.min_ngram)?,
            max_ngram: usize_param("max_ngram", defaults.max_ngram)?,
            word_bigrams,
        };
        Self::with_options(&info.name, info.version, info.dim, options)
    }

    /// The options this encoder hashes with.
    pub fn options(&self) -> HashingOptions {
        self.options
    }

    /// Encodes one text into `out` (`dim` values, overwritten).
    fn encode_into(&self, text: &str, features: &mut Vec<u64>, out: &mut [f32]) {
        out.fill(0.0);
        features.clear();
        self.collect_features(text, features);
        features.sort_unstable();
        let dim = out.len() as u64;
        let mut i = 0;
        while i < features.len() {
            let hash = features[i];
            let mut j = i + 1;
            while j < features.len() && features[j] == hash {
                j += 1;
            }
            let tf = (j - i) as f32;
            let weight = 1.0 + tf.ln();
            let bucket = (hash % dim) as usize;
            if hash >> 63 == 1 {
                out[bucket] -= weight;
            } else {
                out[bucket] += weight;
            }
            i = j;
        }
        let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            let inv = 1.0 / norm;
            out.iter_mut().for_each(|x| *x *= inv);
        }
    }

    /// Pushes the mixed hash of every feature occurrence of `text`.
    fn collect_features(&self, text: &str, features: &mut Vec<u64>) {
        let lower = text.to_lowercase();
        let mut previous: Option<&str> = None;
        let mut chars: Vec<char> = Vec::new();
        for word in lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            features.push(mix(Fnv1a::tagged(TAG_WORD).bytes(word.as_bytes()).finish()));
            if self.options.word_bigrams {
                if let Some(prev) = previous {
                    let h = Fnv1a::tagged(TAG_BIGRAM)
                        .bytes(prev.as_bytes())
                        .bytes(b" ")
                        .bytes(word.as_bytes())
                        .finish();
                    features.push(mix(h));
                }
            }
            previous = Some(word);
            if self.options.max_ngram > 0 {
                chars.clear();
                chars.push('<');
                chars.extend(word.chars());
                chars.push('>');
                for n in self.options.min_ngram..=self.options.max_ngram {
                    for gram in chars.windows(n) {
                        let mut h = Fnv1a::tagged(TAG_CHAR);
                        let mut utf8 = [0u8; 4];
                        for c in gram {
                            h = h.bytes(c.encode_utf8(&mut utf8).as_bytes());
                        }
                        features.push(mix(h.finish()));
                    }
                }
            }
        }
    }
}

impl Encoder for HashingEncoder {
    fn info(&self) -> &EncoderInfo {
        &self.info
    }

    /// Row-major `texts.len() * dim` values, each row L2-normalised, or all zeros for a text
    /// without any word.
    fn encode_texts(&self, texts: &[&str]) -> Result<Vec<f32>> {
        let dim = self.info.dim;
        let mut out = vec![0.0f32; texts.len() * dim];
        out.par_chunks_mut(dim * TEXTS_PER_TASK)
            .zip(texts.par_chunks(TEXTS_PER_TASK))
            .for_each(|(rows, chunk)| {
                let mut features = Vec::new();
                for (row, text) in rows.chunks_exact_mut(dim).zip(chunk) {
                    self.encode_into(text, &mut features, row);
                }
            });
        Ok(out)
    }
}

/// 64-bit FNV-1a, written out so that it never changes under us.
#[derive(Debug, Clone, Copy)]
struct Fnv1a(u64);

impl Fnv1a {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Fnv1a(Self::OFFSET)
    }

    fn tagged(tag: u8) -> Self {
        Self::new().bytes(&[tag])
    }

    fn bytes(mut self, data: &[u8]) -> Self {
        for &b in data {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
        self
    }

    fn finish(self) -> u64 {
        self.0
    }
}

/// MurmurHash3's 64-bit finaliser: FNV's low bits (the bucket) and top bit (the sign) are
/// weak on short keys; this spreads every input bit over all output bits.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        assert_eq!(Fnv1a::new().finish(), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fnv1a::new().bytes(b"a").finish(), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            Fnv1a::new().bytes(b"foobar").finish(),
            0x8594_4171_f739_67e8
        );
    }

    #[test]
    fn features_of_one_short_word() {
        let enc = HashingEncoder::new("h", 1, 16).unwrap();
        let mut features = Vec::new();
        enc.collect_features("Car", &mut features);
        // 1 word, no bigram, "<car>": three 3-grams, two 4-grams, one 5-gram.
        assert_eq!(features.len(), 1 + 3 + 2 + 1);
        let mut expected = vec![mix(Fnv1a::tagged(TAG_WORD).bytes(b"car").finish())];
        for gram in ["<ca", "car", "ar>", "<car", "car>", "<car>"] {
            expected.push(mix(Fnv1a::tagged(TAG_CHAR).bytes(gram.as_bytes()).finish()));
        }
        assert_eq!(features, expected);
    }

    #[test]
    fn bigrams_and_unicode_words() {
        let enc = HashingEncoder::with_options(
            "h",
            1,
            16,
            HashingOptions {
                min_ngram: 0,
                max_ngram: 0,
                word_bigrams: true,
            },
        )
        .unwrap();
        let mut features = Vec::new();
        enc.collect_features("Crème, BRÛLÉE!", &mut features);
        let expected = vec![
            mix(Fnv1a::tagged(TAG_WORD).bytes("crème".as_bytes()).finish()),
            mix(Fnv1a::tagged(TAG_WORD).bytes("brûlée".as_bytes()).finish()),
            mix(Fnv1a::tagged(TAG_BIGRAM)
                .bytes("crème brûlée".as_bytes())
                .finish()),
        ];
        let mut sorted_expected = expected.clone();
        sorted_expected.sort_unstable();
        features.sort_unstable();
        assert_eq!(features, sorted_expected);
    }

    #[test]
    fn repeated_features_weigh_sublinearly() {
        let enc = HashingEncoder::with_options(
            "h",
            1,
            1 << 16,
            HashingOptions {
                min_ngram: 0,
                max_ngram: 0,
                word_bigrams: false,
            },
        )
        .unwrap();
        let v = enc.encode_texts(&["dog dog dog dog cat"]).unwrap();
        let mut nonzero: Vec<f32> = v.iter().filter(|x| **x != 0.0).map(|x| x.abs()).collect();
        nonzero.sort_by(f32::total_cmp);
        assert_eq!(nonzero.len(), 2, "two distinct words in distinct buckets");
        let ratio = nonzero[1] / nonzero[0];
        assert!((ratio - (1.0 + 4f32.ln())).abs() < 1e-5, "ratio {ratio}");
    }

    #[test]
    fn bad_options_are_rejected() {
        for (min, max) in [(0, 3), (4, 3), (2, 17)] {
            let opts = HashingOptions {
                min_ngram: min,
                max_ngram: max,
                word_bigrams: true,
            };
            let err = HashingEncoder::with_options("h", 1, 8, opts).unwrap_err();
            assert!(err.to_string().contains("n-gram range"), "{err}");
        }
    }
}
