//! p2psip: a serverless PBX.
fn main() {}
