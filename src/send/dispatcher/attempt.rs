//! One attempt run on the runtime's workers: signing, building the request, sending it and
//! reading the answer happen in a task of its own, so the dispatcher's task (the one owner of
//! claims and per-endpoint gates) only admits, spawns and plans.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::super::Endpoint;
use super::super::Transport;
use super::super::signing::{Attempt, signed_request};
use super::super::store::ClaimedDelivery;
use super::super::telemetry::AttemptSpan;
use super::plan::Attempted;
use crate::retry::UnixMillis;
use crate::scheme::Scheme;

/// What came of an attempt's task.
pub(super) enum Ran {
    /// The request went out (or failed to): the planner decides what comes next.
    Sent(Attempted),
    /// No request could be built (no active secret, a header HTTP cannot carry): the
    /// delivery is dead-lettered without one.
    Unsignable {
        claim: ClaimedDelivery,
        attempt: u32,
        started_at: UnixMillis,
    },
}

/// An attempt that ran, with its span.
pub(super) struct Finished {
    pub(super) ran: Ran,
    pub(super) span: AttemptSpan,
}

/// Everything an attempt's task needs, moved into it.
pub(super) struct Job<T> {
    pub(super) transport: Arc<T>,
    pub(super) endpoint: Arc<Endpoint>,
    pub(super) scheme: Option<Arc<dyn Scheme>>,
    pub(super) claim: ClaimedDelivery,
    pub(super) attempt: u32,
    pub(super) started_at: UnixMillis,
    pub(super) timeout: Duration,
    pub(super) span: AttemptSpan,
}

impl<T: Transport> Job<T> {
    /// Spawns the attempt on the current runtime. The returned future resolves when it
    /// has finished; dropping it aborts the attempt (shutdown past its deadline).
    pub(super) fn spawn(self) -> Running {
        let span = self.span.clone();
        let task = tokio::spawn(span.instrument(self.run()));
        Running { task }
    }

    async fn run(self) -> Finished {
        let Job {
            transport,
            endpoint,
            scheme,
            claim,
            attempt,
            started_at,
            timeout,
            span,
        } = self;
        let request = signed_request(
            &endpoint,
            scheme.as_deref(),
            &Attempt {
                event_id: claim.event_id.as_str(),
                event_type: claim.event_type.as_str(),
                delivery_id: claim.delivery.as_str(),
                attempt,
            },
            &claim.body,
            started_at,
            timeout,
        );
        let ran = match request {
            Ok(request) => {
                let request_headers = request.logged_headers();
                let begun = Instant::now();
                let result = transport.send(request).await;
                Ran::Sent(Attempted {
                    claim,
                    attempt,
                    started_at,
                    latency: begun.elapsed(),
                    request_headers,
                    result,
                })
            }
            Err(_) => Ran::Unsignable {
                claim,
                attempt,
                started_at,
            },
        };
        Finished { ran, span }
    }
}

/// An attempt's task; aborted when dropped.
pub(super) struct Running {
    task: tokio::task::JoinHandle<Finished>,
}

impl Future for Running {
    type Output = Finished;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Finished> {
        match Pin::new(&mut self.task).poll(cx) {
            Poll::Ready(Ok(finished)) => Poll::Ready(finished),
            // The transport panicked: the dispatcher's task panics with it, as it did when
            // it polled the attempt itself.
            Poll::Ready(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled: only when the runtime shuts down, which ends the dispatcher too.
            Poll::Ready(Err(_)) | Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}
