//! The HTML report as a person sees it: rendered by headless Chromium to
//! PNGs (feature `html`; `.ci/run` installs `chromium` when missing). The
//! whole page is not blank, and each chart, shown alone, drew its series in
//! their colours.
//!
//! It writes `target/report_html/report.png`, the README's screenshot.

#[path = "../runtime/tests/support/synthetic.rs"]
mod synthetic;

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
        total - background > total / 10,
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
        let (_, _, rgb) = screenshot(&format!("{url}#site0-{chart}"), &png, (960, height));
        for &color in colors {
            let n = pixels_of(&rgb, color);
            assert!(
                n >= 100,
                "{chart}: only {n} pixels of {color:?} in {}",
                png.display()
            );
        }
        // Alone: the other charts' series are not in the picture.
        if chart == "transfer" {
            assert!(pixels_of(&rgb, THRESHOLD) < 20, "{chart} is not alone");
        }
    }
}
