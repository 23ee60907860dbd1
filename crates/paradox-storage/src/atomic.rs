//! Whole-file replacement that a crash cannot leave half done.
//!
//! The recipe (write a temporary file in the same directory, fsync it, rename it over the
//! target, fsync the directory) relies on two POSIX guarantees: `rename(2)` within one file
//! system atomically replaces the directory entry, and fsyncing a directory makes its entries
//! durable. Readers therefore see either the old file or the complete new one, before and after
//! a power loss; never a prefix.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{io_at, Result, StorageError};

/// Suffix of every temporary file this crate creates; a file with this suffix that survives a
/// crash is garbage and may be deleted.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// Replaces `path` with `bytes` atomically and durably.
///
/// When this returns `Ok`, the new contents survive a power loss; if the process or machine
/// dies earlier, `path` holds its old contents (or does not exist if it never did). A stray
/// `.{name}.{pid}.{n}.tmp` file may be left behind by a crash; it is never read.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let manifest = dir.path().join("MANIFEST");
/// paradox_storage::write_atomic(&manifest, b"{\"segments\": []}").unwrap();
/// assert_eq!(std::fs::read(&manifest).unwrap(), b"{\"segments\": []}");
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = temp_path_for(path)?;
    let outcome = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(io_at(&temp))?;
        file.write_all(bytes).map_err(io_at(&temp))?;
        file.sync_all().map_err(io_at(&temp))?;
        drop(file);
        rename_durably(&temp, path)
    })();
    if outcome.is_err() {
        // Best effort: the temp file is garbage either way, and the original error matters more.
        let _ = fs::remove_file(&temp);
    }
    outcome
}

/// Makes the directory entries of `dir` (creations, renames, deletions) durable.
///
/// On non-Unix platforms, where directories cannot be opened for syncing, this does nothing.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let handle = File::open(dir).map_err(io_at(dir))?;
        handle.sync_all().map_err(io_at(dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Renames `from` over `to` and fsyncs the directory of `to`.
pub(crate) fn rename_durably(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(io_at(to))?;
    fsync_dir(&parent_dir(to))
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A fresh temporary path next to `path`: same directory (so the final rename stays on one
/// file system), hidden, unique within this process and across processes.
pub(crate) fn temp_path_for(path: &Path) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| StorageError::InvalidState {
        path: path.to_path_buf(),
        reason: "the path has no file name; pass the path of a file, not a directory".into(),
    })?;
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.{unique}{TEMP_SUFFIX}", std::process::id()));
    Ok(parent_dir(path).join(temp_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_creates_and_replaces_without_leaving_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("MANIFEST");
        write_atomic(&path, b"first").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first");
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second, longer");
        write_atomic(&path, b"").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("MANIFEST")]);
    }

    #[test]
    fn write_atomic_into_missing_directory_reports_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("MANIFEST");
        match write_atomic(&path, b"x") {
            Err(StorageError::Io { path: p, .. }) => {
                assert!(p.starts_with(dir.path().join("no-such-dir")), "{p:?}")
            }
            other => panic!("expected Io error, got {other:?}"),
        }
    }

    #[test]
    fn write_atomic_over_a_directory_fails_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("occupied");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"x").unwrap();
        assert!(matches!(
            write_atomic(&target, b"x"),
            Err(StorageError::Io { .. })
        ));
        let leftovers = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != "occupied")
            .count();
        assert_eq!(
            leftovers, 0,
            "temp file must be removed after a failed rename"
        );
    }

    #[test]
    fn fsync_dir_works_and_reports_missing_dirs() {
        let dir = tempfile::tempdir().unwrap();
        fsync_dir(dir.path()).unwrap();
        let missing = dir.path().join("missing");
        match fsync_dir(&missing) {
            Err(StorageError::Io { path, .. }) => assert_eq!(path, missing),
            other => panic!("expected Io error, got {other:?}"),
        }
    }

    #[test]
    fn temp_paths_are_unique_siblings() {
        let a = temp_path_for(Path::new("/x/y/MANIFEST")).unwrap();
        let b = temp_path_for(Path::new("/x/y/MANIFEST")).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.parent().unwrap(), Path::new("/x/y"));
        assert!(a.to_str().unwrap().ends_with(TEMP_SUFFIX));
        assert_eq!(
            temp_path_for(Path::new("bare")).unwrap().parent().unwrap(),
            Path::new(".")
        );
        assert!(temp_path_for(Path::new("/")).is_err());
    }
}
