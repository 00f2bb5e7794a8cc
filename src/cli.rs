//! Command-line interface: `p2psip [run]`, `p2psip check-config`, and the operator tools.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// p2psip: a serverless PBX. Desk phones register to any node; nodes form a RELOAD
/// (RFC 6940) overlay, so there is no central server and no single point of failure.
#[derive(Debug, Parser)]
#[command(name = "p2psip", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (default: ./config.yaml if present, else the embedded default).
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// What to do; without one, the node runs.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node: SIP front-end and RELOAD peer (the default).
    Run,
    /// Validate a configuration file and print every problem found, then exit.
    CheckConfig {
        /// File to check (default: the one `run` would use).
        file: Option<PathBuf>,
    },
    /// Simulate an overlay of N peers on a virtual clock (deterministic for a seed) and report
    /// lookup success, hops and lost registrations.
    Sim(crate::sim_cmd::SimArgs),
    /// Decode one RELOAD message (bare or framed; binary, or hex with --hex) and print it.
    Decode(crate::decode_cmd::DecodeArgs),
    /// Overlay diagnostics (RFC 7851) through a running node: ping, path, info.
    Diag(crate::diag_cmd::DiagArgs),
    /// Service discovery (ReDiR, RFC 7374) through a running node: register, lookup.
    Service(crate::service_cmd::ServiceArgs),
    /// Overlay CA tools: create a CA and configuration, run the enrollment server.
    Ca {
        /// What to do.
        #[command(subcommand)]
        cmd: crate::pki::cmd::CaCommand,
    },
    /// Enroll with an overlay's enrollment server and store the node identity.
    Enroll(crate::pki::cmd::EnrollArgs),
    /// Call forwarding through a running node: `forward set USER TARGET`, `forward del USER`.
    Forward(crate::forward_cmd::ForwardArgs),
    /// Manage the users who may register (kept in <data_dir>/users.yaml).
    User {
        /// What to do.
        #[command(subcommand)]
        cmd: crate::gateway::users::UserCommand,
    },
    /// Manage DIDs: which telephone number rings which user (kept in <data_dir>/dids.yaml).
    Did {
        /// What to do.
        #[command(subcommand)]
        cmd: crate::pstn::dids::DidCommand,
    },
}
