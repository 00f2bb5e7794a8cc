//! Runs the overlay simulator from the command line:
//! `cargo run --release -p reload --example sim -- NODES LOOKUPS [CHURN_PER_MIN] [DURATION_S] [SEED]`.

use reload::sim::{Sim, SimConfig};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let get = |i: usize, d: f64| a.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let cfg = SimConfig {
        nodes: get(0, 1000.0) as usize,
        lookups: get(1, 10_000.0) as u64,
        churn_per_min: get(2, 0.0),
        duration_secs: get(3, 600.0) as u64,
        seed: get(4, 1.0) as u64,
        loss: get(5, 0.0),
        progress: true,
        ..SimConfig::default()
    };
    #[allow(clippy::disallowed_methods)] // ok: the driver measures wall time, not the engine
    let start = std::time::Instant::now();
    let mut sim = Sim::new(cfg);
    sim.build();
    let built = start.elapsed().as_secs_f64();
    eprintln!("ring errors after build: {}", sim.ring_errors());
    if std::env::var_os("SIM_DUMP").is_some() {
        eprintln!("{}", sim.ring_dump());
    }
    sim.register_all();
    eprintln!("lost after registration: {}", sim.registrations_lost());
    sim.workload();
    let mut r = sim.report();
    r.wall_seconds = start.elapsed().as_secs_f64();
    eprintln!(
        "build {built:.2}s, registrations+workload {:.2}s",
        r.wall_seconds - built
    );
    if r.registrations_lost > 0 {
        eprintln!("{}", sim.lost_details());
    }
    println!("{}", serde_json::to_string(&r).unwrap_or_default());
}
