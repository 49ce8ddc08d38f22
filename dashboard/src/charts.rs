//! The charts, drawn with `plotters` into inline SVG strings.

use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use plotters::coord::Shift;
use plotters::prelude::*;

use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis;
use super::error::HtmlError;
use super::marker::{Marker, MarkerKind, VerdictKind};
use super::timeline::{Bucket, Timeline};
use super::trace::SiteTrace;
use async_upload_runtime::metrics::{ExecutionType, Histogram};

/// Width and height of a time chart, in CSS pixels.
const SIZE: (u32, u32) = (960, 300);
const FONT: &str = "sans-serif";

/// Series colours. The browser test looks for them, so each is distinct.
pub(crate) const SYNC: RGBColor = RGBColor(31, 119, 180);
pub(crate) const ASYNC: RGBColor = RGBColor(230, 97, 1);
pub(crate) const FALLBACK: RGBColor = RGBColor(148, 103, 189);
pub(crate) const THRESHOLD: RGBColor = RGBColor(44, 160, 44);
pub(crate) const ROLLBACK: RGBColor = RGBColor(214, 39, 40);
const ENTERED: RGBColor = RGBColor(23, 190, 207);
const OPERATOR: RGBColor = RGBColor(188, 189, 34);
const VERDICT: RGBColor = RGBColor(127, 127, 127);
const GRID: RGBColor = RGBColor(225, 225, 225);

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Drawn = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// The colour of an execution type, everywhere on the page.
pub(crate) const fn color(execution_type: ExecutionType) -> RGBColor {
    match execution_type {
        ExecutionType::Sync => SYNC,
        ExecutionType::Async => ASYNC,
        ExecutionType::SyncFallback => FALLBACK,
    }
}

/// Draws into an SVG string of `size`.
fn svg(size: (u32, u32), draw: impl FnOnce(&Area<'_>) -> Drawn) -> Result<String, HtmlError> {
    let mut out = String::new();
    {
        let area = SVGBackend::with_string(&mut out, size).into_drawing_area();
        area.fill(&WHITE)
            .and_then(|()| draw(&area))
            .and_then(|()| area.present())
            .map_err(|e| HtmlError::new(format!("drawing a chart failed: {e}")))?;
    }
    Ok(out)
}

/// Seconds since the epoch, as the time axes count.
#[allow(clippy::cast_precision_loss)]
fn secs(ts: SystemTime) -> f64 {
    ts.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

/// A marker's colour and line width.
fn marker_style(kind: &MarkerKind) -> (RGBColor, u32) {
    match kind {
        MarkerKind::StageEntered { .. } => (ENTERED, 2),
        MarkerKind::Verdict(verdict) => (
            if *verdict == VerdictKind::Rollback {
                ROLLBACK
            } else {
                VERDICT
            },
            1,
        ),
        MarkerKind::Rollback | MarkerKind::WouldRollBack => (ROLLBACK, 3),
        MarkerKind::RollbackCleared => (THRESHOLD, 2),
        MarkerKind::Operator(_) => (OPERATOR, 2),
    }
}

/// Markers closer than this, in pixels, share one label (`3–5`).
const CLUSTER_PX: i32 = 10;
/// Rows of marker labels at the top of a chart.
const LABEL_ROWS: usize = 3;

/// A vertical line for every marker in `x`, numbered as the page's events
/// table numbers them (`markers` is that table, in order). Labels never
/// overlap: markers a few pixels apart share one (`3–5`), and labels go to
/// the first of three rows with room, else right of the last one.
fn draw_markers<'a, CT>(
    area: &Area<'_>,
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    markers: &[&Marker],
    x: &Range<f64>,
    y: (f64, f64),
) -> Drawn
where
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    // (pixel x, first number, last number, colour)
    let mut clusters: Vec<(i32, usize, usize, RGBColor)> = Vec::new();
    for (i, marker) in markers.iter().enumerate() {
        let at = secs(marker.ts);
        if !x.contains(&at) {
            continue;
        }
        let (color, width) = marker_style(&marker.kind);
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(at, y.0), (at, y.1)],
            color.stroke_width(width),
        )))?;
        let px = chart.as_coord_spec().translate(&(at, y.1)).0;
        match clusters.last_mut() {
            Some(cluster) if px - cluster.0 < CLUSTER_PX => cluster.2 = i + 1,
            _ => clusters.push((px, i + 1, i + 1, color)),
        }
    }
    let top = chart.as_coord_spec().translate(&(x.start, y.1)).1;
    let mut row_end = [i32::MIN; LABEL_ROWS];
    for (px, first, last, color) in clusters {
        let label = if first == last {
            first.to_string()
        } else {
            format!("{first}–{last}")
        };
        let width = 7 * i32::try_from(label.chars().count()).unwrap_or(8) + 4;
        let left = px + 3;
        let (row, left) = if let Some(row) = row_end.iter().position(|&end| end + 2 <= left) {
            (row, left)
        } else {
            let (row, end) = row_end
                .iter()
                .copied()
                .enumerate()
                .min_by_key(|&(_, end)| end)
                .unwrap_or((0, left));
            (row, end + 2)
        };
        row_end[row] = left + width;
        let y_px = top + 2 + 12 * i32::try_from(row).unwrap_or(0);
        area.draw(&Text::new(
            label,
            (left, y_px),
            (FONT, 11).into_font().color(&color),
        ))?;
    }
    Ok(())
}

