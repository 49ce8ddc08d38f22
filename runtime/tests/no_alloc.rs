//! The runtime makes no heap allocation on the routing decision and on a
//! first-try async success: a counting global allocator proves it, with no
//! `tracing` subscriber and again with the fmt subscriber at INFO that
//! nearly every service installs (the call's span is at DEBUG, so that
//! subscriber never sees one).
//!
//! Without the `metrics` feature: the `metrics` facade builds label sets
//! per record, which allocates in that crate, not in this one.
#![cfg(not(feature = "metrics"))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::ready;

use async_upload_runtime::config::{handle, SiteOverrides};
use async_upload_runtime::execute::execute;
use async_upload_runtime::Site;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations made on this thread by `f`.
fn allocations<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCATIONS.with(Cell::get);
    let result = f();
    (result, ALLOCATIONS.with(Cell::get) - before)
}

static OFF: Site = Site::new("no_alloc_off");
static HALF: Site = Site::new("no_alloc_half");
static ON: Site = Site::new("no_alloc_on");

// One test, so no other test thread changes the configuration midway.
#[test]
fn decisions_and_first_try_success_do_not_allocate() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    handle().update(|c| c.enabled = true).unwrap();
    handle()
        .set_site(
            OFF.name(),
            SiteOverrides {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
    handle()
        .set_site(
            HALF.name(),
            SiteOverrides {
                rollout: Some(50.0),
                ..Default::default()
            },
        )
        .unwrap();
    handle()
        .set_site(
            ON.name(),
            SiteOverrides {
                rollout: Some(100.0),
                ..Default::default()
            },
        )
        .unwrap();

    check_calls(&runtime);
    let fmt_info = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(fmt_info, || check_calls(&runtime));
}

/// Decisions and a first-try success of the three sites allocate nothing.
fn check_calls(runtime: &tokio::runtime::Runtime) {
    let upload = |site: &'static Site, key: &str| {
        runtime.block_on(execute(
            site.call(&key).with_bytes(1024_u64),
            (7_u32,),
            |(x,)| ready(Ok::<u32, std::io::Error>(*x)),
            |(x,)| Ok(x),
        ))
    };
    // Warm-up: the first call of each site resolves its settings and
    // creates its counters; the runtime sets up its timer wheel.
    for _ in 0..3 {
        upload(&ON, "warm").unwrap();
        let _ = OFF.call(&"warm");
        let _ = HALF.call(&"warm");
    }

    // The counter sees allocations at all, or every zero below is vacuous.
    let (_, n) = allocations(|| std::hint::black_box(Vec::<u8>::with_capacity(16)));
    assert_eq!(n, 1);

    let (call, n) = allocations(|| OFF.call(&"file-1"));
    assert!(!call.runs_async());
    assert_eq!(n, 0, "disabled-site decision allocated");

    let (_, n) = allocations(|| {
        for i in 0..1000_u64 {
            let _ = std::hint::black_box(HALF.call(&i));
            let _ = std::hint::black_box(HALF.call(&"file-1"));
        }
    });
    assert_eq!(n, 0, "keyed decisions (integers and strings) allocated");

    let (result, _) = allocations(|| {
        runtime.block_on(async {
            let before = ALLOCATIONS.with(Cell::get);
            let result = execute(
                ON.call(&"file-1").with_bytes(1024_u64),
                (7_u32,),
                |(x,)| ready(Ok::<u32, std::io::Error>(*x)),
                |(x,)| Ok(x),
            )
            .await;
            (result, ALLOCATIONS.with(Cell::get) - before)
        })
    });
    let (result, inside) = result;
    assert_eq!(result.unwrap(), 7);
    assert_eq!(
        inside, 0,
        "a first-try async success allocated inside the runtime"
    );
}
