//! `p2psip diag ping|path|info TARGET`: RFC 7851 overlay diagnostics through a running node's
//! admin endpoint.
//!
//! The node does the RELOAD work (`Node::ping`, `Node::path_track`, `Node::diagnostics`); this
//! command only sends one JSON request to the admin route `POST /diag` and prints the reply:
//!
//! ```text
//! request:  {"op":"ping"|"path"|"info", "target":{"node":"<32 hex>"} | {"resource":"<name>"},
//!            "kinds":["STATUS_INFO",...], "timeout_ms":5000}
//! reply:    {"hops":[{"node":"<32 hex>","rtt_ms":12,"overlay_hops":3,
//!                     "info":[{"kind":"ROUTING_TABLE_SIZE","value":17},...]}],
//!            "complete":true, "error":null}
//! ```
//! `ping` answers with one hop (the responder), `info` with one hop carrying `info`, `path`
//! with one entry per PathTrack hop in order, `complete` false if the walk stopped early.

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `p2psip diag`.
#[derive(Debug, Args)]
pub struct DiagArgs {
    /// What to ask.
    #[command(subcommand)]
    pub cmd: DiagCommand,
    /// The running node's admin endpoint (host:port; the default matches `admin.listen`).
    #[arg(long, default_value = "127.0.0.1:9060", global = true)]
    pub admin: String,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 5000, global = true)]
    pub timeout_ms: u64,
    /// Print the raw JSON reply.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `diag` subcommands.
#[derive(Debug, Subcommand)]
pub enum DiagCommand {
    /// Ping the node with this Node-ID, or the node responsible for a resource name.
    Ping {
        /// A Node-ID (32 hex digits) or a resource name (hashed by the node).
        target: String,
    },
    /// Trace the overlay path to a Node-ID or resource (PathTrack, RFC 7851 6.2).
    Path {
        /// A Node-ID (32 hex digits) or a resource name.
        target: String,
    },
    /// Ask a node for diagnostic information (RFC 7851 5.3).
    Info {
        /// A Node-ID (32 hex digits) or a resource name.
        target: String,
        /// Kinds to ask for, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        kinds: Vec<String>,
    },
}

/// Where a diagnostic goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// A Node-ID in hex.
    Node(String),
    /// A resource name.
    Resource(String),
}

impl Target {
    /// A 32-hex-digit string (optionally `0x`-prefixed) is a Node-ID; anything else a name.
    pub fn parse(s: &str) -> Target {
        let h = s.strip_prefix("0x").unwrap_or(s);
        if h.len() == 32 && h.chars().all(|c| c.is_ascii_hexdigit()) {
            Target::Node(h.to_ascii_lowercase())
        } else {
            Target::Resource(s.to_string())
        }
    }
}

/// The body of `POST /diag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagRequest {
    /// "ping", "path" or "info".
    pub op: String,
    /// Target.
    pub target: Target,
    /// RFC 7851 kind names; empty = all.
    pub kinds: Vec<String>,
    /// Timeout for the whole operation.
    pub timeout_ms: u64,
}

/// One diagnostic value in a reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfoItem {
    /// RFC 7851 kind name (or its number).
    pub kind: String,
    /// The value (number, string, or list for INSTANCES_STORED / MESSAGES_SENT_RCVD).
    pub value: serde_json::Value,
}

/// One responder in a reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    /// Its Node-ID in hex.
    pub node: String,
    /// Round trip of its answer.
    pub rtt_ms: Option<u64>,
    /// Overlay hops the request took to reach it.
    pub overlay_hops: Option<u32>,
    /// Diagnostic information it returned.
    #[serde(default)]
    pub info: Vec<InfoItem>,
}

/// The reply of `POST /diag`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagReply {
    /// Responders, in path order.
    pub hops: Vec<Hop>,
    /// The operation reached its target.
    pub complete: bool,
    /// What failed, if anything (RFC 6940 / RFC 7851 error name).
    pub error: Option<String>,
}

/// Something that can run a diagnostic (the admin endpoint, or a fake in tests).
pub trait DiagClient {
    /// Runs `req`.
    fn call(&self, req: &DiagRequest) -> Result<DiagReply, String>;
}

