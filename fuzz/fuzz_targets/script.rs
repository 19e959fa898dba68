//! libFuzzer entry point: see `switchboard_fuzz::script`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::script(data));
