//! Writes a synthetic JSONL log of a rollout, for the HTML report's
//! screenshot and the report benchmark.
//!
//! ```text
//! cargo run --release --example synthetic_log -- --out week.jsonl                 # a week at 100 calls/min: ~1 M records
//! cargo run --release --example synthetic_log -- --out big.jsonl --calls-per-minute 1000   # ~10 M records
//! ```
//!
//! One site (`upload`): stage 2 from the start, stage 3 at a quarter of
//! the span, the async path degrading at 62 % and the controller rolling
//! it back six minutes later, an operator clearing the rollback at 80 %.
//! Seeded: the same arguments write the same file.

use async_upload_test_support::synthetic;

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Writes a synthetic rollout log.
#[derive(Parser, Debug)]
#[command(name = "synthetic_log")]
struct Args {
    /// The JSONL file to write.
    #[arg(long)]
    out: PathBuf,
    /// Calls per minute, every path together.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    calls_per_minute: u32,
    /// Days of traffic.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=366))]
    days: u64,
    /// The site's name.
    #[arg(long, default_value = "upload")]
    site: String,
    /// Seed of every draw.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let scenario = synthetic::Scenario {
        site: args.site,
        span: Duration::from_secs(args.days * 24 * 3600),
        calls_per_minute: args.calls_per_minute,
        seed: args.seed,
        ..synthetic::Scenario::week("upload")
    };
    let written = std::fs::File::create(&args.out).and_then(|file| {
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let written = synthetic::write(&mut out, &scenario)?;
        out.flush()?;
        Ok(written)
    });
    match written {
        Ok(written) => {
            println!(
                "{}: {} upload records, {} events",
                args.out.display(),
                written.records,
                written.events
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("synthetic_log: {}: {error}", args.out.display());
            ExitCode::from(2)
        }
    }
}
