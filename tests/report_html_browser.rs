//! The HTML report as a person sees it: rendered by headless Chromium to
//! PNGs (feature `browser-tests`; `.ci/run` installs `chromium` when
//! missing). The whole page is not blank, and each chart, shown alone, drew
//! its series in their colours.
//!
//! It writes `target/report_html/report.png`, the screenshot in docs/dashboard.md.

use async_upload_test_support::synthetic;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use async_upload::dashboard::Dashboard;
use async_upload::log::Log;
use async_upload::stages::{Report, ReportOptions};

/// Series colours (RGB) as the report draws them.
const SYNC: [u8; 3] = [31, 119, 180];
const ASYNC: [u8; 3] = [230, 97, 1];
const FALLBACK: [u8; 3] = [148, 103, 189];
const THRESHOLD: [u8; 3] = [44, 160, 44];
const ROLLBACK: [u8; 3] = [214, 39, 40];

fn out_dir() -> PathBuf {
    // target/debug/deps/<test> → target/report_html
    let exe = std::env::current_exe().unwrap();
    let dir = exe.ancestors().nth(3).unwrap().join("report_html");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Three days of the synthetic rollout, rendered to `dir/report.html`.
fn write_page(dir: &Path) -> PathBuf {
    let scenario = synthetic::Scenario {
        span: Duration::from_secs(3 * 24 * 3600),
        calls_per_minute: 30,
        ..synthetic::Scenario::week("upload")
    };
    let mut bytes = Vec::new();
    synthetic::write(&mut bytes, &scenario).unwrap();
    let log = Log::read(bytes.as_slice()).unwrap();
    let dashboard = Dashboard::of_log(&log, None);
    let report = Report::build(&log, &ReportOptions::default()).unwrap();
    let path = dir.join("report.html");
    std::fs::write(&path, dashboard.render(&report).unwrap()).unwrap();
    path
}

/// Chromium's screenshot of `url` at `size`, decoded to RGB rows.
fn screenshot(url: &str, png: &Path, size: (u32, u32)) -> (u32, u32, Vec<u8>) {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(url)
        .output()
        .expect("chromium is installed (apt-get install chromium)");
    assert!(
        png.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buffer).unwrap();
    let channels = info.color_type.samples();
    let rgb = buffer[..info.buffer_size()]
        .chunks(channels)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, rgb)
}

/// Screenshots `url` at `size` into `png` and checks that each of `colors`
/// drew at least 100 pixels; the picture, for more checks.
fn drew(url: &str, png: &Path, size: (u32, u32), colors: &[[u8; 3]]) -> Vec<u8> {
    let (_, _, rgb) = screenshot(url, png, size);
    for &color in colors {
        let n = pixels_of(&rgb, color);
        assert!(
            n >= 100,
            "only {n} pixels of {color:?} in {}",
            png.display()
        );
    }
    rgb
}

/// Pixels within a small distance of `color` (anti-aliasing blends edges).
fn pixels_of(rgb: &[u8], color: [u8; 3]) -> usize {
    rgb.chunks(3)
        .filter(|p| p.iter().zip(color).all(|(&a, b)| a.abs_diff(b) <= 24))
        .count()
}

#[test]
fn chromium_draws_the_page_and_every_chart() {
    let dir = out_dir();
    let page = write_page(&dir);
    let url = format!("file://{}", page.display());

    let (width, height, rgb) = screenshot(&url, &dir.join("report.png"), (1040, 3000));
    let total = (width * height) as usize;
    let background = rgb
        .chunks(3)
        .filter(|p| p.iter().all(|&c| c >= 245))
        .count();
    assert!(
        // The page is shorter than the window: a blank one has no ink at all.
        total - background > total / 20,
        "the page is nearly blank: {background} of {total} pixels are background"
    );

    // Each chart alone (the page's CSS shows only the `:target` figure).
    let charts: [(&str, u32, &[[u8; 3]]); 5] = [
        ("latency", 340, &[SYNC, ASYNC, FALLBACK]),
        ("calls", 300, &[SYNC, ASYNC, ROLLBACK]),
        ("success", 300, &[ASYNC, THRESHOLD, ROLLBACK]),
        ("latency-over-time", 300, &[SYNC, ASYNC, ROLLBACK]),
        ("transfer", 260, &[SYNC, ASYNC]),
    ];
    for (chart, height, colors) in charts {
        let png = dir.join(format!("{chart}.png"));
        let rgb = drew(&format!("{url}#site0-{chart}"), &png, (960, height), colors);
        // Alone: the other charts' series are not in the picture.
        if chart == "transfer" {
            assert!(pixels_of(&rgb, THRESHOLD) < 20, "{chart} is not alone");
        }
    }
}

