//! Charts drawn on the server as inline SVG (no script, no inline style: colours come from
//! the stylesheet through classes): deliveries per hour by outcome, and latency percentiles
//! (p50, p95, p99) per hour over the last 24 hours or 7 days — overall and per endpoint.

use crate::send::EndpointStats;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;

use super::Board;
use super::error::PageError;
use super::form::Fields;
use super::html::{Page, esc};
use super::session::Viewer;
use crate::retry::UnixMillis;
use crate::send::store::{DeliveryRecord, SeriesScope, StatusKind, TimeRange};
use crate::send::{DeliveryStore, Endpoint, EndpointQuery, LogQuery, PageLimit};

/// The most deliveries a chart reads (beyond it, the chart says it is partial).
const MAX_ROWS: usize = 100_000;
const HOUR_MS: u64 = 3_600_000;

/// The span a chart covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Window {
    /// The last 24 hours.
    Day,
    /// The last 7 days.
    Week,
}

impl Window {
    pub(crate) fn from_fields(fields: &Fields) -> Self {
        match fields.get("window") {
            Some("7d") => Self::Week,
            _ => Self::Day,
        }
    }

    fn hours(self) -> u64 {
        match self {
            Self::Day => 24,
            Self::Week => 24 * 7,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Day => "24h",
            Self::Week => "7d",
        }
    }

    fn switcher(self, href: &str) -> String {
        let link = |w: Window, label: &str| {
            let current = if w == self {
                " aria-current=\"true\""
            } else {
                ""
            };
            format!(
                "<a href=\"{}{}window={}\"{current}>{label}</a>",
                esc(href),
                if href.contains('?') { "&amp;" } else { "?" },
                w.name()
            )
        };
        format!(
            "<p class=\"switch\">{} {}</p>",
            link(Self::Day, "Last 24 hours"),
            link(Self::Week, "Last 7 days")
        )
    }
}

/// Outcome classes a bar is stacked from.
const OUTCOMES: [(&str, &str); 4] = [
    ("delivered", "delivered"),
    ("failed", "dead or expired"),
    ("pending", "pending"),
    ("other", "other"),
];

fn outcome(kind: StatusKind) -> usize {
    match kind {
        StatusKind::Delivered => 0,
        StatusKind::Dead | StatusKind::Expired => 1,
        StatusKind::Pending => 2,
        _ => 3,
    }
}

/// Counts per hour and outcome.
fn per_hour(records: &[DeliveryRecord], start: u64, hours: u64) -> Vec<[u64; 4]> {
    let mut buckets = vec![[0u64; 4]; hours as usize];
    for record in records {
        let at = record.created_at.as_millis();
        if at < start {
            continue;
        }
        let hour = ((at - start) / HOUR_MS) as usize;
        if let Some(bucket) = buckets.get_mut(hour) {
            bucket[outcome(record.status.kind())] += 1;
        }
    }
    buckets
}

fn label_time(at: u64) -> String {
    let text = crate::server::time::rfc3339(UnixMillis::from_millis(at));
    format!("{} {}", &text[5..10], &text[11..16])
}

const W: f64 = 720.0;
const H: f64 = 200.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 22.0;

fn axis(out: &mut String, max: f64, unit: &str, start: u64, span_ms: u64) {
    let plot_h = H - BOTTOM - 8.0;
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = 8.0 + plot_h - plot_h * f64::from(i) / 4.0;
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{W}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}{}</text>",
            LEFT - 4.0,
            y + 4.0,
            v.round(),
            esc(unit)
        );
    }
    for i in 0..=3u64 {
        let at = start + span_ms * i / 3;
        let x = LEFT + (W - LEFT - 4.0) * (i as f64) / 3.0;
        let anchor = match i {
            0 => "start",
            3 => "end",
            _ => "middle",
        };
        let _ = write!(
            out,
            "<text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            H - 6.0,
            esc(label_time(at))
        );
    }
}

