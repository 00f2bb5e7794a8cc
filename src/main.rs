//! p2psip: a serverless PBX. Each node is a SIP registrar/proxy for unmodified phones and a
//! RELOAD (RFC 6940) peer in a CHORD-RELOAD overlay.
//!
//! This binary is the only place with tokio: it reads the configuration, sets up logging,
//! binds sockets and moves bytes between them and the sans-IO engines in `reload` and `sip`.

mod admin;
mod cli;
mod config;
mod decode_cmd;
mod diag_cmd;
mod forward_cmd;
mod pki;
mod redir;
mod service_cmd;
mod sim_cmd;
mod telemetry;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        Some(cli::Command::CheckConfig { file }) => check_config(file.or(cli.config)),
        Some(cli::Command::Decode(args)) => decode_cmd::run(args),
        Some(cli::Command::Diag(args)) => diag_cmd::run(args),
        Some(cli::Command::Forward(args)) => forward_cmd::run(args),
        Some(cli::Command::Service(args)) => service_cmd::run(args),
        Some(cli::Command::User { cmd }) => match config::load(cli.config.as_deref()) {
            Ok(l) => gateway::users::run(&l, cmd),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Some(cli::Command::Did { cmd }) => match config::load(cli.config.as_deref()) {
            Ok(l) => pstn::dids::run(&l, cmd),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Some(cli::Command::Sim(args)) => sim_cmd::run(args),
        Some(cli::Command::Run) | None => run_node(cli.config),
        Some(cli::Command::Ca { cmd }) => {
            telemetry::init(&config::LogSection::default());
            pki::cmd::run_ca(cmd)
        }
        Some(cli::Command::Enroll(args)) => {
            telemetry::init(&config::LogSection::default());
            pki::cmd::run_enroll(args)
        }
    }
}

fn check_config(file: Option<std::path::PathBuf>) -> ExitCode {
    match config::load(file.as_deref()) {
        Ok(l) => {
            println!("{}: OK", l.source);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_node(file: Option<std::path::PathBuf>) -> ExitCode {
    let loaded = match config::load(file.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(&loaded.config.log);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The overlay driver is a local (!Send) task: run the node inside a LocalSet.
    let local = tokio::task::LocalSet::new();
    match rt.block_on(local.run_until(node::run(loaded))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

mod gateway;
mod node;
mod overlay;
mod pstn;
mod sip_transport;
