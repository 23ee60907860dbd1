//! Encoders and adapter kinds named by short specs, the way the CLI (`--encoder minilm:3`,
//! `--kind low_rank:64`) and the Python package take them.

use std::path::Path;
use std::sync::Arc;

use crate::adapter::AdapterKind;
use crate::encoder::{parse_space, Encoder, EncoderInfo};
use crate::error::{LifecycleError, Result};
use crate::hashing::HashingEncoder;
use crate::minilm::{default_model_dir, MiniLmEncoder, MiniLmOptions, MINILM_KIND};

fn invalid(message: impl Into<String>) -> LifecycleError {
    LifecycleError::InvalidArgument(message.into())
}

fn split(spec: &str) -> (&str, Option<&str>) {
    spec.split_once(':')
        .map_or((spec, None), |(k, a)| (k, Some(a)))
}

/// Builds the encoder `spec` names for `space` (`NAME@VERSION`, which gives the encoder
/// its name and version): `hashing:DIM`, `minilm` (all six layers) or `minilm:LAYERS`.
/// MiniLM reads its files from `model_dir`, else from [`default_model_dir`].
pub fn encoder_from_spec(
    spec: &str,
    space: &str,
    model_dir: Option<&Path>,
) -> Result<Arc<dyn Encoder>> {
    match model_dir {
        Some(dir) => build(spec, space, ModelDir::Pinned(dir)),
        None => build(spec, space, ModelDir::Default(None)),
    }
}

/// Like [`encoder_from_spec`] with no directory named: the encoder's info names none (it
/// is looked up again wherever the collection is opened), but this process reads MiniLM's
/// files from `default_dir` when given (a server's configured model directory) instead of
/// [`default_model_dir`]. Attach the result to the space
/// ([`crate::living::LivingCollection::attach_encoder`]) so it is used.
pub fn encoder_from_spec_with_default(
    spec: &str,
    space: &str,
    default_dir: Option<&Path>,
) -> Result<Arc<dyn Encoder>> {
    build(spec, space, ModelDir::Default(default_dir))
}

/// Where a MiniLM encoder built from a spec reads its files.
#[derive(Clone, Copy)]
enum ModelDir<'a> {
    /// This directory, recorded in the info.
    Pinned(&'a Path),
    /// Not recorded in the info; read from the given directory, else [`default_model_dir`].
    Default(Option<&'a Path>),
}

fn build(spec: &str, space: &str, model_dir: ModelDir<'_>) -> Result<Arc<dyn Encoder>> {
    let (name, version) = parse_space(space).ok_or_else(|| {
        invalid(format!(
            "space `{space}` must look like NAME@VERSION to name an encoder"
        ))
    })?;
    let (kind, arg) = split(spec);
    let whole = |what: &str| -> Result<Option<usize>> {
        arg.map(|a| {
            a.parse::<usize>()
                .map_err(|_| invalid(format!("{what} needs a whole number, got `{a}`")))
        })
        .transpose()
    };
    match kind {
        "hashing" => {
            let dim = whole("hashing:DIM")?
                .ok_or_else(|| invalid("hashing needs a dimension: hashing:DIM"))?;
            Ok(Arc::new(HashingEncoder::new(name, version, dim)?))
        }
        "minilm" => {
            let layers = whole("minilm:LAYERS")?;
            let dir = match model_dir {
                ModelDir::Pinned(dir) => dir,
                ModelDir::Default(default_dir) => {
                    // No directory named: the default one is looked up again wherever
                    // the collection is opened, so no machine's path is pinned in its
                    // state.
                    if default_dir.is_none() && default_model_dir().is_none() {
                        return Err(invalid(
                            "no MiniLM model directory: give one or set PARADOX_MINILM_DIR \
                             (scripts/fetch-minilm.sh downloads it)",
                        ));
                    }
                    let info = EncoderInfo {
                        name: name.to_string(),
                        version,
                        dim: 0,
                        kind: MINILM_KIND.to_string(),
                        params: serde_json::json!({ "dir": null, "layers": layers }),
                    };
                    return Ok(Arc::new(MiniLmEncoder::from_info_in(&info, default_dir)?));
                }
            };
            let options = MiniLmOptions {
                layers,
                ..MiniLmOptions::default()
            };
            Ok(Arc::new(MiniLmEncoder::load(dir, name, version, options)?))
        }
        other => Err(invalid(format!(
            "unknown encoder `{other}`: expected hashing:DIM, minilm or minilm:LAYERS"
        ))),
    }
}

/// The adapter kind `text` names, with the default settings: `procrustes`, `affine`,
/// `low_rank:RANK` or `mlp:HIDDEN`.
pub fn adapter_kind_from_spec(text: &str) -> Result<AdapterKind> {
    let (kind, arg) = split(text);
    let number = |what: &str| -> Result<usize> {
        let arg = arg.ok_or_else(|| invalid(format!("{kind} needs {what}: {kind}:N")))?;
        arg.parse()
            .map_err(|_| invalid(format!("{kind}:N needs a whole number, got `{arg}`")))
    };
    if matches!(kind, "procrustes" | "affine") && arg.is_some() {
        return Err(invalid(format!(
            "{kind} takes no `:` argument, got `{text}`"
        )));
    }
    Ok(match kind {
        "procrustes" => AdapterKind::Procrustes,
        "affine" => AdapterKind::Affine { ridge: 1e-3 },
        "low_rank" => AdapterKind::LowRank {
            rank: number("a rank")?,
            ridge: 1e-3,
        },
        "mlp" => AdapterKind::Mlp {
            hidden: number("a hidden width")?,
            epochs: 30,
            lr: 1e-3,
        },
        other => {
            return Err(invalid(format!(
                "unknown adapter kind `{other}`: procrustes, affine, low_rank:R, mlp:H"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_build_or_name_the_problem() {
        let enc = encoder_from_spec("hashing:64", "hash@2", None).unwrap();
        assert_eq!(enc.info().space(), "hash@2");
        assert_eq!(enc.info().dim, 64);
        for (spec, space, needle) in [
            ("hashing", "h@1", "dimension"),
            ("hashing:x", "h@1", "whole number"),
            ("hashing:8", "h", "NAME@VERSION"),
            ("bert", "h@1", "unknown encoder"),
            ("minilm:two", "m@1", "whole number"),
        ] {
            let err = encoder_from_spec(spec, space, None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{spec}: {err}");
        }
        assert_eq!(
            adapter_kind_from_spec("low_rank:8").unwrap(),
            AdapterKind::LowRank {
                rank: 8,
                ridge: 1e-3
            }
        );
        assert!(adapter_kind_from_spec("low_rank").is_err());
        assert!(adapter_kind_from_spec("mlp:x").is_err());
        assert!(adapter_kind_from_spec("pca").is_err());
        assert!(adapter_kind_from_spec("affine:0.1").is_err());
    }

    #[test]
    fn a_default_directory_is_read_but_not_pinned() {
        let empty = tempfile::tempdir().unwrap();
        let err = encoder_from_spec_with_default("minilm:2", "m@1", Some(empty.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing model file"), "{err}");
        let hashing = encoder_from_spec_with_default("hashing:8", "h@1", Some(empty.path()));
        assert_eq!(hashing.unwrap().info().dim, 8);
        // With the model at hand (scripts/fetch-minilm.sh), its files are read from the
        // given directory and the info still names none.
        if let Some(dir) = default_model_dir() {
            let encoder = encoder_from_spec_with_default("minilm:1", "m@1", Some(&dir)).unwrap();
            assert!(encoder.info().params["dir"].is_null());
            assert_eq!(encoder.info().dim, 384);
        }
    }
}
