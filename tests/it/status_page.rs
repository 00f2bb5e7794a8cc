//! The admin status page (issue 10): a 3-node overlay with a registered phone, the page
//! rendered by headless Chromium (Debian `chromium`): the DOM after the page's script ran must
//! show this node, its ring neighbours, its links and the registration; a screenshot goes to
//! `$P2PSIP_ARTIFACTS` (default `<target dir>/artifacts`) as `status-page.png`.
//! Skipped, with a printed reason, when chromium or sipp is not installed.

use crate::harness::{free_udp_port, have};
use crate::overlay::{http, wait_for, wait_ring};
use crate::overlay_calls::{have_sipp, register, start, status};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| have(c, "--version"))
}

fn artifacts() -> PathBuf {
    let dir = std::env::var_os("P2PSIP_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // The test binary lives in <target>/debug/deps.
            let exe = std::env::current_exe().unwrap();
            exe.ancestors().nth(3).unwrap().join("artifacts")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs headless Chromium on `url` with `args`, bounded in time; returns stdout.
fn run_chromium(bin: &str, profile: &std::path::Path, args: &[&str], url: &str) -> String {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1100,1000",
            // Lets the page's fetch/setInterval run before the DOM is dumped.
            "--virtual-time-budget=4000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chromium");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let code = crate::harness::wait_child(&mut child, Duration::from_secs(60));
    assert_eq!(code, Some(0), "chromium {args:?} failed or timed out");
    reader.join().unwrap()
}

#[test]
fn status_page_draws_the_ring_in_headless_chromium() {
    let Some(browser) = chromium() else {
        eprintln!("SKIPPED: `chromium` is not installed (Debian: chromium)");
        return;
    };
    if !have_sipp() {
        return;
    }
    let nodes = start(3);
    wait_ring(&nodes.iter().map(|n| &n.0).collect::<Vec<_>>(), T);
    let work = tempfile::tempdir().unwrap();
    register(work.path(), nodes[0].1, "1001", 600, free_udp_port());
    let a = &nodes[0].0;
    let st = wait_for("the registration stored", T, || {
        let st = status(a.admin)?;
        let stored = st["registrations"]
            .as_array()?
            .iter()
            .any(|r| r["aor"] == "sip:1001@p2psip.local" && r["stored"] == true);
        stored.then_some(st)
    });
    let me = st["node_id"].as_str().unwrap().to_owned();
    let succ = st["successors"][0].as_str().unwrap().to_owned();

    // The SIP counters are in /metrics (issue 6: REGISTERs by result).
    let (code, metrics) = http(a.admin, "GET", "/metrics", b"").unwrap();
    assert_eq!(code, 200);
    assert!(
        metrics.contains("p2psip_sip_registers_total{result=\"registered\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("p2psip_sip_registers_total{result=\"challenged\",status=\"401\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("p2psip_sip_calls_in_progress 0"),
        "{metrics}"
    );

    // The page itself is served at `/`.
    let (code, html) = http(a.admin, "GET", "/", b"").unwrap();
    assert_eq!(code, 200);
    assert!(html.contains("<svg id=\"ring\""), "{html}");

    let url = format!("http://{}/", a.admin);
    let profile = tempfile::tempdir().unwrap();
    let dom = run_chromium(browser, profile.path(), &["--dump-dom"], &url);
    assert!(
        dom.contains("data-rendered=\"1\""),
        "page script did not render: {dom}"
    );
    assert!(
        dom.contains(&format!("data-node=\"{me}\"")),
        "this node not drawn: {dom}"
    );
    assert!(
        dom.contains(&format!("data-node=\"{succ}\"")),
        "successor not drawn: {dom}"
    );
    assert!(dom.contains("data-kind=\"successor"), "{dom}");
    assert!(
        dom.contains("sip:1001@p2psip.local"),
        "registration missing: {dom}"
    );
    assert!(dom.contains("class=\"up\">up<"), "no link shown up: {dom}");

    let shot = artifacts().join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    run_chromium(
        browser,
        profile.path(),
        &[&format!("--screenshot={}", shot.display())],
        &url,
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot too small"
    );
    eprintln!("status page screenshot: {}", shot.display());
}
