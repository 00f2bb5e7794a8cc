//! Logging setup: plain words for operators, JSON for collectors.

use crate::config::LogSection;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; RUST_LOG overrides the configured level.
pub fn init(cfg: &LogSection) {
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.level));
    // The TURN server crate logs every 401 challenge (a normal step) as an error; our own
    // `overlay::turn_server` target logs allocations. Named explicitly, they log as asked.
    let asked = std::env::var("RUST_LOG").unwrap_or_default() + &cfg.level;
    for c in ["turn_server_proto", "stun_proto"] {
        if !asked.contains(c)
            && let Ok(d) = format!("{c}=off").parse()
        {
            filter = filter.add_directive(d);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = if cfg.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
