#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reload::fuzzing::diagnostics(data));
