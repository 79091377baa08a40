//! [`EndpointStats`]: one endpoint's numbers over a time window, from the delivery log — the
//! figures 004 promises its users (success rate, average response time, error rate by type,
//! retry frequency, rate-limit hits).
//!
//! Stores feed an [`EndpointStatsBuilder`] with the window's deliveries (counted by status)
//! and attempts; the arithmetic lives here once.

use super::{AttemptError, StatusKind, TimeRange};
use crate::retry::UnixMillis;

/// Deliveries by where they stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    /// Waiting for an attempt.
    pub pending: u64,
    /// Accepted by the receiver.
    pub delivered: u64,
    /// Dead-lettered.
    pub dead: u64,
    /// Past their maximum age.
    pub expired: u64,
    /// Replaced by a later state before they were sent.
    pub superseded: u64,
    /// Ended because their endpoint was deleted.
    pub cancelled: u64,
    /// Sent inside a batch.
    pub batched: u64,
}

impl OutcomeCounts {
    /// Adds `n` deliveries of `kind`.
    pub fn add(&mut self, kind: StatusKind, n: u64) {
        let slot = match kind {
            StatusKind::Pending => &mut self.pending,
            StatusKind::Delivered => &mut self.delivered,
            StatusKind::Dead => &mut self.dead,
            StatusKind::Expired => &mut self.expired,
            StatusKind::Superseded => &mut self.superseded,
            StatusKind::Cancelled => &mut self.cancelled,
            StatusKind::Batched => &mut self.batched,
        };
        *slot += n;
    }

    /// Every delivery counted.
    pub fn total(&self) -> u64 {
        self.pending
            + self.delivered
            + self.dead
            + self.expired
            + self.superseded
            + self.cancelled
            + self.batched
    }
}

/// Attempts by what came back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttemptOutcomes {
    /// `2xx` answers.
    pub success: u64,
    /// `3xx` answers (not followed: a failure).
    pub redirect: u64,
    /// `4xx` answers other than 429.
    pub client_error: u64,
    /// `429 Too Many Requests`: the receiver's rate limit (also in [`EndpointStats::rate_limited`]).
    pub rate_limited: u64,
    /// `5xx` answers (and anything else outside 200–499).
    pub server_error: u64,
    /// No answer within the deadline.
    pub timeout: u64,
    /// Connecting failed or the connection broke.
    pub connection: u64,
    /// The destination was refused, or the request could not be signed.
    pub refused: u64,
    /// Anything else.
    pub other: u64,
}

/// Whose deliveries a series counts ([`DeliveryLog::series`](super::DeliveryLog::series)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeriesScope {
    /// One endpoint's.
    Endpoint(crate::send::EndpointId),
    /// Every endpoint of one owner (a customer's overall numbers).
    Owner(crate::send::Owner),
    /// Every delivery (an operator's overall numbers).
    All,
}

/// One endpoint's numbers over a window.
///
/// Deliveries are counted by when their message was published, attempts by when they
/// started; both inside [`window`](Self::window).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// The span the numbers cover.
    pub window: TimeRange,
    /// Deliveries published in the window, by where they stand now.
    pub deliveries: OutcomeCounts,
    /// Delivered among finished deliveries (delivered, dead, expired), 0–1; `None` when none
    /// finished.
    pub success_rate: Option<f64>,
    /// Attempts made in the window.
    pub attempts: u64,
    /// Attempts by outcome: the error rate by type.
    pub outcomes: AttemptOutcomes,
    /// Attempts after a delivery's first (automatic or by hand).
    pub retries: u64,
    /// Attempts the receiver answered `429`: rate-limit waits.
    pub rate_limited: u64,
    /// Mean latency of the window's attempts, in milliseconds.
    pub average_latency_ms: Option<u64>,
    /// Median latency (50th percentile, nearest rank), in milliseconds.
    pub p50_latency_ms: Option<u64>,
    /// 95th-percentile latency (nearest rank), in milliseconds.
    pub p95_latency_ms: Option<u64>,
    /// 99th-percentile latency (nearest rank), in milliseconds.
    pub p99_latency_ms: Option<u64>,
    /// When the window's last successful attempt started.
    pub last_success: Option<UnixMillis>,
    /// When the window's last failed attempt started.
    pub last_failure: Option<UnixMillis>,
}

/// One attempt as the statistics see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptSample {
    /// The attempt number (1 for a delivery's first).
    pub attempt: u32,
    /// When it started.
    pub started_at: UnixMillis,
    /// How long it took.
    pub latency_ms: u64,
    /// The response status, if one came.
    pub status: Option<u16>,
    /// Why there was none.
    pub error: Option<AttemptError>,
}

impl From<&super::AttemptLog> for AttemptSample {
    fn from(log: &super::AttemptLog) -> Self {
        AttemptSample {
            attempt: log.attempt,
            started_at: log.started_at,
            latency_ms: log.latency_ms,
            status: log.status,
            error: log.error,
        }
    }
}