/// The x axis of a time chart: ticks at round clock times
/// ([`axis::time_ticks`]), unique labels, and their grid lines.
fn time_axis<CT>(area: &Area<'_>, coord: &CT, x: &Range<f64>, y: (f64, f64)) -> Drawn
where
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    let (step, ticks) = axis::time_ticks(x, 8);
    let labels = axis::time_labels(&ticks, step);
    let style = (FONT, 12)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (&at, label) in ticks.iter().zip(labels) {
        let bottom = coord.translate(&(at, y.0));
        let top = coord.translate(&(at, y.1));
        area.draw(&PathElement::new(vec![bottom, top], GRID.stroke_width(1)))?;
        area.draw(&Text::new(label, (bottom.0, bottom.1 + 5), style.clone()))?;
    }
    Ok(())
}

/// Runs of consecutive points with a value: a series breaks where a
/// bucket has no data instead of drawing a line across the gap.
fn runs(points: impl Iterator<Item = (f64, Option<f64>)>) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (x, y) in points {
        match y {
            Some(y) if y.is_finite() => runs
                .last_mut()
                .unwrap_or_else(|| unreachable!())
                .push((x, y)),
            _ => {
                if runs.last().is_some_and(|r| !r.is_empty()) {
                    runs.push(Vec::new());
                }
            }
        }
    }
    runs.retain(|r| !r.is_empty());
    runs
}

/// A line series made of `runs`, with a dot on lone points, and its legend entry.
fn draw_runs<'a, CT>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    runs: Vec<Vec<(f64, f64)>>,
    style: ShapeStyle,
    label: &str,
) -> Drawn
where
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    let mut first = true;
    for run in runs {
        let dots: Vec<(f64, f64)> = if run.len() == 1 {
            run.clone()
        } else {
            Vec::new()
        };
        let series = chart.draw_series(LineSeries::new(run, style))?;
        if first {
            series.label(label).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], style.stroke_width(3))
            });
            first = false;
        }
        chart.draw_series(dots.into_iter().map(|p| Circle::new(p, 3, style.filled())))?;
    }
    Ok(())
}

fn legend<'a, CT>(chart: &mut ChartContext<'a, SVGBackend<'a>, CT>) -> Drawn
where
    CT: plotters::coord::CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(GRID)
        .label_font((FONT, 12))
        .draw()
}

/// The x range of the time charts: the timeline's span.
fn time_range(timeline: &Timeline) -> Range<f64> {
    timeline.span().map_or(0.0..60.0, |(start, end)| start..end)
}

/// Each bucket's middle on the time axis.
fn mids(timeline: &Timeline) -> impl Iterator<Item = (f64, &Bucket)> {
    let half = timeline.width().as_secs_f64() / 2.0;
    timeline.buckets().map(move |(start, b)| (start + half, b))
}

/// A linear axis's labels: as many decimals as its step needs.
fn linear(range: &Range<f64>, labels: usize) -> impl Fn(&f64) -> String {
    let decimals = axis::decimals(range, labels);
    move |v| format!("{v:.decimals$}")
}

/// Y labels per time chart.
const Y_LABELS: usize = 8;

