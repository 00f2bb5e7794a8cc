//! Self-tuning of the Chord stabilization interval (after RFC 7363) in the real driver: the
//! sans-IO [`SelfTuner`] of `reload::usage::self_tuning`, fed with the neighbour lists after
//! every event, and its `/status` view.

pub use reload::usage::self_tuning::SelfTuner;
use reload::usage::self_tuning::{DELTA, successor_list_size};

/// The `/status` view of a tuner.
pub fn status(t: &SelfTuner) -> serde_json::Value {
    serde_json::json!({
        "enabled": true,
        "estimated_n": t.estimated_n.round(),
        "churn_per_peer_per_s": t.churn_per_peer,
        "update_interval_ms": t.interval_ms,
        "recommended_successors": successor_list_size(t.estimated_n, DELTA),
    })
}
