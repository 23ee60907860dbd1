//! Encoders: what turns a text (or bytes) into a vector, and which version of it did.
//!
//! An encoder is identified by its [`EncoderInfo`]: a `name`, a `version`, the `dim` of its
//! vectors, its `kind` (which code runs it: [`HASHING_KIND`] or
//! [`MINILM_KIND`]) and the `params` that kind needs to rebuild
//! it. Its *space* is `name@version`: vectors of two different spaces are not comparable,
//! even when their dimensions agree; an adapter maps one space into another.
//!
//! The [`EncoderRegistry`] holds the encoders a process knows, by space, and answers "the
//! newest version of `name`". [`encoder_from_info`] rebuilds an encoder from a stored info,
//! so a catalog only needs to store infos.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::error::{LifecycleError, Result};
use crate::hashing::{HashingEncoder, HASHING_KIND};
use crate::minilm::{MiniLmEncoder, MINILM_KIND};

/// The identity of an encoder version.
///
/// Two infos that differ in anything (even a param) describe encoders whose vectors must not
/// be mixed under one space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderInfo {
    /// Family name, e.g. `"minilm"`; non-empty, without `@` or whitespace.
    pub name: String,
    /// Version within the family; a larger number is newer.
    pub version: u32,
    /// Length of every vector it produces.
    pub dim: usize,
    /// Which implementation runs it: `"hashing"` or `"minilm"`.
    pub kind: String,
    /// What that implementation needs to rebuild it (see [`encoder_from_info`]).
    pub params: serde_json::Value,
}

impl EncoderInfo {
    /// The space its vectors live in: `"name@version"`, e.g. `"minilm@2"`.
    pub fn space(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Checks the name (non-empty, no `@`, no whitespace) and that `dim` is positive.
    pub fn validate(&self) -> Result<()> {
        if self.name.is_empty()
            || self
                .name
                .chars()
                .any(|c| c == '@' || c.is_whitespace() || c.is_control())
        {
            return Err(LifecycleError::InvalidArgument(format!(
                "encoder name {:?} must be non-empty, without `@`, whitespace or control \
                 characters",
                self.name
            )));
        }
        if self.dim == 0 {
            return Err(LifecycleError::InvalidArgument(format!(
                "encoder `{}`: dim must be positive",
                self.space()
            )));
        }
        Ok(())
    }
}

/// Splits a space `"name@version"` into its parts.
///
/// ```
/// assert_eq!(paradox_lifecycle::encoder::parse_space("minilm@2"), Some(("minilm", 2)));
/// assert_eq!(paradox_lifecycle::encoder::parse_space("minilm"), None);
/// ```
pub fn parse_space(space: &str) -> Option<(&str, u32)> {
    let (name, version) = space.rsplit_once('@')?;
    if name.is_empty() || name.contains('@') {
        return None;
    }
    Some((name, version.parse().ok()?))
}

/// Something that turns texts (or bytes) into vectors of one space.
///
/// Implementations are pure functions of their input and their info: encoding the same text
/// twice, alone or in any batch, gives the same vector (up to float rounding for batched
/// neural encoders).
pub trait Encoder: Send + Sync + fmt::Debug {
    /// Its identity.
    fn info(&self) -> &EncoderInfo;

    /// Row-major `texts.len() * dim` f32, one row per text, in order, L2-normalised where the
    /// encoder says so. An empty slice gives an empty vector.
    fn encode_texts(&self, texts: &[&str]) -> Result<Vec<f32>>;

    /// One vector of `dim` values for raw bytes; by default an error, since the built-in
    /// encoders read text only.
    fn encode_bytes(&self, data: &[u8]) -> Result<Vec<f32>> {
        let _ = data;
        Err(LifecycleError::InvalidArgument(format!(
            "encoder {} does not encode bytes",
            self.info().space()
        )))
    }
}

/// The versions of one encoder name.
type Versions = BTreeMap<u32, Arc<dyn Encoder>>;

/// The encoders a process knows, by space; cheap to share (`Arc`) and safe to use from many
/// threads.
#[derive(Default)]
pub struct EncoderRegistry {
    /// name -> version -> encoder.
    encoders: RwLock<BTreeMap<String, Versions>>,
}

impl fmt::Debug for EncoderRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let spaces: Vec<String> = self.list().iter().map(EncoderInfo::space).collect();
        f.debug_struct("EncoderRegistry")
            .field("spaces", &spaces)
            .finish()
    }
}

impl EncoderRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an encoder under its space.
    ///
    /// Registering the same info twice is a no-op (the first encoder stays); registering a
    /// different info under a space already taken is an error, since vectors of the two could
    /// otherwise be mixed.
    pub fn register(&self, enc: Arc<dyn Encoder>) -> Result<()> {
        let info = enc.info().clone();
        info.validate()?;
        let mut encoders = self.encoders.write();
        let versions = encoders.entry(info.name.clone()).or_default();
        if let Some(existing) = versions.get(&info.version) {
            if existing.info() == &info {
                return Ok(());
            }
            return Err(LifecycleError::InvalidArgument(format!(
                "encoder space `{}` is already registered with a different identity \
                 (registered: kind {}, dim {}, params {}; new: kind {}, dim {}, params {})",
                info.space(),
                existing.info().kind,
                existing.info().dim,
                existing.info().params,
                info.kind,
                info.dim,
                info.params
            )));
        }
        versions.insert(info.version, enc);
        Ok(())
    }

    /// The encoder of a space `"name@version"`, if registered.
    pub fn get(&self, space: &str) -> Option<Arc<dyn Encoder>> {
        let (name, version) = parse_space(space)?;
        self.encoders.read().get(name)?.get(&version).cloned()
    }

    /// Every registered encoder's info, by name then version.
    pub fn list(&self) -> Vec<EncoderInfo> {
        self.encoders
            .read()
            .values()
            .flat_map(|versions| versions.values().map(|e| e.info().clone()))
            .collect()
    }

    /// The highest registered version of `name`.
    pub fn latest(&self, name: &str) -> Option<Arc<dyn Encoder>> {
        self.encoders
            .read()
            .get(name)?
            .last_key_value()
            .map(|(_, e)| Arc::clone(e))
    }
}