/// `POST /diag` over plain HTTP/1.1 to the admin endpoint.
pub struct AdminClient {
    /// host:port.
    pub addr: String,
    /// Socket timeout.
    pub timeout: Duration,
}

impl DiagClient for AdminClient {
    fn call(&self, req: &DiagRequest) -> Result<DiagReply, String> {
        let body = serde_json::to_vec(req).map_err(|e| e.to_string())?;
        let mut s = TcpStream::connect(&self.addr)
            .map_err(|e| format!("cannot reach the admin endpoint {}: {e}", self.addr))?;
        s.set_read_timeout(Some(self.timeout + Duration::from_secs(1)))
            .map_err(|e| e.to_string())?;
        let head = format!(
            "POST /diag HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        s.write_all(head.as_bytes())
            .and_then(|_| s.write_all(&body))
            .map_err(|e| e.to_string())?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).map_err(|e| e.to_string())?;
        parse_http_reply(&resp)
    }
}

/// Splits an HTTP/1.1 response and decodes its JSON body (2xx only).
pub fn parse_http_reply(resp: &[u8]) -> Result<DiagReply, String> {
    let text = String::from_utf8_lossy(resp);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("malformed HTTP reply from the admin endpoint")?;
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or("malformed HTTP status line")?;
    if !(200..300).contains(&status) {
        return Err(format!("admin endpoint answered {status}: {}", body.trim()));
    }
    serde_json::from_str(body).map_err(|e| format!("bad JSON from the admin endpoint: {e}"))
}

/// Builds the request for a command, checking kind names.
pub fn build_request(cmd: &DiagCommand, timeout_ms: u64) -> Result<DiagRequest, String> {
    let (op, target, kinds) = match cmd {
        DiagCommand::Ping { target } => ("ping", target, Vec::new()),
        DiagCommand::Path { target } => ("path", target, Vec::new()),
        DiagCommand::Info { target, kinds } => ("info", target, kinds.clone()),
    };
    let mut names = Vec::new();
    for k in kinds {
        match reload::wire::DiagnosticKindId::from_name(k.trim()) {
            Some(id) => names.push(id.name().unwrap_or_default().to_string()),
            None => return Err(format!("unknown diagnostic kind {k:?}")),
        }
    }
    Ok(DiagRequest {
        op: op.into(),
        target: Target::parse(target),
        kinds: names,
        timeout_ms,
    })
}

