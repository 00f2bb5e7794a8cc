//! Call records (issue 10): one JSON line per INVITE in `<data_dir>/calls.jsonl`, with a
//! simple size-based rotation (`calls.jsonl` becomes `calls.jsonl.1` past `max_bytes`).

use sip::proxy::CallRecord;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// The call record file.
pub struct CallLog {
    path: PathBuf,
    max_bytes: u64,
}

/// Default rotation size: 10 MB.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;

fn rfc3339(t: SystemTime) -> String {
    let d = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    time::OffsetDateTime::from_unix_timestamp_nanos(d.as_nanos() as i128)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl CallLog {
    /// Records go to `path`.
    pub fn new(path: PathBuf, max_bytes: u64) -> Self {
        CallLog { path, max_bytes }
    }

    /// The JSON line of a record; `now` is the proxy's clock at the time of writing, used
    /// to turn the record's instants into wall-clock times.
    pub fn line(rec: &CallRecord, now: Instant) -> String {
        let wall_now = SystemTime::now();
        let wall = |i: Instant| wall_now - now.saturating_duration_since(i);
        let v = serde_json::json!({
            "call_id": rec.call_id,
            "caller": rec.caller,
            "callee": rec.callee,
            "start": rfc3339(wall(rec.start)),
            "answer": rec.answer.map(|a| rfc3339(wall(a))),
            "end": rfc3339(wall(rec.end)),
            "duration_s": rec.answer.map(|a| rec.end.saturating_duration_since(a).as_secs_f64()),
            "result": rec.result,
            "sip_status": rec.status,
            "sip_reason": rec.reason,
        });
        v.to_string()
    }

    /// Appends one record (errors are logged, not fatal).
    pub fn write(&mut self, rec: &CallRecord, now: Instant) {
        let line = Self::line(rec, now);
        if let Err(e) = self.append(&line) {
            tracing::warn!(
                "could not write call record to {}: {e}",
                self.path.display()
            );
        }
    }

    fn append(&mut self, line: &str) -> std::io::Result<()> {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() >= self.max_bytes) {
            let mut old = self.path.clone().into_os_string();
            old.push(".1");
            std::fs::rename(&self.path, old)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        writeln!(f, "{line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.jsonl");
        let mut log = CallLog::new(path.clone(), 300);
        let t = Instant::now();
        let rec = CallRecord {
            call_id: "c1".into(),
            caller: "sip:1000@p2psip.local".into(),
            callee: "sip:1001@p2psip.local".into(),
            start: t,
            answer: Some(t + Duration::from_secs(2)),
            end: t + Duration::from_secs(12),
            result: "answered".into(),
            status: 200,
            reason: "OK".into(),
        };
        log.write(&rec, t + Duration::from_secs(12));
        let text = std::fs::read_to_string(&path).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["result"], "answered");
        assert_eq!(v["sip_status"], 200);
        assert_eq!(v["duration_s"], 10.0);
        for _ in 0..3 {
            log.write(&rec, t);
        }
        assert!(dir.path().join("calls.jsonl.1").exists());
    }
}
