//! The sync path never stalls the executor's other tasks on the
//! multi-thread runtime, and never panics on the current-thread runtime.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_upload_runtime::execute::{execute, execute_in_place};
use async_upload_runtime::metrics::ExecutionType;
use async_upload_runtime::Site;

const SLOW: Duration = Duration::from_millis(300);

fn slow_sync(x: u32) -> std::io::Result<u32> {
    std::thread::sleep(SLOW);
    Ok(x)
}

/// Ticks every millisecond; returns how often it ticked while `work` ran
/// as a task of the runtime (on its only worker thread, in these tests).
async fn ticks_during<F>(work: F) -> u64
where
    F: std::future::Future + Send + 'static,
    F::Output: Send,
{
    let ticks = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&ticks);
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    // Let the ticker start, then run the work on the worker, not on the test thread.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let before = ticks.load(Ordering::Relaxed);
    tokio::spawn(work).await.unwrap();
    let during = ticks.load(Ordering::Relaxed) - before;
    ticker.abort();
    during
}

// One worker: if the sync call blocked it, nothing else could run.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn blocking_on_the_worker_stalls_it_the_control_case() {
    let during = ticks_during(async { slow_sync(1) }).await;
    // A free worker ticks about 300 times in the 300 ms; a stalled one a
    // few, once it is free again and before this thread reads the count
    // (later on a loaded machine).
    assert!(
        during < 30,
        "the control must stall the ticker, ticked {during} times"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn spawn_blocking_path_keeps_other_tasks_running() {
    static SITE: Site = Site::new("sync_path_spawn");
    let during = ticks_during(async {
        let result = execute(
            SITE.call(&"key"),
            (5,),
            |(x,)| std::future::ready(Ok(*x)),
            |(x,)| slow_sync(x),
        )
        .await;
        assert_eq!(result.unwrap(), 5);
    })
    .await;
    assert!(
        during >= 30,
        "ticker ran only {during} times during a {SLOW:?} sync call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn block_in_place_path_keeps_other_tasks_running() {
    static SITE: Site = Site::new("sync_path_in_place");
    let during = ticks_during(async {
        let borrowed = String::from("borrowed");
        let text: &str = &borrowed;
        let result = execute_in_place(
            SITE.call(&"key"),
            (text,),
            |(t,)| std::future::ready(Ok(t.len())),
            |(t,)| slow_sync(1).map(|_| t.len()),
        )
        .await;
        assert_eq!(result.unwrap(), 8);
    })
    .await;
    assert!(
        during >= 30,
        "ticker ran only {during} times during a {SLOW:?} sync call"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn in_place_on_the_current_thread_runtime_runs_inline_without_panicking() {
    static SITE: Site = Site::new("sync_path_current_thread");
    let sink = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&sink);
    let id = async_upload_runtime::metrics::add_sink(
        move |r: &async_upload_runtime::metrics::UploadRecord| {
            if r.site == SITE.name() {
                seen.lock().unwrap().push(r.execution_type);
            }
        },
    );
    let value = 7_u32;
    let result = execute_in_place(
        SITE.call(&"key"),
        (&value,),
        |(v,)| std::future::ready(Ok(**v)),
        |(v,)| slow_sync(*v),
    )
    .await;
    assert_eq!(result.unwrap(), 7);
    async_upload_runtime::metrics::remove_sink(id);
    assert_eq!(*sink.lock().unwrap(), vec![ExecutionType::Sync]);
}

#[tokio::test(flavor = "current_thread")]
async fn spawn_blocking_on_the_current_thread_runtime_keeps_it_running() {
    static SITE: Site = Site::new("sync_path_current_thread_spawn");
    let during = ticks_during(async {
        let result = execute(
            SITE.call(&"key"),
            (3,),
            |(x,)| std::future::ready(Ok(*x)),
            |(x,)| slow_sync(x),
        )
        .await;
        assert_eq!(result.unwrap(), 3);
    })
    .await;
    assert!(during >= 30, "ticker ran only {during} times");
}
