//! libFuzzer entry point: see `switchboard_fuzz::webhook`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::webhook(data));
