//! `cargo fuzz run datagram`: parser, printer and endpoint on one datagram.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sip::fuzzing::datagram(data, std::time::Instant::now()));