/// Accumulates a window's deliveries and attempts into [`EndpointStats`].
#[derive(Debug, Clone, Default)]
pub struct EndpointStatsBuilder {
    window: TimeRange,
    deliveries: OutcomeCounts,
    outcomes: AttemptOutcomes,
    retries: u64,
    latencies: Vec<u64>,
    last_success: Option<UnixMillis>,
    last_failure: Option<UnixMillis>,
}

impl EndpointStatsBuilder {
    /// Numbers over `window`.
    pub fn new(window: TimeRange) -> Self {
        EndpointStatsBuilder {
            window,
            ..Self::default()
        }
    }

    /// Counts `n` deliveries now in `kind`.
    pub fn deliveries(&mut self, kind: StatusKind, n: u64) -> &mut Self {
        self.deliveries.add(kind, n);
        self
    }

    /// Counts one delivery, now in `kind`, if it was created within the window, and those
    /// of its `attempts` that started within the window (a store that walks its deliveries
    /// one by one, as the in-memory one does).
    pub fn delivery(
        &mut self,
        kind: StatusKind,
        created_at: UnixMillis,
        attempts: impl IntoIterator<Item = AttemptSample>,
    ) -> &mut Self {
        if self.window.contains(created_at) {
            self.deliveries(kind, 1);
        }
        for sample in attempts {
            if self.window.contains(sample.started_at) {
                self.attempt(sample);
            }
        }
        self
    }

    /// Counts one attempt.
    pub fn attempt(&mut self, sample: AttemptSample) -> &mut Self {
        let o = &mut self.outcomes;
        let success = match (sample.status, sample.error) {
            (Some(200..=299), _) => {
                o.success += 1;
                true
            }
            (Some(300..=399), _) => {
                o.redirect += 1;
                false
            }
            (Some(429), _) => {
                o.rate_limited += 1;
                false
            }
            (Some(400..=499), _) => {
                o.client_error += 1;
                false
            }
            (Some(_), _) => {
                o.server_error += 1;
                false
            }
            (None, Some(AttemptError::Timeout)) => {
                o.timeout += 1;
                false
            }
            (None, Some(AttemptError::Connection)) => {
                o.connection += 1;
                false
            }
            (None, Some(AttemptError::Refused(_) | AttemptError::Unsignable)) => {
                o.refused += 1;
                false
            }
            (None, _) => {
                o.other += 1;
                false
            }
        };
        let last = if success {
            &mut self.last_success
        } else {
            &mut self.last_failure
        };
        *last = (*last).max(Some(sample.started_at));
        if sample.attempt > 1 {
            self.retries += 1;
        }
        self.latencies.push(sample.latency_ms);
        self
    }

    /// The numbers.
    pub fn build(mut self) -> EndpointStats {
        let d = self.deliveries;
        let finished = d.delivered + d.dead + d.expired;
        let attempts = self.latencies.len() as u64;
        let average_latency_ms = (attempts > 0).then(|| {
            (self.latencies.iter().map(|&l| u128::from(l)).sum::<u128>() / u128::from(attempts))
                as u64
        });
        self.latencies.sort_unstable();
        EndpointStats {
            window: self.window,
            deliveries: d,
            success_rate: (finished > 0).then(|| d.delivered as f64 / finished as f64),
            attempts,
            outcomes: self.outcomes,
            retries: self.retries,
            rate_limited: self.outcomes.rate_limited,
            average_latency_ms,
            p50_latency_ms: nearest_rank(&self.latencies, 50),
            p95_latency_ms: nearest_rank(&self.latencies, 95),
            p99_latency_ms: nearest_rank(&self.latencies, 99),
            last_success: self.last_success,
            last_failure: self.last_failure,
        }
    }
}

