//! `cargo fuzz run stream`: the TCP stream framer.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sip::fuzzing::stream(data));
