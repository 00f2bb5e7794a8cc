//! `p2psip forward set USER TARGET` / `p2psip forward del USER`: call forwarding (RFC 7904
//! `sip_registration_uri` entries) through a running node's admin endpoint
//! (`POST /forward?user=U&target=T`, no target: remove).

use clap::{Args, Subcommand};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `p2psip forward`.
#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// What to do.
    #[command(subcommand)]
    pub cmd: ForwardCommand,
    /// The running node's admin endpoint (host:port; the default matches `admin.listen`).
    #[arg(long, default_value = "127.0.0.1:9060", global = true)]
    pub admin: String,
}

/// `forward` subcommands.
#[derive(Debug, Subcommand)]
pub enum ForwardCommand {
    /// Forward calls for USER to TARGET (user names of the node's domain, or AORs).
    Set {
        /// The forwarded user.
        user: String,
        /// Where calls go instead.
        target: String,
    },
    /// Stop forwarding calls for USER.
    Del {
        /// The user.
        user: String,
    },
}

/// Percent-encodes a query value (only unreserved characters stay).
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The admin request path for a command.
pub fn path(cmd: &ForwardCommand) -> String {
    match cmd {
        ForwardCommand::Set { user, target } => {
            format!("/forward?user={}&target={}", encode(user), encode(target))
        }
        ForwardCommand::Del { user } => format!("/forward?user={}", encode(user)),
    }
}

/// Runs the command.
pub fn run(args: ForwardArgs) -> ExitCode {
    match call(&args.admin, &path(&args.cmd)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn call(addr: &str, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(addr)
        .map_err(|e| format!("cannot reach the admin endpoint {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&resp);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("malformed HTTP reply from the admin endpoint")?;
    let ok = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .is_some_and(|c| c.starts_with('2'));
    if ok {
        Ok(body.to_owned())
    } else {
        Err(format!("the node refused: {}", body.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let set = ForwardCommand::Set {
            user: "1001".into(),
            target: "bob@example.com".into(),
        };
        assert_eq!(path(&set), "/forward?user=1001&target=bob%40example.com");
        let del = ForwardCommand::Del {
            user: "1001".into(),
        };
        assert_eq!(path(&del), "/forward?user=1001");
    }
}