/// The `pct`th percentile of sorted values by nearest rank.
fn nearest_rank(sorted: &[u64], pct: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (pct * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// One builder per window of a series: each delivery and attempt is counted into every
/// window holding its time. What the SQL stores feed their rows into.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) struct Series<'a> {
    windows: &'a [TimeRange],
    builders: Vec<EndpointStatsBuilder>,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl<'a> Series<'a> {
    pub(crate) fn new(windows: &'a [TimeRange]) -> Self {
        let builders = windows
            .iter()
            .map(|w| EndpointStatsBuilder::new(*w))
            .collect();
        Series { windows, builders }
    }

    /// A delivery published at `at`.
    pub(crate) fn delivery(&mut self, kind: StatusKind, at: UnixMillis) {
        for (window, stats) in self.windows.iter().zip(&mut self.builders) {
            if window.contains(at) {
                stats.deliveries(kind, 1);
            }
        }
    }

    /// An attempt, counted where it started.
    pub(crate) fn attempt(&mut self, sample: AttemptSample) {
        for (window, stats) in self.windows.iter().zip(&mut self.builders) {
            if window.contains(sample.started_at) {
                stats.attempt(sample);
            }
        }
    }

    pub(crate) fn build(self) -> Vec<EndpointStats> {
        self.builders
            .into_iter()
            .map(EndpointStatsBuilder::build)
            .collect()
    }
}

/// The span every window covers (open ends stay open): what a store reads once to answer
/// [`DeliveryLog::endpoint_series`](super::DeliveryLog::endpoint_series).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn span(windows: &[TimeRange]) -> TimeRange {
    let from = windows
        .iter()
        .map(|w| w.from)
        .try_fold(None::<UnixMillis>, |lowest, from| {
            from.map(|f| Some(lowest.map_or(f, |l| l.min(f))))
        })
        .flatten();
    let until = windows
        .iter()
        .map(|w| w.until)
        .try_fold(None::<UnixMillis>, |highest, until| {
            until.map(|u| Some(highest.map_or(u, |h| h.max(u))))
        })
        .flatten();
    TimeRange { from, until }
}

/// A scope as the SQL stores filter it: the condition on the deliveries row `d` (with the
/// placeholder `param`, e.g. `?1` or `$1`) and the value to bind there. Each scope gets a
/// statement of its own, so each keeps its index (a `param IS NULL OR …` would not).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn scope_condition<'a>(
    scope: &'a SeriesScope,
    param: &str,
) -> (String, Option<&'a str>) {
    match scope {
        SeriesScope::Endpoint(endpoint) => {
            (format!("d.endpoint_id = {param}"), Some(endpoint.as_str()))
        }
        SeriesScope::Owner(owner) => (format!("d.owner = {param}"), Some(owner.as_str())),
        SeriesScope::All => (format!("{param} IS NULL"), None),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentiles_are_nearest_rank() {
        // 10, 20, …, 200: p50 is the 10th, p95 the 19th, p99 the 20th.
        let mut builder = super::EndpointStatsBuilder::new(super::TimeRange::all());
        for (i, latency) in (1..=20u64).rev().map(|n| n * 10).enumerate() {
            builder.attempt(sample(1, i as u64, latency, Some(200)));
        }
        let stats = builder.build();
        assert_eq!(
            (
                stats.p50_latency_ms,
                stats.p95_latency_ms,
                stats.p99_latency_ms
            ),
            (Some(100), Some(190), Some(200))
        );
        let empty = super::EndpointStatsBuilder::new(super::TimeRange::all()).build();
        assert_eq!(empty.p50_latency_ms, None);
    }

    use super::*;

    fn sample(attempt: u32, at: u64, latency_ms: u64, status: Option<u16>) -> AttemptSample {
        AttemptSample {
            attempt,
            started_at: UnixMillis::from_millis(at),
            latency_ms,
            status,
            error: status.is_none().then_some(AttemptError::Timeout),
        }
    }

    #[test]
    fn numbers_from_a_small_log() {
        let mut b = EndpointStatsBuilder::new(TimeRange::all());
        b.deliveries(StatusKind::Delivered, 3)
            .deliveries(StatusKind::Dead, 1)
            .deliveries(StatusKind::Pending, 2);
        for (i, latency) in (1..=20).enumerate() {
            b.attempt(sample(
                1 + (i % 2) as u32,
                i as u64,
                latency * 10,
                Some(200),
            ));
        }
        b.attempt(sample(2, 100, 5, Some(429)));
        b.attempt(sample(3, 99, 5, None));
        let s = b.build();
        assert_eq!(s.attempts, 22);
        assert_eq!(s.success_rate, Some(0.75));
        assert_eq!(s.outcomes.success, 20);
        assert_eq!(s.rate_limited, 1);
        assert_eq!(s.outcomes.timeout, 1);
        assert_eq!(s.retries, 12);
        assert_eq!(s.p95_latency_ms, Some(190)); // rank ceil(0.95 * 22) = 21 of 22
        assert_eq!(s.last_success, Some(UnixMillis::from_millis(19)));
        assert_eq!(s.last_failure, Some(UnixMillis::from_millis(100)));
        assert_eq!(s.average_latency_ms, Some((2100 + 10) / 22));
    }

    #[test]
    fn an_empty_window_has_no_rates() {
        let s = EndpointStatsBuilder::new(TimeRange::all()).build();
        assert_eq!(
            (s.success_rate, s.p95_latency_ms, s.average_latency_ms),
            (None, None, None)
        );
    }

    #[test]
    fn nearest_rank_matches_the_definition() {
        assert_eq!(nearest_rank(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95), Some(10));
        assert_eq!(nearest_rank(&[7], 95), Some(7));
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(nearest_rank(&hundred, 95), Some(95));
    }
}
