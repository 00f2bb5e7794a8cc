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

#[test]
fn ring_of_300_no_churn() {
    let n = 300;
    let mut sim = Sim::new(SimConfig {
        lookups: 2000,
        ..cfg(n, 11)
    });
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
    let bound = 0.5 * (n as f64).log2() + 1.0;
    assert!(r.mean_hops <= bound, "mean hops {} > {bound}", r.mean_hops);
    assert_eq!(r.registrations_stored, n as u64);
    assert_eq!(r.lookup_success_rate, 1.0);
    assert_eq!(r.registrations_lost, 0);
}

#[test]
fn ring_of_300_with_churn() {
    let n = 300;
    // 10% of the nodes per 10 simulated minutes: 3 events per minute.
    let mut sim = Sim::new(SimConfig {
        lookups: 3000,
        duration_secs: 1200,
        churn_per_min: n as f64 * 0.1 / 10.0,
        ..cfg(n, 12)
    });
    sim.build();
    sim.register_all();
    sim.workload();
    let r = sim.report();
    eprintln!("{r:?}");
    assert!(r.churn_crashes > 0 && r.churn_leaves > 0 && r.churn_joins > 0);
    assert_eq!(r.registrations_lost, 0);
    assert!(
        r.lookup_success_rate >= 0.999,
        "success {}",
        r.lookup_success_rate
    );
    assert_eq!(r.ring_errors, 0, "{}", sim.ring_dump());
}
