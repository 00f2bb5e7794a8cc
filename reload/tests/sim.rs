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
fn ring_of_500_converges_with_log_hops_and_no_loss() {
    let n = 500;
    let mut sim = Sim::new(SimConfig {
        lookups: 5000,
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
    assert_eq!(r.lookups, 5000);
    assert_eq!(r.registrations_stored, n as u64);
    assert_eq!(r.lookup_success_rate, 1.0);
    assert_eq!(r.registrations_lost, 0);
    assert_eq!(r.ring_errors, 0);
}

#[test]
fn ring_of_500_survives_ten_percent_churn_per_ten_minutes() {
    let n = 500;
    // 10% of the nodes per 10 simulated minutes (joins, graceful leaves and crashes in equal
    // shares), for 20 minutes: one event every 12 s, far apart next to stabilisation.
    let mut sim = Sim::new(SimConfig {
        lookups: 5000,
        duration_secs: 1200,
        churn_per_min: n as f64 * 0.1 / 10.0,
        ..cfg(n, 12)
    });
    sim.build();
    sim.register_all();
    sim.workload();
    let r = sim.report();
    eprintln!("{r:?}");
    assert!(
        r.churn_crashes >= 15 && r.churn_leaves >= 15 && r.churn_joins >= 15,
        "{r:?}"
    );
    assert_eq!(r.registrations_lost, 0);
    assert!(
        r.lookup_success_rate >= 0.999,
        "success {}",
        r.lookup_success_rate
    );
    assert_eq!(r.ring_errors, 0, "{}", sim.ring_dump());
}

#[test]
fn same_seed_same_result() {
    let run = |seed| {
        let mut c = cfg(60, seed);
        c.churn_per_min = 2.0;
        c.duration_secs = 300;
        reload::sim::run(c)
    };
    let a = run(5);
    let b = run(5);
    assert_eq!(a, b);
    let c = run(6);
    assert_ne!(a.messages, c.messages);
}

#[test]
fn lossy_links_are_covered_by_end_to_end_retransmission() {
    let mut sim = Sim::new(SimConfig {
        loss: 0.01,
        lookups: 1000,
        ..cfg(100, 13)
    });
    sim.build();
    sim.register_all();
    sim.workload();
    let r = sim.report();
    eprintln!("{r:?}");
    assert_eq!(r.registrations_stored, 100);
    assert!(
        r.lookup_success_rate >= 0.999,
        "success {}",
        r.lookup_success_rate
    );
    assert_eq!(r.registrations_lost, 0);
}

/// RFC 6940 6.7 in the simulator: with a small link MTU, big messages (full Updates, Stores
/// with certificates, Fetch answers) travel as fragments, are reassembled at their
/// destination, and the overlay works as without fragmentation.
#[test]
fn overlay_works_over_fragmenting_links() {
    let mut sim = Sim::new(SimConfig {
        link_mtu: 380,
        ..cfg(30, 5)
    });
    sim.build();
    assert_eq!(sim.ring_errors(), 0, "{}", sim.ring_dump());
    sim.register_all();
    sim.workload();
    let r = sim.report();
    assert_eq!(r.lookup_success_rate, 1.0);
    assert_eq!(r.registrations_lost, 0);
    let (mut sent, mut reassembled) = (0, 0);
    for i in 0..sim.node_count() {
        if let Some(n) = sim.node(i) {
            sent += n.stats().fragments_sent;
            reassembled += n.stats().reassembled;
        }
    }
    assert!(
        sent > 0 && reassembled > 0,
        "sent {sent} reassembled {reassembled}"
    );
}

/// RFC 7363 self-tuning: under churn every peer shortens its chord-update-interval below the
/// configured longest one, and lookups still succeed; without churn it stays at the longest.
#[test]
fn self_tuning_shortens_the_interval_under_churn_only() {
    for (churn, expect_shorter) in [(0.0, false), (30.0, true)] {
        let mut c = cfg(150, 5);
        c.churn_per_min = churn;
        c.duration_secs = 240;
        c.lookups = 300;
        c.update_interval_ms = 600_000;
        c.self_tuning = true;
        let r = reload::sim::run(c);
        assert!(r.lookup_success_rate >= 0.99, "{r:?}");
        if expect_shorter {
            assert!(r.mean_update_interval_s < 300.0, "{r:?}");
        } else {
            assert!((r.mean_update_interval_s - 600.0).abs() < 1.0, "{r:?}");
        }
    }
}
