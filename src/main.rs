//! p2psip: a serverless PBX.
mod sip_transport;

fn main() {}
