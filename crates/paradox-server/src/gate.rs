//! [`Gate`]: what every call passes through on either transport, in order: refuse while
//! shutting down, authenticate, authorise, admit writes through the bounded write queue
//! (429 when full), run under the per-request timeout, and write the audit record of
//! mutating calls (allowed or denied).

use crate::api::ReasonRequest;
use crate::audit::{now_rfc3339, AuditLog, AuditRecord};
use crate::auth::{Access, Authenticator, Principal};
use crate::config::Limits;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::upload::{ChunkSource, SnapshotUpload};

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Who is asking and how: built by each transport from its headers or metadata.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// Request id (generated unless the client sent `x-request-id`).
    pub request_id: String,
    /// `rest`, `grpc` or `legacy`.
    pub transport: &'static str,
    /// The raw credential: `authorization` or `api-key` value.
    pub credential: Option<String>,
}

/// A new random request id (16 hex digits).
pub fn new_request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Shared policy for both transports.
#[derive(Debug)]
pub struct Gate {
    /// API keys.
    pub auth: Authenticator,
    /// Limits.
    pub limits: Limits,
    /// Metrics.
    pub metrics: Metrics,
    audit: AuditLog,
    writes: Arc<Semaphore>,
    shutting_down: AtomicBool,
}

impl Gate {
    /// A gate with these keys, limits and audit log.
    pub fn new(auth: Authenticator, limits: Limits, audit: AuditLog) -> Gate {
        Gate {
            auth,
            metrics: Metrics::new(limits.write_queue),
            writes: Arc::new(Semaphore::new(limits.write_queue)),
            limits,
            audit,
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Refuse new calls from now on (graceful shutdown).
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Authenticates only (for calls whose authorisation depends on the answer, such as
    /// listing collections).
    pub fn principal(&self, ctx: &CallContext) -> ApiResult<Principal> {
        self.auth.authenticate(ctx.credential.as_deref())
    }

    /// Runs `call` for operation `operation` on `collection` if the caller may, under the
    /// limits; audits it when `access` is not [`Access::Read`].
    pub async fn run<T, F>(
        &self,
        ctx: &CallContext,
        operation: &'static str,
        access: Access,
        collection: Option<&str>,
        call: F,
    ) -> ApiResult<T>
    where
        F: Future<Output = ApiResult<T>>,
    {
        self.run_under(ctx, operation, access, collection, true, call)
            .await
    }

    /// Like [`Gate::run`] but without the per-request timeout, for calls whose length grows
    /// with what the client sends (a snapshot upload, which bounds itself by size and by
    /// idle time instead: [`crate::upload::SnapshotUpload`]).
    pub async fn run_streaming<T, F>(
        &self,
        ctx: &CallContext,
        operation: &'static str,
        access: Access,
        collection: Option<&str>,
        call: F,
    ) -> ApiResult<T>
    where
        F: Future<Output = ApiResult<T>>,
    {
        self.run_under(ctx, operation, access, collection, false, call)
            .await
    }

    async fn run_under<T, F>(
        &self,
        ctx: &CallContext,
        operation: &'static str,
        access: Access,
        collection: Option<&str>,
        timed: bool,
        call: F,
    ) -> ApiResult<T>
    where
        F: Future<Output = ApiResult<T>>,
    {
        let principal = self.principal(ctx);
        let result = match &principal {
            Ok(p) => self.admit(p, access, collection, timed, call).await,
            Err(e) => Err(e.clone()),
        };
        if access != Access::Read {
            self.audit(ctx, principal.as_ref().ok(), operation, collection, &result);
        }
        result
    }

    /// Audits a mutating call refused before it reached [`Gate::run`] (a REST request
    /// rejected with 401 while its headers were read).
    pub fn audit_refusal(
        &self,
        ctx: &CallContext,
        operation: &str,
        collection: Option<&str>,
        error: &ApiError,
    ) {
        let principal = self.principal(ctx).ok();
        self.audit::<()>(
            ctx,
            principal.as_ref(),
            operation,
            collection,
            &Err(error.clone()),
        );
    }

    /// Writes the audit record of one call. An unauthenticated caller (no key, or a key
    /// that is not configured) is recorded as `anonymous` with no role; the message says
    /// which. The presented key itself is never written.
    fn audit<T>(
        &self,
        ctx: &CallContext,
        principal: Option<&Principal>,
        operation: &str,
        collection: Option<&str>,
        result: &ApiResult<T>,
    ) {
        let (name, role) = match principal {
            Some(p) => (p.name.as_str(), Some(p.role.as_str())),
            None => ("anonymous", None),
        };
        self.audit.record(&AuditRecord {
            time: now_rfc3339(),
            request_id: &ctx.request_id,
            transport: ctx.transport,
            principal: name,
            role,
            operation,
            collection,
            outcome: if result.is_ok() { "ok" } else { "error" },
            status: result.as_ref().err().map_or("ok", ApiError::code),
            message: result.as_ref().err().map(ToString::to_string),
        });
    }

    async fn admit<T, F>(
        &self,
        principal: &Principal,
        access: Access,
        collection: Option<&str>,
        timed: bool,
        call: F,
    ) -> ApiResult<T>
    where
        F: Future<Output = ApiResult<T>>,
    {
        if self.is_shutting_down() {
            return Err(ApiError::Unavailable("the server is shutting down".into()));
        }
        principal.authorize(access, collection)?;
        let _permit = if access == Access::Read {
            None
        } else {
            let permit = self.writes.clone().try_acquire_owned().map_err(|_| {
                ApiError::Overloaded(format!(
                    "write queue full ({} writes in flight); retry with backoff",
                    self.limits.write_queue
                ))
            })?;
            Some(QueueSlot::new(permit, &self.metrics))
        };
        if !timed {
            return call.await;
        }
        let limit = Duration::from_millis(self.limits.request_timeout_ms);
        tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
            Err(ApiError::Timeout(format!(
                "the request took longer than {} ms",
                self.limits.request_timeout_ms
            )))
        })
    }

    /// Checks the size of a batch (points, ids or searches).
    pub fn check_batch(&self, what: &str, len: usize) -> ApiResult<()> {
        if len > self.limits.max_batch {
            return Err(ApiError::InvalidArgument(format!(
                "too many {what}: {len} in one call, the limit is {} (limits.max_batch); split the batch",
                self.limits.max_batch
            )));
        }
        Ok(())
    }

    /// Checks one raw text of a living collection's write or search (`what` names it in
    /// the request): not blank, at most `limits.max_text_bytes` bytes of UTF-8.
    pub fn check_text(&self, what: &str, text: &str) -> ApiResult<()> {
        if text.trim().is_empty() {
            return Err(ApiError::InvalidArgument(format!(
                "invalid argument `{what}`: the text is empty"
            )));
        }
        if text.len() > self.limits.max_text_bytes {
            return Err(ApiError::InvalidArgument(format!(
                "invalid argument `{what}`: {} bytes of text, the limit is {} \
                 (limits.max_text_bytes)",
                text.len(),
                self.limits.max_text_bytes
            )));
        }
        Ok(())
    }

    /// Checks `k` (or a scroll page size).
    pub fn check_k(&self, field: &str, k: usize) -> ApiResult<()> {
        if k == 0 || k > self.limits.max_k {
            return Err(ApiError::InvalidArgument(format!(
                "invalid argument `{field}`: must be between 1 and {} (limits.max_k), got {k}",
                self.limits.max_k
            )));
        }
        Ok(())
    }

    /// Checks the `k` of a reasoning operation against `limits.max_k` (its lower bound,
    /// which is 0 for operations that may return the vector alone, is the operation's
    /// own check).
    pub fn check_reason(&self, request: &ReasonRequest) -> ApiResult<()> {
        let k = match request {
            ReasonRequest::Arithmetic { k, .. }
            | ReasonRequest::Analogy { k, .. }
            | ReasonRequest::Blend { k, .. }
            | ReasonRequest::Attention { k, .. } => *k,
            ReasonRequest::Trajectory { .. } => return Ok(()),
        };
        if k > self.limits.max_k {
            return Err(ApiError::InvalidArgument(format!(
                "invalid argument `k`: at most {} (limits.max_k), got {k}",
                self.limits.max_k
            )));
        }
        Ok(())
    }

    /// Wraps the bytes of a snapshot upload in the size and idle limits.
    pub fn snapshot_upload(&self, source: ChunkSource) -> SnapshotUpload {
        SnapshotUpload::new(
            source,
            self.limits.max_snapshot_bytes,
            Duration::from_millis(self.limits.request_timeout_ms),
        )
    }

    /// Refuses a snapshot upload whose declared length is over the limit, before any byte
    /// is read.
    pub fn check_snapshot_length(&self, declared: Option<u64>) -> ApiResult<()> {
        match declared {
            Some(bytes) if bytes > self.limits.max_snapshot_bytes => {
                Err(ApiError::PayloadTooLarge(format!(
                    "snapshot upload of {bytes} bytes is larger than limits.max_snapshot_bytes ({} bytes)",
                    self.limits.max_snapshot_bytes
                )))
            }
            _ => Ok(()),
        }
    }

    /// Checks the dimension of a new collection.
    pub fn check_dimension(&self, dimension: usize) -> ApiResult<()> {
        if dimension == 0 || dimension > self.limits.max_dimension {
            return Err(ApiError::InvalidArgument(format!(
                "invalid argument `dimension`: must be between 1 and {} (limits.max_dimension), got {dimension}",
                self.limits.max_dimension
            )));
        }
        Ok(())
    }
}

/// A write-queue slot; the depth gauge follows the slots held.
struct QueueSlot<'a> {
    _permit: tokio::sync::OwnedSemaphorePermit,
    metrics: &'a Metrics,
}

impl<'a> QueueSlot<'a> {
    fn new(permit: tokio::sync::OwnedSemaphorePermit, metrics: &'a Metrics) -> Self {
        metrics.write_queue_depth.inc();
        QueueSlot {
            _permit: permit,
            metrics,
        }
    }
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.metrics.write_queue_depth.dec();
    }
}