/// A chart's builder with the page's caption style, margin and label
/// areas (the x labels' area can be changed after).
fn titled<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(caption, (FONT, 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(55);
    builder
}

/// Calls per minute per execution type.
pub(crate) fn calls_over_time(trace: &SiteTrace, markers: &[&Marker]) -> Result<String, HtmlError> {
    let timeline = &trace.timeline;
    let per_minute = 60.0 / timeline.width().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = |n: u64| n as f64 * per_minute;
    let top = timeline
        .buckets()
        .flat_map(|(_, b)| b.calls)
        .max()
        .map_or(1.0, |n| rate(n).max(1.0) * 1.15);
    let x = time_range(timeline);
    let y_label = linear(&(0.0..top), Y_LABELS);
    svg(SIZE, |area| {
        let mut chart =
            titled(area, "Calls per minute, by path").build_cartesian_2d(x.clone(), 0.0..top)?;
        chart
            .configure_mesh()
            .light_line_style(GRID.mix(0.5))
            .bold_line_style(GRID)
            .x_labels(0)
            .y_labels(Y_LABELS)
            .y_label_formatter(&y_label)
            .y_desc("calls / min")
            .draw()?;
        time_axis(area, chart.as_coord_spec(), &x, (0.0, top))?;
        for et in ExecutionType::ALL {
            if timeline.buckets().all(|(_, b)| b.calls[et.index()] == 0) {
                continue;
            }
            let points = mids(timeline).map(|(t, b)| (t, Some(rate(b.calls[et.index()]))));
            draw_runs(
                &mut chart,
                runs(points),
                color(et).stroke_width(2),
                et.as_str(),
            )?;
        }
        draw_markers(area, &mut chart, markers, &x, (0.0, top))?;
        legend(&mut chart)
    })
}

/// Thresholds drawn on the success-rate chart.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RateLines {
    /// The stage's success criterion, a fraction.
    pub(crate) stage: Option<f64>,
    /// The rollback trigger, a fraction.
    pub(crate) rollback: Option<f64>,
}

/// The async path's success rate per bucket against the thresholds.
pub(crate) fn success_over_time(
    trace: &SiteTrace,
    markers: &[&Marker],
    lines: RateLines,
) -> Result<String, HtmlError> {
    let timeline = &trace.timeline;
    let lowest = timeline
        .buckets()
        .filter_map(|(_, b)| b.success_rate())
        .chain(lines.rollback)
        .chain(lines.stage)
        .fold(1.0_f64, f64::min);
    let bottom = ((lowest * 100.0) - 2.0).floor().max(0.0);
    let x = time_range(timeline);
    let percent = linear(&(bottom..100.5), Y_LABELS);
    let y_label = |v: &f64| format!("{}%", percent(v));
    svg(SIZE, |area| {
        let mut chart = titled(area, "Async success rate (a fallback counts as a failure)")
            .build_cartesian_2d(x.clone(), bottom..100.5)?;
        chart
            .configure_mesh()
            .light_line_style(GRID.mix(0.5))
            .bold_line_style(GRID)
            .x_labels(0)
            .y_labels(Y_LABELS)
            .y_label_formatter(&y_label)
            .y_desc("success")
            .draw()?;
        time_axis(area, chart.as_coord_spec(), &x, (bottom, 100.5))?;
        for (value, color, label) in [
            (lines.stage, THRESHOLD, "stage criterion"),
            (lines.rollback, ROLLBACK, "rollback trigger"),
        ] {
            if let Some(value) = value {
                let y = value * 100.0;
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x.start, y), (x.end, y)],
                        color.mix(0.8).stroke_width(1),
                    )))?
                    .label(format!("{label} {y:.1}%"))
                    .legend(move |(lx, ly)| {
                        PathElement::new(vec![(lx, ly), (lx + 18, ly)], color.stroke_width(2))
                    });
            }
        }
        let points = mids(timeline).map(|(t, b)| (t, b.success_rate().map(|r| r * 100.0)));
        draw_runs(
            &mut chart,
            runs(points),
            ASYNC.stroke_width(2),
            "async success",
        )?;
        draw_markers(area, &mut chart, markers, &x, (bottom, 100.5))?;
        legend(&mut chart)
    })
}

/// A quantile series over time: label, colour, opacity, which histogram, q.
type Quantiles = (&'static str, RGBColor, f64, fn(&Bucket) -> &Histogram, f64);

/// One path's distribution: its histogram and display bins.
type PathBins<'a> = (ExecutionType, &'a Histogram, Vec<(i32, f64)>);

