//! `p2psip sim`: runs the deterministic RELOAD overlay simulator and prints its report.

use reload::sim::{SimConfig, SimReport, run as run_sim};
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `p2psip sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Peers in the overlay.
    #[arg(long, default_value_t = 1000)]
    pub nodes: usize,
    /// RNG seed (same arguments and seed give the same result).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Churn events per simulated minute (joins, graceful leaves and crashes in equal shares).
    #[arg(long, default_value_t = 0.0)]
    pub churn_per_min: f64,
    /// Simulated seconds of workload.
    #[arg(long, default_value_t = 600)]
    pub duration_secs: u64,
    /// Fetches (SIP-REGISTRATION lookups) issued during the workload.
    #[arg(long, default_value_t = 10_000)]
    pub lookups: u64,
    /// chord-update-interval in seconds (with --self-tuning: the longest the tuner picks).
    #[arg(long, default_value_t = 120)]
    pub update_interval_s: u64,
    /// Peers tune their chord-update-interval from the churn they observe (RFC 7363).
    #[arg(long)]
    pub self_tuning: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn print_summary(r: &SimReport) {
    println!("nodes                 {}", r.nodes);
    println!("seed                  {}", r.seed);
    println!("lookups               {}", r.lookups);
    println!("lookup success rate   {:.6}", r.lookup_success_rate);
    println!("mean hops             {:.3}", r.mean_hops);
    println!("p99 hops              {}", r.p99_hops);
    println!("registrations stored  {}", r.registrations_stored);
    println!("registrations lost    {}", r.registrations_lost);
    println!(
        "churn                 {} joins, {} leaves, {} crashes",
        r.churn_joins, r.churn_leaves, r.churn_crashes
    );
    println!("ring errors           {}", r.ring_errors);
    println!("messages              {}", r.messages);
    println!(
        "messages/peer/minute  {:.1} (during the workload)",
        r.messages_per_peer_min
    );
    println!(
        "mean update interval  {:.1} s (at the end)",
        r.mean_update_interval_s
    );
    println!("virtual seconds       {:.1}", r.virtual_seconds);
    println!("wall seconds          {:.2}", r.wall_seconds);
}

/// Runs the simulator with `args` and prints the report.
pub fn run(args: SimArgs) -> ExitCode {
    let cfg = SimConfig {
        nodes: args.nodes.max(1),
        seed: args.seed,
        churn_per_min: args.churn_per_min.max(0.0),
        duration_secs: args.duration_secs.max(1),
        lookups: args.lookups,
        progress: args.nodes >= 2000 || args.lookups >= 50_000,
        update_interval_ms: args.update_interval_s.max(1) * 1000,
        self_tuning: args.self_tuning,
        ..SimConfig::default()
    };
    #[allow(clippy::disallowed_methods)] // ok: the driver, not the engine, reads the wall clock
    let start = Instant::now();
    let mut report = run_sim(cfg);
    report.wall_seconds = start.elapsed().as_secs_f64();
    if args.json {
        match serde_json::to_string(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("sim: cannot serialise report: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print_summary(&report);
    }
    ExitCode::SUCCESS
}
