//! Snapshot files of the single-node service: their names, the claim of a fresh name,
//! uploads' working files, and the byte stream of a download.

use crate::api::SnapshotDescription;
use crate::error::{ApiError, ApiResult};
use std::path::{Path, PathBuf};

/// Checks a snapshot file name taken from a request: it must name a file directly inside
/// the collection's snapshot directory.
pub(super) fn check_snapshot_name(snapshot: &str) -> ApiResult<()> {
    let ok = !snapshot.is_empty()
        && snapshot.len() <= 200
        && snapshot.ends_with(".snap")
        && !snapshot.starts_with('.')
        && snapshot
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::InvalidArgument(format!(
            "invalid snapshot name `{snapshot}`: expected a name from the snapshot list, like `docs-1700000000000.snap`"
        )))
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Where uploads are written until verified: inside the snapshot directory (so the final
/// hard link stays on one file system), under a name no collection can have.
pub(super) const UPLOADS_DIR: &str = ".uploads";

/// Removes the upload's working file when dropped: a failed, refused or abandoned
/// upload (the client went away and the handler was dropped) leaves nothing behind, and
/// a kept one lives on under its hard-linked snapshot name.
pub(super) struct PartialUpload {
    pub(super) path: PathBuf,
}

impl Drop for PartialUpload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Claims `dir/<name>-<millis>.snap` for the first `millis` from now at which `claim`
/// (which must fail with `AlreadyExists` when the path exists) succeeds.
pub(super) fn claim_snapshot_name(
    dir: &Path,
    name: &str,
    mut claim: impl FnMut(&Path) -> std::io::Result<()>,
) -> std::io::Result<PathBuf> {
    let mut millis = now_millis();
    loop {
        let path = dir.join(format!("{name}-{millis}.snap"));
        match claim(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => millis += 1,
            Err(e) => return Err(e),
        }
    }
}

pub(super) fn io_failure(what: &str, path: &Path, e: std::io::Error) -> ApiError {
    tracing::error!(error = %e, path = %path.display(), "{what}");
    ApiError::Internal(format!("{what}; see the server log"))
}

pub(super) fn describe_snapshot(collection: &str, path: &Path) -> Option<SnapshotDescription> {
    let meta = std::fs::metadata(path).ok()?;
    let name = path.file_name()?.to_str()?.to_string();
    let created_at = name
        .strip_suffix(".snap")
        .and_then(|stem| stem.rsplit('-').next())
        .and_then(|millis| millis.parse().ok())
        .unwrap_or(0);
    Some(SnapshotDescription {
        name,
        collection: collection.to_string(),
        bytes: meta.len(),
        created_at,
    })
}

/// Reads an `AsyncRead` as a stream of 64 KiB chunks.
pub fn chunk_stream(
    mut reader: std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>,
) -> impl tokio_stream::Stream<Item = std::io::Result<Vec<u8>>> + Send {
    use tokio::io::AsyncReadExt;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send(Ok(buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    break;
                }
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_cannot_escape() {
        assert!(check_snapshot_name("docs-1.snap").is_ok());
        for bad in ["../x.snap", "a/b.snap", ".hidden.snap", "x.tar", ""] {
            assert!(check_snapshot_name(bad).is_err(), "{bad}");
        }
    }
}