/// Async and sync p50 and p95 per bucket, on a log axis; `matched` is
/// the stage's size-matched ratio, for the caption.
pub(crate) fn latency_over_time(
    trace: &SiteTrace,
    markers: &[&Marker],
    matched: Option<(f64, f64)>,
) -> Result<String, HtmlError> {
    let timeline = &trace.timeline;
    let ms = |h: &Histogram, q: f64| h.quantile(q).map(|us| (us / 1000.0).max(0.001));
    let series: [Quantiles; 4] = [
        ("async p50", ASYNC, 1.0, |b| &b.async_latency, 0.5),
        ("async p95", ASYNC, 0.45, |b| &b.async_latency, 0.95),
        ("sync p50", SYNC, 1.0, |b| &b.sync_latency, 0.5),
        ("sync p95", SYNC, 0.45, |b| &b.sync_latency, 0.95),
    ];
    let values = || {
        series.iter().flat_map(|&(_, _, _, pick, q)| {
            timeline.buckets().filter_map(move |(_, b)| ms(pick(b), q))
        })
    };
    let low = values().fold(f64::INFINITY, f64::min);
    let high = values().fold(0.0_f64, f64::max);
    let (low, high) = if low.is_finite() {
        (low / 1.5, high * 1.5)
    } else {
        (1.0, 1000.0)
    };
    let x = time_range(timeline);
    let caption = match matched {
        Some((p50, p95)) => format!(
            "Latency over time: async vs sync, p50 and p95 (at equal size: {p50:.2}x, {p95:.2}x)"
        ),
        None => "Latency over time: async vs sync, p50 and p95".to_owned(),
    };
    svg(SIZE, |area| {
        let mut chart =
            titled(area, &caption).build_cartesian_2d(x.clone(), (low..high).log_scale())?;
        chart
            .configure_mesh()
            .light_line_style(GRID.mix(0.5))
            .bold_line_style(GRID)
            .x_labels(0)
            .y_labels(Y_LABELS)
            .y_label_formatter(&|v| format_ms(*v))
            .y_desc("ms (log)")
            .draw()?;
        time_axis(area, chart.as_coord_spec(), &x, (low, high))?;
        for (label, color, alpha, pick, q) in series {
            let points = mids(timeline).map(|(t, b)| (t, ms(pick(b), q)));
            let style = color.mix(alpha).stroke_width(2);
            draw_runs(&mut chart, runs(points), style, label)?;
        }
        draw_markers(area, &mut chart, markers, &x, (low, high))?;
        legend(&mut chart)
    })
}

/// Milliseconds, short, with three significant digits (seconds from 1 s):
/// distinct ticks of a log axis keep distinct labels.
pub(crate) fn format_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{}s", axis::significant(ms / 1000.0))
    } else {
        axis::significant(ms)
    }
}

/// Display bins per decade of the latency distribution.
const BINS_PER_DECADE: f64 = 10.0;

/// The share of calls (percent) per log-spaced bin, milliseconds: `(bin, share)`.
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
fn distribution(histogram: &Histogram) -> Vec<(i32, f64)> {
    let total = histogram.len() as f64;
    let mut bins: Vec<(i32, f64)> = Vec::new();
    for (low, high, count) in histogram.bucket_ranges() {
        let mid_ms = (low + high) as f64 / 2000.0;
        let bin = (mid_ms.log10() * BINS_PER_DECADE).floor() as i32;
        match bins.last_mut() {
            Some((last, share)) if *last == bin => *share += count as f64 / total * 100.0,
            _ => bins.push((bin, count as f64 / total * 100.0)),
        }
    }
    bins
}

fn bin_ms(bin: f64) -> f64 {
    10_f64.powf(bin / BINS_PER_DECADE)
}

