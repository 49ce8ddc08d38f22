//! The aggregator's memory does not grow with the number of calls.

use async_upload_runtime::metrics::{Aggregator, ExecutionType, MetricsSink, UploadRecord};

/// Resident set size in bytes, from /proc/self/statm.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn ten_million_records_grow_resident_memory_by_less_than_10_mib() {
    let aggregator = Aggregator::new();
    let mut record = UploadRecord::new("memory", ExecutionType::Async, true, 1.0, 1);
    record.bytes = Some(1024);
    // The first records create the site's fixed-size counters.
    aggregator.record(&record);
    let before = resident_bytes();
    for i in 0..10_000_000_u64 {
        record.execution_type = ExecutionType::ALL[(i % 3) as usize];
        record.success = i % 13 != 0;
        // Spread durations over the whole histogram range (1 µs to ~1 h).
        record.duration_ms = (i % 4_000_000) as f64 / 1000.0 * (1 + i % 1000) as f64;
        aggregator.record(&record);
    }
    let grown = resident_bytes().saturating_sub(before);
    let summary = aggregator.summary("memory", ExecutionType::Async);
    assert_eq!(
        aggregator.summary("memory", ExecutionType::Sync).count
            + summary.count
            + aggregator
                .summary("memory", ExecutionType::SyncFallback)
                .count,
        10_000_001
    );
    assert!(
        grown < 10 * 1024 * 1024,
        "resident memory grew by {grown} bytes over 10 million records"
    );
}
