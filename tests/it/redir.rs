//! ReDiR service discovery (RFC 7374) over real processes: four enrolled nodes, two register
//! in `pstn-gateway` (from config.yaml `services.register`), every node's lookup finds a
//! provider, a key equal to a provider's Node-ID finds that provider (closest successor), and
//! after SIGKILL of a provider its registrations expire and lookups stop returning it. The
//! `p2psip service` CLI registers and looks up through the admin endpoint.

use crate::harness::bin;
use crate::overlay::{OverlayNode, http, wait_for, wait_ring};
use crate::overlay_calls::{start_with, status};
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// A lookup through `n`'s admin endpoint; the provider found (hex), or None on any failure.
fn lookup(n: &OverlayNode, ns: &str, key: Option<&str>) -> Option<String> {
    let k = key.map(|k| format!("&key={k}")).unwrap_or_default();
    let (c, b) = http(
        n.admin,
        "GET",
        &format!("/redir?op=lookup&namespace={ns}{k}"),
        b"",
    )?;
    if c != 200 {
        return None;
    }
    let v: Value = serde_json::from_str(&b).ok()?;
    v["provider"].as_str().map(String::from)
}

fn node_id(n: &OverlayNode) -> String {
    status(n.admin).unwrap()["node_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn redir_finds_providers_and_forgets_dead_ones() {
    // Short lifetime and refresh so a dead provider expires within seconds.
    let mut nodes = start_with(4, |i, c| {
        let reg = if i == 2 || i == 3 {
            "[pstn-gateway]"
        } else {
            "[]"
        };
        c + &format!("services:\n  register: {reg}\n  lifetime: 4\n  refresh: 1\n")
    });
    let refs: Vec<&OverlayNode> = nodes.iter().map(|n| &n.0).collect();
    wait_ring(&refs, T);
    let ids: Vec<String> = nodes.iter().map(|n| node_id(&n.0)).collect();
    // /status lists the namespaces each node keeps registered.
    assert_eq!(
        status(nodes[1].0.admin).unwrap()["services"],
        serde_json::json!(["pstn-gateway"])
    );
    assert_eq!(
        status(nodes[0].0.admin).unwrap()["services"],
        serde_json::json!([])
    );
    let providers = [ids[1].clone(), ids[2].clone()];
    // Every node finds a provider; a provider's own Node-ID as key finds that provider.
    for n in &nodes {
        let p = wait_for(&format!("a pstn-gateway lookup at {}", n.0.user), T, || {
            lookup(&n.0, "pstn-gateway", None)
        });
        assert!(providers.contains(&p), "{p} is not a provider");
        for want in &providers {
            wait_for(&format!("lookup of {want} at {}", n.0.user), T, || {
                (lookup(&n.0, "pstn-gateway", Some(want)).as_ref() == Some(want)).then_some(())
            });
        }
    }
    // The closest successor: a key just after one provider's id finds the other provider
    // (the next one on the ring, wrapping around).
    for (i, p) in providers.iter().enumerate() {
        let key = format!(
            "{:032x}",
            u128::from_str_radix(p, 16).unwrap().wrapping_add(1)
        );
        let other = &providers[1 - i];
        wait_for(&format!("the successor of {key}"), T, || {
            (lookup(&nodes[0].0, "pstn-gateway", Some(&key)).as_ref() == Some(other)).then_some(())
        });
    }
    let empty = lookup(&nodes[0].0, "conference-focus", None);
    assert_eq!(empty, None, "an empty namespace has no provider");
    let (c, b) = http(
        nodes[0].0.admin,
        "GET",
        "/redir?op=lookup&namespace=conference-focus",
        b"",
    )
    .unwrap();
    assert_eq!(c, 200, "{b}");
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap()["provider"],
        Value::Null
    );

    // The CLI: node 4 registers in turn-server, node 1 looks it up.
    let out = std::process::Command::new(bin())
        .args([
            "service",
            "register",
            "turn-server",
            "--admin",
            &nodes[3].0.admin.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&ids[3]));
    wait_for("the CLI lookup of turn-server", T, || {
        let out = std::process::Command::new(bin())
            .args([
                "service",
                "lookup",
                "turn-server",
                "--admin",
                &nodes[0].0.admin.to_string(),
            ])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && text.contains(&format!("provider {}", ids[3]))).then_some(())
    });

    // SIGKILL provider A (node 2): once its registrations' lifetime is over, no lookup returns
    // it; a key equal to A's Node-ID now finds the other provider.
    let victim_id = ids[1].clone();
    let mut victim = nodes.remove(1);
    let _ = victim.0.proc.child.kill();
    let _ = victim.0.proc.child.wait();
    let refs: Vec<&OverlayNode> = nodes.iter().map(|n| &n.0).collect();
    wait_ring(&refs, T);
    for n in &nodes {
        wait_for(
            &format!("{} forgetting the dead provider", n.0.user),
            T,
            || {
                let a = lookup(&n.0, "pstn-gateway", Some(&victim_id))?;
                let b = lookup(&n.0, "pstn-gateway", None)?;
                (a == ids[2] && b == ids[2]).then_some(())
            },
        );
    }
}

/// RFC 7363 self-tuning in the real driver: `/status` shows the estimate, and a neighbour's
/// death (SIGKILL) shortens the stabilization interval of the nodes that watched it.
#[test]
fn self_tuning_shortens_the_interval_after_churn() {
    let mut nodes = start_with(4, |_, c| {
        c.replace("overlay:\n", "overlay:\n  self_tuning: true\n")
    });
    let refs: Vec<&OverlayNode> = nodes.iter().map(|n| &n.0).collect();
    wait_ring(&refs, T);
    let st = status(nodes[0].0.admin).unwrap();
    let tuning = &st["self_tuning"];
    assert_eq!(tuning["enabled"], true, "{st}");
    assert_eq!(tuning["update_interval_ms"], 60_000, "{st}");
    assert!(tuning["estimated_n"].as_f64().unwrap() >= 2.0, "{st}");
    let mut victim = nodes.remove(2);
    let _ = victim.0.proc.child.kill();
    let _ = victim.0.proc.child.wait();
    for n in &nodes {
        wait_for(&format!("{} shortening its interval", n.0.user), T, || {
            let st = status(n.0.admin)?;
            let ms = st["self_tuning"]["update_interval_ms"].as_u64()?;
            (ms < 60_000).then_some(())
        });
    }
}
