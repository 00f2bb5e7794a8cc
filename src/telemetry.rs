//! Logging setup: plain words for operators, JSON for collectors.

use crate::config::LogSection;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; RUST_LOG overrides the configured level.
pub fn init(cfg: &LogSection) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.level));
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
