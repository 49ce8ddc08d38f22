//! `async-upload report`: read JSONL logs, print per-site tables, the
//! async-vs-sync comparison and the stage verdict; exit 0 (advance or
//! hold), 3 (review), 4 (rollback) or 2 (bad input), so a deploy pipeline
//! can gate on it.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

use async_upload::dashboard::Dashboard;
use async_upload::log::{CsvWriter, Event, Merged};
use async_upload::stages::{ReportBuilder, ReportOptions};
use clap::{Parser, Subcommand};

#[cfg(feature = "redis")]
mod fleet;

/// Exit status for bad input: missing or unreadable file, nothing parseable.
const BAD_INPUT: u8 = 2;

#[derive(Parser)]
#[command(
    name = "async-upload",
    version,
    about = "Reports on async-upload rollouts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Summarise JSONL logs (several instances' files are merged) and print
    /// the stage verdict. Exit status: 0 advance or hold, 3 review,
    /// 4 rollback, 2 bad input.
    Report {
        /// JSONL log files written by the sink (`ASYNC_UPLOAD_LOG`).
        #[arg(required = true, value_name = "FILE.jsonl")]
        files: Vec<PathBuf>,
        /// Only this site.
        #[arg(long, value_name = "NAME")]
        site: Option<String>,
        /// Evaluate this stage (default: the last stage the log shows entered).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        stage: Option<u32>,
        /// Also write the upload records as CSV to this file.
        #[arg(long, value_name = "OUT.csv")]
        csv: Option<PathBuf>,
        /// Print the report as JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Also write the report as one self-contained HTML page (charts,
        /// no network needed) to this file.
        #[arg(long, value_name = "OUT.html")]
        html: Option<PathBuf>,
    },
    /// Operate a fleet's shared state in Redis (built with the `redis` feature).
    /// Exit status: 0 success, 2 bad input or Redis unreachable.
    #[cfg(feature = "redis")]
    Fleet(fleet::FleetArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Report {
            files,
            site,
            stage,
            csv,
            json,
            html,
        } => match report(&files, site, stage, csv, json, html) {
            Ok(code) => ExitCode::from(code),
            Err(message) => {
                eprintln!("async-upload report: {message}");
                ExitCode::from(BAD_INPUT)
            }
        },
        #[cfg(feature = "redis")]
        Command::Fleet(args) => fleet::run(args),
    }
}

fn report(
    files: &[PathBuf],
    site: Option<String>,
    stage: Option<u32>,
    csv: Option<PathBuf>,
    json: bool,
    html: Option<PathBuf>,
) -> Result<u8, String> {
    let mut merged =
        Merged::open(files).map_err(|e| format!("{}: {}", files[e.source].display(), e.error))?;
    let mut csv = csv
        .map(|path| {
            File::create(&path)
                .and_then(|file| CsvWriter::new(BufWriter::new(file)))
                .map(|writer| (writer, path))
        })
        .transpose()
        .map_err(|e| format!("CSV: {e}"))?;
    let wanted = |name: &str| site.as_deref().is_none_or(|only| only == name);
    let mut builder = ReportBuilder::new(ReportOptions {
        site: site.clone(),
        stage,
        ..ReportOptions::default()
    });
    let mut dashboard = html.as_ref().map(|_| Dashboard::new(stage));
    // One pass over every file, in time order: nothing but aggregates is
    // kept, so memory does not grow with the logs.
    let mut parsed = false;
    while let Some((source, line)) = merged
        .next_event()
        .map_err(|e| format!("{}: {}", files[e.source].display(), e.error))?
    {
        let event = match line {
            Ok(event) => event,
            Err(error) => {
                eprintln!("warning: {}: {error} (skipped)", files[source].display());
                continue;
            }
        };
        parsed = true;
        if let Event::Upload(record) = &event {
            builder.record(record);
            if let Some(dashboard) = dashboard.as_mut() {
                dashboard.record(record);
            }
            if let Some((writer, path)) = csv.as_mut().filter(|_| wanted(&record.site)) {
                writer
                    .write(record)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        } else {
            builder.event(&event);
            if let Some(dashboard) = dashboard.as_mut() {
                dashboard.event(&event);
            }
        }
    }
    if !parsed {
        return Err("nothing parseable in the given files".into());
    }
    if let Some((writer, path)) = csv {
        writer
            .finish()
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let report = builder.finish().map_err(|error| error.to_string())?;
    if let (Some(path), Some(dashboard)) = (html, dashboard) {
        let page = dashboard.render(&report).map_err(|e| e.to_string())?;
        std::fs::write(&path, page).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("HTML report: {}", path.display());
    }
    if json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", report.render());
        println!("exit status {}", report.exit_code);
    }
    Ok(u8::try_from(report.exit_code).unwrap_or(BAD_INPUT))
}