/// A 60-second run (a scaled demo's): every time chart draws at least 30
/// points per series, and Chromium shows each series' colour.
#[test]
fn a_60_second_log_draws_every_time_series_in_detail() {
    use async_upload::log::{Event, StageEntered, StageEvent};
    use async_upload::metrics::{ExecutionType, UploadRecord};
    use async_upload::stages::{Triggers, DEFAULT_STAGES};

    let dir = out_dir();
    let start = std::time::SystemTime::now() - Duration::from_secs(60);
    let mut log = Log::default();
    log.events
        .push(Event::Stage(StageEvent::Entered(StageEntered::new(
            start,
            "upload",
            DEFAULT_STAGES[2].clone(),
            Triggers::DEFAULT,
        ))));
    let mut rng = fastrand::Rng::with_seed(60);
    for i in 0..3000u32 {
        let et = match i % 20 {
            0 => ExecutionType::SyncFallback,
            n if n % 2 == 0 => ExecutionType::Sync,
            _ => ExecutionType::Async,
        };
        let mut record = UploadRecord::new("upload", et, true, 20.0 + 30.0 * rng.f64(), 1);
        record.ts = start + Duration::from_millis(u64::from(i) * 20);
        record.bytes = Some(1 << 16);
        log.uploads.push(record);
    }
    let dashboard = Dashboard::of_log(&log, None);
    let report = Report::build(&log, &ReportOptions::default()).unwrap();
    let html = dashboard.render(&report).unwrap();
    let path = dir.join("short.html");
    std::fs::write(&path, &html).unwrap();

    let hex = |c: [u8; 3]| format!("#{:02X}{:02X}{:02X}", c[0], c[1], c[2]);
    let series: [(&str, &[[u8; 3]]); 3] = [
        ("calls", &[SYNC, ASYNC, FALLBACK]),
        ("success", &[ASYNC]),
        ("latency-over-time", &[SYNC, ASYNC]),
    ];
    for (chart, colors) in series {
        let start = html.find(&format!("data-chart=\"{chart}\">")).unwrap();
        let figure = &html[start..start + html[start..].find("</figure>").unwrap()];
        for &color in colors {
            // Points per series (a series is a colour and an opacity: p50 and p95).
            let mut per_series: std::collections::BTreeMap<String, usize> = Default::default();
            for line in figure.split("<polyline").skip(1) {
                let attribute = |name: &str| {
                    let from = line.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                    line[from..from + line[from..].find('"').unwrap()].to_owned()
                };
                if attribute("stroke").eq_ignore_ascii_case(&hex(color)) {
                    *per_series.entry(attribute("opacity")).or_default() +=
                        attribute("points").split_whitespace().count();
                }
            }
            assert!(!per_series.is_empty(), "{chart}: no {color:?} series");
            for (opacity, points) in &per_series {
                assert!(
                    *points >= 30,
                    "{chart}: {points} points of {color:?} (opacity {opacity})"
                );
            }
        }
        let png = dir.join(format!("short-{chart}.png"));
        let url = format!("file://{}#site0-{chart}", path.display());
        let (_, _, rgb) = screenshot(&url, &png, (960, 300));
        for &color in colors {
            let n = pixels_of(&rgb, color);
            assert!(
                n >= 100,
                "{chart}: only {n} pixels of {color:?} in {}",
                png.display()
            );
        }
    }
}
