//! `p2psip service register NS` / `p2psip service lookup NS [KEY]`: ReDiR service discovery
//! (RFC 7374) through a running node's admin endpoint (`POST /redir?op=register&namespace=NS`,
//! `GET /redir?op=lookup&namespace=NS&key=HEX`, see [`crate::redir`]).

use clap::{Args, Subcommand};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `p2psip service`.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// What to do.
    #[command(subcommand)]
    pub cmd: ServiceCommand,
    /// The running node's admin endpoint (host:port; the default matches `admin.listen`).
    #[arg(long, default_value = "127.0.0.1:9060", global = true)]
    pub admin: String,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 30000, global = true)]
    pub timeout_ms: u64,
    /// Print the raw JSON reply.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `service` subcommands.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Register the node as a provider in a namespace (and keep it refreshed).
    Register {
        /// Namespace, e.g. `pstn-gateway` or `turn-server`.
        namespace: String,
    },
    /// Find the provider closest after KEY (default: the node's own Node-ID).
    Lookup {
        /// Namespace, e.g. `pstn-gateway`.
        namespace: String,
        /// A 32-hex-digit key.
        key: Option<String>,
    },
}

/// Percent-encodes a query value (unreserved characters pass).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The admin request line for a command: (method, target).
fn request(cmd: &ServiceCommand) -> (&'static str, String) {
    match cmd {
        ServiceCommand::Register { namespace } => (
            "POST",
            format!("/redir?op=register&namespace={}", enc(namespace)),
        ),
        ServiceCommand::Lookup { namespace, key } => {
            let mut t = format!("/redir?op=lookup&namespace={}", enc(namespace));
            if let Some(k) = key {
                t.push_str(&format!("&key={}", enc(k)));
            }
            ("GET", t)
        }
    }
}

fn call(args: &ServiceArgs) -> Result<(u16, String), String> {
    let (method, target) = request(&args.cmd);
    let mut s = TcpStream::connect(&args.admin)
        .map_err(|e| format!("cannot reach the admin endpoint {}: {e}", args.admin))?;
    s.set_read_timeout(Some(Duration::from_millis(args.timeout_ms)))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        args.admin
    );
    s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&resp);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("malformed HTTP reply from the admin endpoint")?;
    let code = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or("malformed HTTP status line")?;
    Ok((code, body.to_string()))
}

/// Human-readable text for a walk report.
fn render(cmd: &ServiceCommand, body: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return format!("{body}\n");
    };
    let mut out = String::new();
    let ns = v["namespace"].as_str().unwrap_or("?");
    let provider = v["provider"].as_str();
    match cmd {
        ServiceCommand::Register { .. } => {
            out.push_str(&format!("registered {} in {ns}\n", provider.unwrap_or("?")));
        }
        ServiceCommand::Lookup { .. } => match provider {
            Some(p) => out.push_str(&format!(
                "{ns}: provider {p} (closest after {})\n",
                v["key"].as_str().unwrap_or("?")
            )),
            None => out.push_str(&format!("{ns}: no provider registered\n")),
        },
    }
    for s in v["steps"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  level {} node {}{}: {} provider(s)\n",
            s["level"],
            s["node"],
            if s["stored"].as_bool() == Some(true) {
                " (stored)"
            } else {
                ""
            },
            s["providers"].as_array().map_or(0, Vec::len)
        ));
    }
    out
}

/// Runs `p2psip service ...`.
pub fn run(args: ServiceArgs) -> ExitCode {
    match call(&args) {
        Ok((code, body)) if (200..300).contains(&code) => {
            if args.json {
                println!("{body}");
            } else {
                print!("{}", render(&args.cmd, &body));
            }
            ExitCode::SUCCESS
        }
        Ok((code, body)) => {
            eprintln!("error: admin endpoint answered {code}: {}", body.trim());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        let r = request(&ServiceCommand::Register {
            namespace: "pstn gw".into(),
        });
        assert_eq!(r, ("POST", "/redir?op=register&namespace=pstn%20gw".into()));
        let l = request(&ServiceCommand::Lookup {
            namespace: "turn-server".into(),
            key: Some("00ff".into()),
        });
        assert_eq!(
            l,
            (
                "GET",
                "/redir?op=lookup&namespace=turn-server&key=00ff".into()
            )
        );
    }

    #[test]
    fn renders_a_lookup() {
        let cmd = ServiceCommand::Lookup {
            namespace: "x".into(),
            key: None,
        };
        let t = render(
            &cmd,
            r#"{"namespace":"x","key":"01","provider":"ab","steps":[{"level":2,"node":3,"stored":false,"providers":["ab"]}]}"#,
        );
        assert!(t.contains("x: provider ab (closest after 01)"), "{t}");
        assert!(t.contains("level 2 node 3: 1 provider(s)"), "{t}");
        let none = render(&cmd, r#"{"namespace":"x","provider":null,"steps":[]}"#);
        assert!(none.contains("no provider"), "{none}");
    }
}