/// Human-readable form of a reply.
pub fn format_reply(op: &str, r: &DiagReply) -> String {
    let mut out = String::new();
    for (i, h) in r.hops.iter().enumerate() {
        let rtt = h.rtt_ms.map_or("-".into(), |v| format!("{v} ms"));
        let hops = h
            .overlay_hops
            .map_or(String::new(), |v| format!("  ({v} overlay hops)"));
        if op == "path" {
            out.push_str(&format!("{:>2}  {}  {rtt}{hops}\n", i + 1, h.node));
        } else {
            out.push_str(&format!("{}  {rtt}{hops}\n", h.node));
        }
        for it in &h.info {
            let v = match &it.value {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            out.push_str(&format!("    {:<20} {v}\n", it.kind));
        }
    }
    if let Some(e) = &r.error {
        out.push_str(&format!("error: {e}\n"));
    } else if !r.complete {
        out.push_str("incomplete: the target was not reached\n");
    }
    out
}

/// Runs one diagnostic through `client`; returns the text to print and success.
pub fn execute(client: &dyn DiagClient, args: &DiagArgs) -> (String, bool) {
    let req = match build_request(&args.cmd, args.timeout_ms) {
        Ok(r) => r,
        Err(e) => return (format!("error: {e}\n"), false),
    };
    match client.call(&req) {
        Ok(reply) => {
            let ok = reply.error.is_none() && reply.complete;
            let text = if args.json {
                serde_json::to_string_pretty(&reply).unwrap_or_default() + "\n"
            } else {
                format_reply(&req.op, &reply)
            };
            (text, ok)
        }
        Err(e) => (format!("error: {e}\n"), false),
    }
}

/// Entry point of `p2psip diag`.
pub fn run(args: DiagArgs) -> ExitCode {
    let client = AdminClient {
        addr: args.admin.clone(),
        timeout: Duration::from_millis(args.timeout_ms),
    };
    let (text, ok) = execute(&client, &args);
    if ok {
        print!("{text}");
        ExitCode::SUCCESS
    } else {
        eprint!("{text}");
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    struct Fake(RefCell<Vec<DiagRequest>>, DiagReply);
    impl DiagClient for Fake {
        fn call(&self, req: &DiagRequest) -> Result<DiagReply, String> {
            self.0.borrow_mut().push(req.clone());
            Ok(self.1.clone())
        }
    }

    fn args(cmd: DiagCommand) -> DiagArgs {
        DiagArgs {
            cmd,
            admin: "127.0.0.1:1".into(),
            timeout_ms: 100,
            json: false,
        }
    }

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse("0x000102030405060708090A0B0C0D0E0F"),
            Target::Node("000102030405060708090a0b0c0d0e0f".into())
        );
        assert_eq!(
            Target::parse("alice@example.com"),
            Target::Resource("alice@example.com".into())
        );
    }

    #[test]
    fn info_request_json_and_output() {
        let reply = DiagReply {
            hops: vec![Hop {
                node: "ab".repeat(16),
                rtt_ms: Some(4),
                overlay_hops: Some(2),
                info: vec![
                    InfoItem {
                        kind: "ROUTING_TABLE_SIZE".into(),
                        value: 17.into(),
                    },
                    InfoItem {
                        kind: "SOFTWARE_VERSION".into(),
                        value: "p2psip-reload/0.1.0".into(),
                    },
                ],
            }],
            complete: true,
            error: None,
        };
        let fake = Fake(RefCell::new(vec![]), reply);
        let a = args(DiagCommand::Info {
            target: "pstn-gateway".into(),
            kinds: vec!["routing_table_size".into(), "SOFTWARE_VERSION".into()],
        });
        let (text, ok) = execute(&fake, &a);
        assert!(ok, "{text}");
        let sent = fake.0.borrow()[0].clone();
        assert_eq!(
            serde_json::to_value(&sent).unwrap(),
            serde_json::json!({"op":"info","target":{"resource":"pstn-gateway"},
                "kinds":["ROUTING_TABLE_SIZE","SOFTWARE_VERSION"],"timeout_ms":100})
        );
        assert!(text.contains("ROUTING_TABLE_SIZE   17"), "{text}");
        assert!(text.contains("(2 overlay hops)"));
    }

    #[test]
    fn path_output_and_failures() {
        let reply = DiagReply {
            hops: vec![
                Hop {
                    node: "01".repeat(16),
                    rtt_ms: Some(1),
                    overlay_hops: Some(1),
                    info: vec![],
                },
                Hop {
                    node: "02".repeat(16),
                    rtt_ms: None,
                    overlay_hops: None,
                    info: vec![],
                },
            ],
            complete: false,
            error: None,
        };
        let out = format_reply("path", &reply);
        assert!(out.starts_with(" 1  0101"), "{out}");
        assert!(out.contains(" 2  0202"));
        assert!(out.contains("incomplete"));
        let fake = Fake(RefCell::new(vec![]), reply);
        assert!(!execute(&fake, &args(DiagCommand::Path { target: "x".into() })).1);
        let bad = args(DiagCommand::Info {
            target: "x".into(),
            kinds: vec!["NOPE".into()],
        });
        assert!(execute(&fake, &bad).0.contains("unknown diagnostic kind"));
    }

    #[test]
    fn http_reply_parsing() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"hops\":[],\"complete\":true,\"error\":null}";
        assert_eq!(parse_http_reply(ok).unwrap().hops.len(), 0);
        let err = b"HTTP/1.1 404 Not Found\r\n\r\nno route";
        assert!(parse_http_reply(err).unwrap_err().contains("404"));
    }

    #[test]
    fn unreachable_admin_is_an_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let c = AdminClient {
            addr,
            timeout: Duration::from_millis(200),
        };
        let (text, ok) = execute(&c, &args(DiagCommand::Ping { target: "x".into() }));
        assert!(!ok);
        assert!(text.contains("admin endpoint"), "{text}");
    }
}