/// Builds an encoder from its info.
///
/// * kind `"hashing"`: params `{"min_ngram": 3, "max_ngram": 5, "word_bigrams": true}`
///   (each optional, those are the defaults).
/// * kind `"minilm"`: params `{"dir": "/path/to/all-MiniLM-L6-v2" | null, "layers": n | null,
///   "max_len": 256, "normalize": true}`; `dir` null means
///   [`default_model_dir`](crate::minilm::default_model_dir), `layers` null means all of them; `max_len` and
///   `normalize` are optional.
///
/// The built encoder's info has every param filled in; for an info taken from an encoder
/// (`enc.info().clone()`) it is equal to the input. Errors name the unknown kind, the bad
/// param, a `dim` that does not match what the kind produces, or the missing model file.
pub fn encoder_from_info(info: &EncoderInfo) -> Result<Arc<dyn Encoder>> {
    info.validate()?;
    let enc: Arc<dyn Encoder> = match info.kind.as_str() {
        HASHING_KIND => Arc::new(HashingEncoder::from_info(info)?),
        MINILM_KIND => Arc::new(MiniLmEncoder::from_info(info)?),
        other => {
            return Err(LifecycleError::InvalidArgument(format!(
                "encoder `{}`: unknown kind `{other}` (known: `{HASHING_KIND}`, `{MINILM_KIND}`)",
                info.space()
            )))
        }
    };
    if enc.info().dim != info.dim {
        return Err(LifecycleError::InvalidArgument(format!(
            "encoder `{}`: info says dim {}, but the {} encoder it describes produces {}",
            info.space(),
            info.dim,
            info.kind,
            enc.info().dim
        )));
    }
    Ok(enc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashing(name: &str, version: u32, dim: usize) -> Arc<dyn Encoder> {
        Arc::new(HashingEncoder::new(name, version, dim).unwrap())
    }

    #[test]
    fn space_and_parse_round_trip() {
        let info = hashing("docs", 7, 8).info().clone();
        assert_eq!(info.space(), "docs@7");
        assert_eq!(parse_space(&info.space()), Some(("docs", 7)));
        assert_eq!(parse_space("docs@"), None);
        assert_eq!(parse_space("@3"), None);
        assert_eq!(parse_space("a@b@3"), None);
        assert_eq!(parse_space("docs@x"), None);
    }

    #[test]
    fn registry_get_latest_list() {
        let reg = EncoderRegistry::new();
        reg.register(hashing("h", 1, 8)).unwrap();
        reg.register(hashing("h", 3, 8)).unwrap();
        reg.register(hashing("h", 2, 8)).unwrap();
        reg.register(hashing("g", 1, 4)).unwrap();
        assert_eq!(reg.get("h@2").unwrap().info().version, 2);
        assert!(reg.get("h@4").is_none());
        assert!(reg.get("nope@1").is_none());
        assert_eq!(reg.latest("h").unwrap().info().version, 3);
        assert!(reg.latest("nope").is_none());
        let spaces: Vec<String> = reg.list().iter().map(EncoderInfo::space).collect();
        assert_eq!(spaces, ["g@1", "h@1", "h@2", "h@3"]);
        assert!(format!("{reg:?}").contains("h@3"));
    }

    #[test]
    fn registry_rejects_a_different_identity_under_a_taken_space() {
        let reg = EncoderRegistry::new();
        reg.register(hashing("h", 1, 8)).unwrap();
        reg.register(hashing("h", 1, 8)).unwrap(); // same identity: fine
        let err = reg.register(hashing("h", 1, 16)).unwrap_err();
        assert!(err.to_string().contains("h@1"), "{err}");
        assert_eq!(reg.get("h@1").unwrap().info().dim, 8);
    }

    #[test]
    fn default_encode_bytes_names_the_encoder() {
        let err = hashing("h", 2, 8).encode_bytes(b"x").unwrap_err();
        assert!(
            err.to_string()
                .contains("encoder h@2 does not encode bytes"),
            "{err}"
        );
    }

    #[test]
    fn from_info_round_trips_and_validates() {
        let enc = hashing("h", 1, 32);
        let rebuilt = encoder_from_info(enc.info()).unwrap();
        assert_eq!(rebuilt.info(), enc.info());
        assert_eq!(
            rebuilt.encode_texts(&["same text"]).unwrap(),
            enc.encode_texts(&["same text"]).unwrap()
        );

        let mut unknown = enc.info().clone();
        unknown.kind = "word2vec".into();
        let err = encoder_from_info(&unknown).unwrap_err().to_string();
        assert!(err.contains("unknown kind `word2vec`"), "{err}");

        let mut bad_name = enc.info().clone();
        bad_name.name = "a@b".into();
        assert!(encoder_from_info(&bad_name).is_err());

        let mut bad_param = enc.info().clone();
        bad_param.params = serde_json::json!({"min_ngram": "three"});
        let err = encoder_from_info(&bad_param).unwrap_err().to_string();
        assert!(err.contains("min_ngram"), "{err}");
    }

    #[test]
    fn info_serde_round_trip() {
        let info = hashing("h", 1, 32).info().clone();
        let text = serde_json::to_string(&info).unwrap();
        let back: EncoderInfo = serde_json::from_str(&text).unwrap();
        assert_eq!(back, info);
    }
}
