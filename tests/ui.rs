//! Compile tests of `#[async_upload]`: what must expand and run
//! (`ui/pass`), and each mistake with the exact error it gets (`ui/fail`,
//! one file per mistake, named after it).
//!
//! After an intended change of a message, regenerate the `.stderr` files
//! with `TRYBUILD=overwrite cargo test --test ui` and review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