/// The latency distribution of each path in the window, p50/p95/p99 marked.
pub(crate) fn latency_distribution(trace: &SiteTrace) -> Result<String, HtmlError> {
    let paths: Vec<PathBins<'_>> = ExecutionType::ALL
        .into_iter()
        .map(|et| {
            let h = &trace.window.path(et).latency;
            (et, h, distribution(h))
        })
        .filter(|(_, _, bins)| !bins.is_empty())
        .collect();
    let first = paths.iter().filter_map(|p| p.2.first()).map(|b| b.0).min();
    let last = paths.iter().filter_map(|p| p.2.last()).map(|b| b.0).max();
    let (x, top) = match (first, last) {
        (Some(first), Some(last)) => (
            bin_ms(f64::from(first - 1))..bin_ms(f64::from(last + 2)),
            paths
                .iter()
                .flat_map(|p| p.2.iter().map(|b| b.1))
                .fold(1.0_f64, f64::max)
                * 1.3,
        ),
        _ => (1.0..1000.0, 100.0),
    };
    svg((SIZE.0, 340), |area| {
        let mut chart = titled(
            area,
            "Latency distribution per path (stage window; p50 / p95 / p99 marked)",
        )
        .x_label_area_size(35)
        .build_cartesian_2d(x.clone().log_scale(), 0.0..top)?;
        chart
            .configure_mesh()
            .light_line_style(GRID.mix(0.5))
            .bold_line_style(GRID)
            .x_label_formatter(&|v| format_ms(*v))
            .x_desc("call duration, ms (log scale)")
            .y_label_formatter(&|v| format!("{v:.0}%"))
            .y_desc("share of the path's calls")
            .draw()?;
        for (row, (et, histogram, bins)) in paths.iter().enumerate() {
            let color = color(*et);
            // Empty bins between filled ones drop to zero, so the shape is honest.
            let mut points = Vec::new();
            let mut bins_iter = bins.iter().peekable();
            let (lo, hi) = (bins[0].0 - 1, bins[bins.len() - 1].0 + 1);
            for bin in lo..=hi {
                let share = match bins_iter.peek() {
                    Some(&&(b, share)) if b == bin => {
                        bins_iter.next();
                        share
                    }
                    _ => 0.0,
                };
                points.push((bin_ms(f64::from(bin) + 0.5), share));
            }
            let style = color.stroke_width(2);
            chart
                .draw_series(LineSeries::new(points, style))?
                .label(format!("{et} ({} calls)", histogram.len()))
                .legend(move |(lx, ly)| {
                    PathElement::new(vec![(lx, ly), (lx + 18, ly)], color.stroke_width(3))
                });
            for (i, (q, name)) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")]
                .into_iter()
                .enumerate()
            {
                let Some(at) = histogram.quantile(q).map(|us| us / 1000.0) else {
                    continue;
                };
                #[allow(clippy::cast_precision_loss)]
                let height = top * (0.92 - 0.07 * (row * 3 + i) as f64 / 2.0);
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(at, 0.0), (at, height)],
                    color.mix(0.7).stroke_width(1),
                )))?;
                chart.draw_series(std::iter::once(
                    EmptyElement::at((at, height))
                        + Text::new(
                            format!("{name} {}", format_ms(at)),
                            (3, -2),
                            (FONT, 11).into_font().color(&color),
                        ),
                ))?;
            }
        }
        legend(&mut chart)
    })
}

/// Total bytes and throughput per path, two bar charts side by side.
pub(crate) fn transfer(trace: &SiteTrace) -> Result<String, HtmlError> {
    const MIB: f64 = 1024.0 * 1024.0;
    #[allow(clippy::cast_precision_loss)]
    let bytes: Vec<(ExecutionType, f64)> = ExecutionType::ALL
        .into_iter()
        .map(|et| (et, trace.transfer[et.index()].bytes as f64 / MIB))
        .collect();
    let speed: Vec<(ExecutionType, f64)> = ExecutionType::ALL
        .into_iter()
        .map(|et| {
            let t = trace.transfer[et.index()].throughput();
            (et, t.unwrap_or(0.0) / MIB)
        })
        .collect();
    svg((SIZE.0, 260), |area| {
        let (left, right) = area.split_horizontally(SIZE.0 / 2);
        bars(
            &left,
            "Bytes per path (MiB, successful calls, stage window)",
            &bytes,
            "MiB",
        )?;
        bars(
            &right,
            "Throughput per path (MiB/s of successful calls' time)",
            &speed,
            "MiB/s",
        )
    })
}

fn bars(area: &Area<'_>, title: &str, values: &[(ExecutionType, f64)], unit: &str) -> Drawn {
    let top = values.iter().map(|v| v.1).fold(0.0_f64, f64::max).max(1e-3) * 1.25;
    // An integer range includes its end: one slot per value, none after.
    let last = i32::try_from(values.len()).unwrap_or(3) - 1;
    let y_label = linear(&(0.0..top), 6);
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 14))
        .margin(10)
        .x_label_area_size(25)
        .y_label_area_size(55)
        .build_cartesian_2d((0..last).into_segmented(), 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(GRID.mix(0.5))
        .bold_line_style(GRID)
        .y_labels(6)
        .y_label_formatter(&y_label)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => usize::try_from(*i)
                .ok()
                .and_then(|i| values.get(i))
                .map_or_else(String::new, |v| v.0.as_str().to_owned()),
            SegmentValue::Last => String::new(),
        })
        .y_desc(unit)
        .draw()?;
    for (i, &(et, value)) in values.iter().enumerate() {
        let i = i32::try_from(i).unwrap_or(0);
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), value),
            ],
            color(et).filled(),
        );
        bar.set_margin(0, 0, 25, 25);
        chart.draw_series(std::iter::once(bar))?;
        chart.draw_series(std::iter::once(
            EmptyElement::at((SegmentValue::CenterOf(i), value))
                + Text::new(format!("{value:.1}"), (-12, -14), (FONT, 11)),
        ))?;
    }
    Ok(())
}
