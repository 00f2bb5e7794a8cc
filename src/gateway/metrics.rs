//! SIP counters for `GET /metrics` (Prometheus text): REGISTERs by result and status, calls
//! by result, calls in progress.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Counters {
    registers: BTreeMap<(&'static str, u16), u64>,
    calls: BTreeMap<String, u64>,
    live_calls: usize,
}

/// The SIP side's metrics, shared by the gateway (writer) and the admin endpoint (reader).
#[derive(Clone, Default)]
pub struct SipMetrics(Arc<Mutex<Counters>>);

impl SipMetrics {
    fn with(&self, f: impl FnOnce(&mut Counters)) {
        if let Ok(mut c) = self.0.lock() {
            f(&mut c);
        }
    }

    /// Counts one REGISTER answered with `status`; `result` is `registered`, `unregistered`,
    /// `queried`, `challenged` or `rejected`.
    pub fn register(&self, result: &'static str, status: u16) {
        self.with(|c| *c.registers.entry((result, status)).or_default() += 1);
    }

    /// Counts one finished call by its call-record result (`answered`, `busy`, ...).
    pub fn call(&self, result: &str) {
        self.with(|c| *c.calls.entry(result.to_owned()).or_default() += 1);
    }

    /// Sets the number of calls in progress.
    pub fn set_live_calls(&self, n: usize) {
        self.with(|c| c.live_calls = n);
    }

    /// The metrics in the Prometheus text format.
    pub fn prometheus(&self) -> String {
        let mut s = String::new();
        let Ok(c) = self.0.lock() else {
            return s;
        };
        let _ = writeln!(
            s,
            "# HELP p2psip_sip_registers_total REGISTER requests answered, by result and status.\n# TYPE p2psip_sip_registers_total counter"
        );
        for ((result, status), n) in &c.registers {
            let _ = writeln!(
                s,
                "p2psip_sip_registers_total{{result=\"{result}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            s,
            "# HELP p2psip_sip_calls_total Calls (INVITEs) finished, by result.\n# TYPE p2psip_sip_calls_total counter"
        );
        for (result, n) in &c.calls {
            let result = result.replace(['"', '\\', '\n'], "_");
            let _ = writeln!(s, "p2psip_sip_calls_total{{result=\"{result}\"}} {n}");
        }
        let _ = writeln!(
            s,
            "# HELP p2psip_sip_calls_in_progress Calls ringing or answered now.\n# TYPE p2psip_sip_calls_in_progress gauge\np2psip_sip_calls_in_progress {}",
            c.live_calls
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_label() {
        let m = SipMetrics::default();
        m.register("registered", 200);
        m.register("registered", 200);
        m.register("challenged", 401);
        m.call("no answer");
        m.set_live_calls(3);
        let t = m.prometheus();
        assert!(t.contains("p2psip_sip_registers_total{result=\"registered\",status=\"200\"} 2"));
        assert!(t.contains("p2psip_sip_registers_total{result=\"challenged\",status=\"401\"} 1"));
        assert!(t.contains("p2psip_sip_calls_total{result=\"no answer\"} 1"));
        assert!(t.contains("p2psip_sip_calls_in_progress 3"));
    }
}