/// A stacked bar chart of deliveries per hour by outcome.
fn outcome_chart(title: &str, buckets: &[[u64; 4]], start: u64, partial: bool) -> String {
    let max = buckets
        .iter()
        .map(|b| b.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = buckets.len().max(1) as f64;
    let plot_w = W - LEFT - 4.0;
    let plot_h = H - BOTTOM - 8.0;
    let bar = plot_w / n;
    let total: u64 = buckets.iter().flatten().sum();
    let mut out = format!(
        "<figure class=\"chart\"><figcaption>{}{}</figcaption>\
         <svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}: {total} deliveries\" class=\"svg-chart\">",
        esc(title),
        if partial {
            " (first 100 000 deliveries)"
        } else {
            ""
        },
        esc(title),
    );
    axis(&mut out, max, "", start, buckets.len() as u64 * HOUR_MS);
    for (i, bucket) in buckets.iter().enumerate() {
        let x = LEFT + bar * i as f64;
        let mut y = 8.0 + plot_h;
        for (k, (class, label)) in OUTCOMES.iter().enumerate() {
            let count = bucket[k];
            if count == 0 {
                continue;
            }
            let h = plot_h * count as f64 / max;
            y -= h;
            let _ = write!(
                out,
                "<rect class=\"o-{class}\" x=\"{x:.2}\" y=\"{y:.2}\" width=\"{:.2}\" height=\"{h:.2}\">\
                 <title>{}: {count} {}</title></rect>",
                (bar - 1.0).max(0.5),
                esc(label_time(start + i as u64 * HOUR_MS)),
                esc(label),
            );
        }
    }
    out.push_str("</svg><ul class=\"legend\">");
    for (class, label) in OUTCOMES {
        let _ = write!(
            out,
            "<li><span class=\"swatch o-{class}\"></span>{}</li>",
            esc(label)
        );
    }
    let _ = write!(out, "</ul><p class=\"sub\">{total} deliveries</p></figure>");
    out
}

/// The latency percentiles a chart draws, each with its CSS class.
const PERCENTILES: [(&str, &str); 3] = [("p50", "l-p50"), ("p95", "l-p95"), ("p99", "l-p99")];

/// A bucket's p50, p95 and p99 latency.
fn percentiles(stats: &EndpointStats) -> [Option<u64>; 3] {
    [
        stats.p50_latency_ms,
        stats.p95_latency_ms,
        stats.p99_latency_ms,
    ]
}

/// A line chart of latency percentiles (p50, p95, p99) per bucket.
fn latency_chart(title: &str, points: &[[Option<u64>; 3]], start: u64, step_ms: u64) -> String {
    let max = points
        .iter()
        .flatten()
        .flatten()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = points.len().max(1) as f64;
    let plot_w = W - LEFT - 4.0;
    let plot_h = H - BOTTOM - 8.0;
    let mut out = format!(
        "<figure class=\"chart\"><figcaption>{}</figcaption>\
         <svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\" class=\"svg-chart latency\">",
        esc(title),
        esc(title)
    );
    axis(&mut out, max, " ms", start, points.len() as u64 * step_ms);
    for (pick, (series, class)) in PERCENTILES.iter().enumerate() {
        let mut path = String::new();
        for (i, point) in points.iter().enumerate() {
            let Some(v) = point[pick] else { continue };
            let x = LEFT + plot_w * (i as f64 + 0.5) / n;
            let y = 8.0 + plot_h - plot_h * v as f64 / max;
            let _ = write!(
                path,
                "{}{x:.1},{y:.1} ",
                if path.is_empty() { "M" } else { "L" }
            );
            let _ = write!(
                out,
                "<circle class=\"{class}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\"><title>{}: {series} {v} ms</title></circle>",
                esc(label_time(start + i as u64 * step_ms))
            );
        }
        if !path.is_empty() {
            let _ = write!(out, "<path class=\"{class}\" d=\"{}\"/>", path.trim_end());
        }
    }
    out.push_str("</svg><ul class=\"legend\">");
    for (series, class) in PERCENTILES {
        let _ = write!(
            out,
            "<li><span class=\"swatch {class}\"></span>{series}</li>"
        );
    }
    out.push_str("</ul></figure>");
    out
}

/// The deliveries of a window (bounded), oldest first.
async fn window_records<S: DeliveryStore>(
    board: &Board<S>,
    query: LogQuery,
) -> Result<(Vec<DeliveryRecord>, bool), PageError> {
    let records = board.sender.walk_log(&query, Some(MAX_ROWS + 1)).await?;
    let partial = records.len() > MAX_ROWS;
    Ok((records, partial))
}

/// The start of the first hour of `window`: its buckets are whole hours, the last one the
/// current hour.
fn start_of(window: Window) -> u64 {
    let now = UnixMillis::now().as_millis();
    (now - now % HOUR_MS).saturating_sub((window.hours() - 1) * HOUR_MS)
}

/// The window's hours from `start`, one [`TimeRange`] each.
fn hour_windows(start: u64, window: Window) -> Vec<TimeRange> {
    (0..window.hours())
        .map(|i| {
            TimeRange::between(
                UnixMillis::from_millis(start + i * HOUR_MS),
                UnixMillis::from_millis(start + (i + 1) * HOUR_MS),
            )
        })
        .collect()
}

/// One endpoint's charts over `window`: deliveries per hour by outcome and latency per hour,
/// from one store read ([`Sender::endpoint_series`](crate::send::Sender::endpoint_series)
/// over the window's hours).
pub(crate) async fn endpoint_charts<S: DeliveryStore>(
    board: &Board<S>,
    endpoint: &Endpoint,
    window: Window,
) -> Result<String, PageError> {
    let start = start_of(window);
    let series = board
        .sender
        .endpoint_series(endpoint.id(), &hour_windows(start, window))
        .await?;
    let buckets: Vec<[u64; 4]> = series
        .iter()
        .map(|s| {
            let d = s.deliveries;
            [
                d.delivered,
                d.dead + d.expired,
                d.pending,
                d.superseded + d.cancelled + d.batched,
            ]
        })
        .collect();
    let points: Vec<[Option<u64>; 3]> = series.iter().map(percentiles).collect();
    let href = format!("{}/endpoints/{}", board.base, endpoint.id());
    Ok(format!(
        "{}<div class=\"charts\">{}{}</div>",
        window.switcher(&href),
        outcome_chart("Deliveries per hour by outcome", &buckets, start, false),
        latency_chart("Latency per hour (p50, p95, p99)", &points, start, HOUR_MS),
    ))
}

/// `GET /charts?window=24h|7d`: every (visible) delivery per hour by outcome, latency
/// percentiles per hour over every visible endpoint, and each endpoint's latency over the
/// window.
pub(crate) async fn page<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let window = Window::from_fields(&Fields::query(raw.as_deref()));
    let start = start_of(window);
    let query = LogQuery {
        owner: viewer.owner().cloned(),
        created: TimeRange {
            from: Some(UnixMillis::from_millis(start)),
            until: None,
        },
        ..LogQuery::default()
    };
    let (records, partial) = window_records(&board, query).await?;
    let buckets = per_hour(&records, start, window.hours());
    // Latency by endpoint over the whole window: the first 50 endpoints' numbers in one read.
    let endpoints = board
        .sender
        .list_endpoints(&EndpointQuery {
            owner: viewer.owner().cloned(),
            limit: PageLimit::new(50).unwrap_or_default(),
            ..EndpointQuery::default()
        })
        .await?;
    let whole = TimeRange {
        from: Some(UnixMillis::from_millis(start)),
        until: None,
    };
    let ids: Vec<_> = endpoints.items.iter().map(|e| e.id().clone()).collect();
    let stats = board.sender.endpoints_stats(&ids, whole).await?;
    let mut rows = String::new();
    let mut max = 1u64;
    let mut measured = Vec::new();
    for (endpoint, s) in endpoints.items.iter().zip(stats) {
        if let (Some(avg), Some(p95)) = (s.average_latency_ms, s.p95_latency_ms) {
            max = max.max(p95);
            measured.push((endpoint, avg, p95));
        }
    }
    for (endpoint, avg, p95) in &measured {
        let bar = |v: u64| 300.0 * v as f64 / max as f64;
        let _ = write!(
            rows,
            "<tr><th scope=\"row\"><a href=\"{base}/endpoints/{id}\">{name}</a></th><td>{avg} ms</td><td>{p95} ms</td>\
             <td><svg viewBox=\"0 0 304 16\" class=\"bar\" role=\"img\" aria-label=\"average {avg} ms, p95 {p95} ms\">\
             <rect class=\"l-p95\" x=\"0\" y=\"2\" width=\"{:.1}\" height=\"12\"/>\
             <rect class=\"l-avg\" x=\"0\" y=\"5\" width=\"{:.1}\" height=\"6\"/></svg></td></tr>",
            bar(*p95),
            bar(*avg),
            base = esc(&board.base),
            id = esc(endpoint.id().as_str()),
            name = esc(endpoint.name().unwrap_or(endpoint.id().as_str())),
        );
    }
    let latency = if measured.is_empty() {
        "<p class=\"empty\">No attempts in this window.</p>".to_owned()
    } else {
        format!(
            "<div class=\"scroll\"><table class=\"list\"><thead><tr><th scope=\"col\">Endpoint</th>\
             <th scope=\"col\">Average</th><th scope=\"col\">p95</th><th scope=\"col\">\
             <span class=\"swatch l-p95\"></span>p95 <span class=\"swatch l-avg\"></span>average</th></tr></thead>\
             <tbody>{rows}</tbody></table></div>"
        )
    };
    // Latency percentiles per hour over every visible endpoint: one store read.
    let scope = match viewer.owner() {
        Some(owner) => SeriesScope::Owner(owner.clone()),
        None => SeriesScope::All,
    };
    let overall = board
        .sender
        .series(&scope, &hour_windows(start, window))
        .await?;
    let points: Vec<[Option<u64>; 3]> = overall.iter().map(percentiles).collect();
    let body = format!(
        "{}<div class=\"charts\">{}{}</div><h2>Latency by endpoint</h2>{latency}",
        window.switcher(&format!("{}/charts", board.base)),
        outcome_chart("Deliveries per hour by outcome", &buckets, start, partial),
        latency_chart(
            "Latency per hour, all endpoints (p50, p95, p99)",
            &points,
            start,
            HOUR_MS
        ),
    );
    Ok(Page::new("Charts", body).render(&board.base, Some(&viewer)))
}

type Shared<S> = State<Arc<Board<S>>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_in_charts_are_escaped_and_bars_add_up() {
        let svg = outcome_chart("<b>x</b>", &[[1, 2, 0, 0], [0, 0, 3, 1]], 0, false);
        assert!(svg.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(!svg.contains("<b>"));
        assert_eq!(svg.matches("<rect").count(), 4);
        assert!(svg.contains("7 deliveries"));
    }
}
