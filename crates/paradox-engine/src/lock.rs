//! An exclusive lock on a directory (the data directory, and each collection's), so two
//! processes, or two open handles in one process, never write the same files.
//! The OS releases it when the process dies, so a crash never leaves a stale lock.

use crate::error::{EngineError, Result};
use std::fs::File;
use std::path::Path;

/// Held for the engine's lifetime.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join("LOCK");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| EngineError::io(&path, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: flock on a valid, open file descriptor owned by `file`; no memory is
            // shared with the kernel.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc != 0 {
                let err = std::io::Error::last_os_error();
                return Err(if err.kind() == std::io::ErrorKind::WouldBlock {
                    EngineError::Locked(dir.display().to_string())
                } else {
                    EngineError::io(&path, err)
                });
            }
        }
        Ok(DirLock { _file: file })
    }
}
