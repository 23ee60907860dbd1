//! Snapshot uploads: the byte stream both transports hand to
//! [`MemoryService::upload_snapshot`](crate::MemoryService::upload_snapshot).
//!
//! An upload can be far larger than a request body, so it is never held in memory and is
//! not bounded by the per-request timeout. Instead the transport wraps the client's bytes
//! in a [`SnapshotUpload`] that enforces two limits as the bytes flow:
//!
//! - size: more than `limits.max_snapshot_bytes` in total ends the stream with 413 /
//!   `RESOURCE_EXHAUSTED`;
//! - idleness: no bytes for `limits.request_timeout_ms` ends it with 504 /
//!   `DEADLINE_EXCEEDED`, so a stalled client cannot hold a write slot for ever.
//!
//! After the first error the stream ends; the consumer must discard what it received.

use crate::error::{ApiError, ApiResult};
use axum::body::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tokio_stream::Stream;

/// A stream of chunks as a transport receives them.
pub type ChunkSource = Pin<Box<dyn Stream<Item = ApiResult<Bytes>> + Send>>;

/// The bytes of an uploaded snapshot file, in order, under the size and idle limits.
pub struct SnapshotUpload {
    source: ChunkSource,
    received: u64,
    max_bytes: u64,
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
    finished: bool,
}

impl std::fmt::Debug for SnapshotUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotUpload")
            .field("received", &self.received)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl SnapshotUpload {
    /// Wraps `source`: at most `max_bytes` in total, at most `idle` between chunks.
    pub fn new(source: ChunkSource, max_bytes: u64, idle: Duration) -> SnapshotUpload {
        SnapshotUpload {
            source,
            received: 0,
            max_bytes,
            idle,
            idle_timer: Box::pin(tokio::time::sleep(idle)),
            finished: false,
        }
    }

    /// Bytes passed on so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    fn fail(&mut self, error: ApiError) -> Poll<Option<ApiResult<Bytes>>> {
        self.finished = true;
        Poll::Ready(Some(Err(error)))
    }
}

impl Stream for SnapshotUpload {
    type Item = ApiResult<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match self.source.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.received += chunk.len() as u64;
                if self.received > self.max_bytes {
                    let limit = self.max_bytes;
                    return self.fail(ApiError::PayloadTooLarge(format!(
                        "snapshot upload is larger than limits.max_snapshot_bytes ({limit} bytes)"
                    )));
                }
                // Only bytes count as progress: empty chunks must not keep a stalled
                // upload (and its write slot) alive.
                if !chunk.is_empty() {
                    let deadline = Instant::now() + self.idle;
                    self.idle_timer.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(error))) => self.fail(error),
            Poll::Ready(None) => {
                self.finished = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if self.idle_timer.as_mut().poll(cx).is_ready() {
                    let idle = self.idle.as_millis();
                    return self.fail(ApiError::Timeout(format!(
                        "snapshot upload stalled: no data for {idle} ms (limits.request_timeout_ms)"
                    )));
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    fn source(chunks: Vec<&'static [u8]>) -> ChunkSource {
        Box::pin(tokio_stream::iter(
            chunks.into_iter().map(|c| Ok(Bytes::from_static(c))),
        ))
    }

    #[tokio::test]
    async fn passes_bytes_under_the_limit_and_stops_over_it() {
        let mut upload =
            SnapshotUpload::new(source(vec![b"abc", b"de"]), 5, Duration::from_secs(60));
        let mut all = Vec::new();
        while let Some(chunk) = upload.next().await {
            all.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(all, b"abcde");
        assert_eq!(upload.received(), 5);

        let mut over = SnapshotUpload::new(
            source(vec![b"abc", b"def", b"g"]),
            5,
            Duration::from_secs(60),
        );
        assert!(over.next().await.unwrap().is_ok());
        let err = over.next().await.unwrap().unwrap_err();
        assert!(matches!(err, ApiError::PayloadTooLarge(_)), "{err}");
        assert!(err.to_string().contains("limits.max_snapshot_bytes"));
        assert!(
            over.next().await.is_none(),
            "the stream ends after an error"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn empty_chunks_do_not_keep_a_stalled_upload_alive() {
        let empty = tokio_stream::StreamExt::throttle(
            tokio_stream::iter(std::iter::repeat_with(|| Ok(Bytes::new()))),
            Duration::from_millis(20),
        );
        let mut upload = SnapshotUpload::new(Box::pin(empty), 100, Duration::from_millis(50));
        loop {
            match upload.next().await {
                Some(Ok(chunk)) => assert!(chunk.is_empty()),
                Some(Err(err)) => {
                    assert!(matches!(err, ApiError::Timeout(_)), "{err}");
                    break;
                }
                None => panic!("the stream ended without the idle error"),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_source_times_out() {
        let stalled: ChunkSource = Box::pin(tokio_stream::pending());
        let mut upload = SnapshotUpload::new(stalled, 100, Duration::from_millis(50));
        let err = upload.next().await.unwrap().unwrap_err();
        assert!(matches!(err, ApiError::Timeout(_)), "{err}");
    }
}
