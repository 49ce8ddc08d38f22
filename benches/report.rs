//! `async-upload report` on logs of a week of traffic, whole command, as a
//! deploy pipeline runs it: 1 M records (100 calls/min) and 10 M records
//! (1 000 calls/min), for the tables, `--json`, `--csv` and `--html`.
//! Criterion prints the rate in records per second (`elem/s`); the peak
//! resident memory of each command is printed after its timing.
//!
//! ```text
//! cargo bench --features cli --bench report              # both sizes
//! cargo bench --features cli --bench report -- 'report/1M'
//! ```
//!
//! The logs are written once into the target directory by the synthetic
//! scenario the HTML report's tests use (`examples/synthetic_log.rs`).

use async_upload_test_support::synthetic;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};

const BINARY: &str = env!("CARGO_BIN_EXE_async-upload");

/// The log of `calls_per_minute` over a week, written if missing; its path
/// and record count.
fn log(calls_per_minute: u32) -> (PathBuf, u64) {
    let scenario = synthetic::Scenario {
        calls_per_minute,
        ..synthetic::Scenario::week("upload")
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("report-bench-{calls_per_minute}.jsonl"));
    let records = path.with_extension("records");
    if let Some(count) = std::fs::read_to_string(&records)
        .ok()
        .and_then(|text| text.trim().parse().ok())
    {
        return (path, count);
    }
    let file = std::fs::File::create(&path).expect("the bench log can be created");
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let written = synthetic::write(&mut out, &scenario).expect("the bench log is written");
    out.flush().expect("the bench log is written");
    std::fs::write(&records, written.records.to_string()).expect("its count is written");
    (path, written.records)
}

/// The extra arguments of each output.
fn outputs(dir: &Path) -> [(&'static str, Vec<String>); 4] {
    let out = |name: &str| dir.join(name).display().to_string();
    [
        ("tables", vec![]),
        ("json", vec!["--json".into()]),
        ("csv", vec!["--csv".into(), out("report-bench.csv")]),
        ("html", vec!["--html".into(), out("report-bench.html")]),
    ]
}

fn command(log: &Path, extra: &[String]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .arg("report")
        .arg(log)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// Runs the report once, timed.
fn run(log: &Path, extra: &[String]) {
    let exit = command(log, extra)
        .status()
        .expect("the report binary starts");
    assert!(
        exit.code().is_some_and(|code| code != 2),
        "report failed: {exit}"
    );
}

/// Runs the report once; its peak resident memory in bytes, read from
/// `/proc` while it runs (the high-water mark only grows).
fn peak_memory(log: &Path, extra: &[String]) -> Option<u64> {
    let mut child = command(log, extra)
        .spawn()
        .expect("the report binary starts");
    let status = format!("/proc/{}/status", child.id());
    let mut peak = None;
    loop {
        if let Some(hwm) = std::fs::read_to_string(&status)
            .ok()
            .and_then(|text| vm_hwm(&text))
        {
            peak = Some(hwm);
        }
        match child.try_wait().expect("the report can be waited for") {
            Some(exit) => {
                assert!(
                    exit.code().is_some_and(|code| code != 2),
                    "report failed: {exit}"
                );
                return peak;
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// `VmHWM` of a `/proc/PID/status`, in bytes.
fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn report(c: &mut Criterion) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for (label, calls_per_minute) in [("1M", 100), ("10M", 1000)] {
        let (path, records) = log(calls_per_minute);
        let mut group = c.benchmark_group(format!("report/{label}"));
        group.throughput(Throughput::Elements(records));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(if records > 2_000_000 {
            60
        } else {
            15
        }));
        for (output, extra) in outputs(&dir) {
            // Measured once, and only for the benchmarks a filter selects.
            let mut peak_printed = false;
            group.bench_function(BenchmarkId::from_parameter(output), |b| {
                if !std::mem::replace(&mut peak_printed, true) {
                    if let Some(peak) = peak_memory(&path, &extra) {
                        #[allow(clippy::cast_precision_loss)]
                        let mib = peak as f64 / (1024.0 * 1024.0);
                        println!("report/{label}/{output}: peak resident memory {mib:.1} MiB");
                    }
                }
                b.iter(|| run(&path, &extra));
            });
        }
        group.finish();
    }
}

criterion_group!(benches, report);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
