//! Starting `p2psip` processes in a temporary directory and reading their logs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// Path of the binary under test (cargo builds it for integration tests).
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_p2psip"))
}

/// A running node process whose stderr lines are collected.
pub struct NodeProc {
    /// The child process.
    pub child: Child,
    lines: Receiver<String>,
    /// Every line seen so far.
    pub seen: Vec<String>,
    /// Its working directory (holds config.yaml and data/).
    pub dir: tempfile::TempDir,
}

impl NodeProc {
    /// Writes `config` as `config.yaml` in a fresh directory and starts `p2psip` there.
    pub fn start(config: &str) -> NodeProc {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("config.yaml"), config).expect("write config");
        Self::start_in(dir, &[])
    }

    /// Starts `p2psip ARGS` in `dir`.
    pub fn start_in(dir: tempfile::TempDir, args: &[&str]) -> NodeProc {
        Self::start_in_env(dir, args, &[])
    }

    /// Starts `p2psip ARGS` in `dir` with extra environment variables.
    pub fn start_in_env(dir: tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> NodeProc {
        let mut child = Command::new(bin())
            .args(args)
            .envs(env.iter().copied())
            .current_dir(dir.path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn p2psip");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        NodeProc {
            child,
            lines,
            seen: Vec::new(),
            dir,
        }
    }

    /// Collects the lines logged so far (without waiting) and returns all seen.
    pub fn drain(&mut self) -> &[String] {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
        &self.seen
    }

    /// Waits up to `timeout` for a log line containing `needle`; returns it.
    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => panic!(
                    "no log line containing {needle:?} within {timeout:?}; log so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Sends a signal (by name, e.g. "TERM") and waits for exit, returning the exit code.
    pub fn signal_and_wait(&mut self, sig: &str, timeout: Duration) -> Option<i32> {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status();
        self.wait_exit(timeout)
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                // Drain the rest of the log.
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(l);
                }
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "process did not exit within {timeout:?}; log:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20)); // ok: polling interval of a bounded wait
        }
    }

    /// The working directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config listening on loopback with OS-chosen ports.
pub fn loopback_config() -> String {
    format!(
        "sip:\n  udp: [\"127.0.0.1:0\"]\n  tcp: [\"127.0.0.1:0\"]\n{}",
        LOOPBACK_OVERLAY
    )
}

/// Overlay and admin on loopback with OS-chosen ports (appended to test configs so parallel
/// nodes never fight over 6084/9060).
pub const LOOPBACK_OVERLAY: &str = "overlay:\n  listen: \"127.0.0.1:0\"\n  discovery: {enabled: false}\nadmin:\n  listen: \"127.0.0.1:0\"\n";

/// The socket address that follows `marker` in a log line (a trailing comma is dropped).
pub fn addr_after(line: &str, marker: &str) -> std::net::SocketAddr {
    let rest = &line[line.find(marker).expect("marker") + marker.len()..];
    rest.split_whitespace()
        .next()
        .expect("address")
        .trim_end_matches(',')
        .parse()
        .expect("socket address")
}

/// Whether `tool` runs; prints why the test is skipped when it does not.
pub fn have(tool: &str, arg: &str) -> bool {
    let ok = Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        eprintln!("SKIPPED: `{tool}` is not installed (Debian: sip-tester / baresip)");
    }
    ok
}

/// A free UDP port on loopback (bound, read, released) for clients that need one.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A SIPp scenario file of deploy/sipp/.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/sipp")
        .join(name)
}

/// Waits for a child with a deadline; kills it when the deadline passes.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20)); // ok: polling interval of a bounded wait
    }
}

/// The enrollment password of test overlays.
pub const ENROLL_PASSWORD: &str = "test-enroll-pw";

/// The `overlay.enrollment` line of a test config (indented for the `overlay:` section): the
/// first node serves enrollment with [`ENROLL_PASSWORD`] on a free port; a joining node
/// (`server` = the first node's enrollment address) enrolls there with it.
pub fn enrollment_yaml(server: Option<std::net::SocketAddr>) -> String {
    match server {
        None => format!("  enrollment: {{listen: \"127.0.0.1:0\", password: {ENROLL_PASSWORD}}}\n"),
        Some(a) => format!(
            "  enrollment: {{password: {ENROLL_PASSWORD}, server: \"https://{a}/enroll\"}}\n"
        ),
    }
}

/// Waits for the node's embedded enrollment server and returns its address.
pub fn enrollment_server(p: &mut NodeProc) -> std::net::SocketAddr {
    let l = p.wait_line("enrollment server for overlay", Duration::from_secs(20));
    addr_after(&l, "listening on ")
}
