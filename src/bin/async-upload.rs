//! `async-upload report`: read JSONL logs, print per-site tables, the
//! async-vs-sync comparison and the stage verdict; exit 0 (advance or
//! hold), 3 (review), 4 (rollback) or 2 (bad input), so a deploy pipeline
//! can gate on it.

use std::path::PathBuf;
use std::process::ExitCode;

use async_upload::log::{read_file, write_csv, Log};
use async_upload::stages::{Report, ReportOptions};
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
        } => match report(&files, site, stage, csv, json) {
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
) -> Result<u8, String> {
    let mut log = Log::default();
    for file in files {
        let one = read_file(file).map_err(|e| format!("{}: {e}", file.display()))?;
        for error in &one.errors {
            eprintln!("warning: {}: {error} (skipped)", file.display());
        }
        log.merge(one);
    }
    if log.is_empty() {
        return Err("nothing parseable in the given files".into());
    }
    let options = ReportOptions {
        site: site.clone(),
        stage,
        ..ReportOptions::default()
    };
    let report = Report::build(&log, &options).map_err(|error| error.to_string())?;
    if let Some(path) = csv {
        let out = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let records = log
            .uploads
            .iter()
            .filter(|r| site.as_deref().is_none_or(|s| r.site == s));
        write_csv(std::io::BufWriter::new(out), records)
            .map_err(|e| format!("{}: {e}", path.display()))?;
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
