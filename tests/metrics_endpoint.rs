//! The demo's Prometheus endpoint (`--metrics-addr`, feature `metrics`):
//! scraped while the demo still serves, its counters equal the calls the
//! demo made and the durations are a real histogram with buckets from 1 ms
//! to 60 s.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};

use async_upload::metrics::{DURATION_BUCKETS, DURATION_METRIC};

#[path = "support/demo.rs"]
mod demo;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scrape(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The sum of every sample of `name` whose labels include `site`.
fn sum(text: &str, name: &str, site: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(&format!("site=\"{site}\"")))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[test]
fn the_demo_serves_counters_equal_to_its_calls() {
    let demo = demo::build(&["metrics"]);
    let port = free_port();
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(demo)
        .args(["--files", "40", "--concurrency", "8", "--metrics-linger"])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .arg("--out")
        .arg(out.path())
        .env("ASYNC_UPLOAD_LOG", out.path().join("uploads.jsonl"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut calls = None;
    let mut transcript = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        transcript.push_str(&line);
        transcript.push('\n');
        if let Some(rest) = line.strip_prefix("uploads: ") {
            calls = rest.split(' ').next().and_then(|n| n.parse::<f64>().ok());
        }
        if line.starts_with("metrics: still serving") {
            break;
        }
    }
    let calls = calls.unwrap_or_else(|| panic!("no uploads line in:\n{transcript}"));
    assert_eq!(calls, 40.0);
    let text = scrape(port);
    let site = "upload_demo";
    assert_eq!(
        sum(&text, "async_upload_calls_total", site),
        calls,
        "{text}"
    );
    let histogram = format!("{DURATION_METRIC}_count");
    assert_eq!(sum(&text, &histogram, site), calls, "{text}");
    // A histogram, not a summary: one cumulative bucket per bound, then +Inf.
    for bound in DURATION_BUCKETS {
        let bucket = format!("{DURATION_METRIC}_bucket{{");
        assert!(
            text.lines()
                .any(|l| l.starts_with(&bucket) && l.contains(&format!("le=\"{bound}\""))),
            "no bucket le={bound} in:\n{text}"
        );
    }
    let fallbacks = sum(&text, "async_upload_fallbacks_total", site);
    assert!(fallbacks <= calls);
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "{transcript}");
}
