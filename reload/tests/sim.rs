//! Simulator-level tests of the RELOAD engine: convergence, lookups, replication, churn.

use reload::sim::{Sim, SimConfig};

fn cfg(nodes: usize, seed: u64) -> SimConfig {
    SimConfig {
        nodes,
        seed,
        lookups: 200,
        duration_secs: 60,
        settle_secs: 60,
        ..SimConfig::default()
    }
}

#[test]
fn small_ring_converges_and_lookups_succeed() {
    let mut sim = Sim::new(cfg(20, 7));
    sim.build();
    assert_eq!(
        sim.ring_errors(),
        0,
        "ring did not converge:\n{}",
        sim.ring_dump()
    );
    sim.register_all();
    sim.workload();
    let r = sim.report();
    eprintln!("{r:?}");
    assert_eq!(r.registrations_stored, 20);
    assert_eq!(r.lookup_success_rate, 1.0);
    assert_eq!(r.registrations_lost, 0);
}
