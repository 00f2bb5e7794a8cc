//! p2psip: a serverless PBX.

#[allow(dead_code)] // TODO(lead): wire `p2psip sim` to `sim_cmd::run` in the CLI.
mod sim_cmd;

fn main() {}
