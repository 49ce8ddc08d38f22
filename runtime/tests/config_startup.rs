//! The start-up of the layers above the runtime, registered before the
//! configuration's first use (a file of its own: the registration is
//! process-wide).

use std::path::PathBuf;
use std::sync::Mutex;

use async_upload_runtime::config::{handle, set_startup, Config, Startup, StartupAlreadySet};

static FOLLOWED: Mutex<Vec<(Option<PathBuf>, Option<PathBuf>)>> = Mutex::new(Vec::new());

fn start(mut config: Config) -> Config {
    // What fleet mode does: the process starts on the sync path.
    config.enabled = false;
    config.max_retries = 7;
    config
}

fn follow(before: &Config, after: &Config) {
    FOLLOWED
        .lock()
        .unwrap()
        .push((before.log_path.clone(), after.log_path.clone()));
}

fn ignored(before: &Config, _: &Config) {
    panic!("a second start-up must never run: {before:?}");
}

#[test]
fn the_start_up_shapes_the_first_configuration_and_follows_every_later_one() {
    set_startup(Startup::new(start, follow)).unwrap();
    assert_eq!(
        set_startup(Startup::new(|c| c, ignored)),
        Err(StartupAlreadySet),
        "the first registration stays"
    );
    let config = handle().config();
    assert_eq!(config.max_retries, 7, "what start returned is in force");
    assert!(!config.enabled);
    assert!(
        FOLLOWED.lock().unwrap().is_empty(),
        "the first configuration is start's"
    );

    handle()
        .update(|c| c.log_path = Some(PathBuf::from("/tmp/a.jsonl")))
        .unwrap();
    handle().update(|c| c.max_retries = 3).unwrap();
    let followed = FOLLOWED.lock().unwrap().clone();
    assert_eq!(
        followed,
        vec![
            (None, Some(PathBuf::from("/tmp/a.jsonl"))),
            (
                Some(PathBuf::from("/tmp/a.jsonl")),
                Some(PathBuf::from("/tmp/a.jsonl"))
            ),
        ],
        "every configuration put in force is followed, before and after"
    );
}
