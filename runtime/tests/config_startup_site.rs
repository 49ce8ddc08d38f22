//! A site carries the start-up of the layers above (the facade's generated
//! code passes its own): the site's first read of the configuration
//! registers it, also when something else read the configuration first (a
//! file of its own: the registration is process-wide).

use async_upload_runtime::config::{handle, Config, Startup};
use async_upload_runtime::Site;

fn start(mut config: Config) -> Config {
    config.max_retries = 6;
    config
}

static UPLOAD: Site = Site::new("startup_site").with_startup(Startup::new(start, |_, _| {}));

#[test]
fn a_sites_first_call_registers_its_start_up_after_an_earlier_read() {
    assert_eq!(
        handle().config().max_retries,
        2,
        "read first, before any site"
    );
    let _call = UPLOAD.call_unkeyed();
    assert_eq!(
        handle().config().max_retries,
        6,
        "the site's start-up applied late"
    );
}
