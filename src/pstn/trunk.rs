//! Trunks at run time: their addresses (resolved with RFC 3263 in the background and
//! cached), the sources allowed to send calls in, and the credentials for the far leg.

use super::config::TrunkEntry;
use sip::Transport;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An address or network (`203.0.113.0/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl Cidr {
    /// Parses `ip` or `ip/len`.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = l.unwrap_or(max);
        (len <= max).then_some(Cidr { addr, len })
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// `address` split: an IP address (with port or 5060), or a host name (port optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A socket address.
    Ip(SocketAddr),
    /// A DNS name and an optional port.
    Name(String, Option<u16>),
}

/// Parses a trunk `address`.
pub fn parse_address(s: &str) -> Option<Address> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(Address::Ip(a));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(Address::Ip(SocketAddr::new(ip, 5060)));
    }
    let (host, port) = sip::message::parse_host_port(s)?;
    if host.starts_with('[') {
        let ip: IpAddr = host.trim_matches(['[', ']']).parse().ok()?;
        return Some(Address::Ip(SocketAddr::new(ip, port.unwrap_or(5060))));
    }
    Some(Address::Name(host, port))
}

/// One trunk at run time.
#[derive(Debug, Clone)]
pub struct Trunk {
    /// Its configuration.
    pub cfg: TrunkEntry,
    /// Transport.
    pub transport: Transport,
    /// Allowed inbound sources (empty: the resolved addresses).
    pub sources: Vec<Cidr>,
    /// Resolved addresses, in the order to try (shared with the resolver task).
    pub resolved: Arc<Mutex<Vec<SocketAddr>>>,
}

impl Trunk {
    /// A trunk from its (validated) configuration.
    pub fn new(cfg: TrunkEntry) -> Trunk {
        let transport = if cfg.transport == "tcp" {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        let sources = cfg
            .inbound_sources
            .iter()
            .filter_map(|s| Cidr::parse(s))
            .collect();
        let resolved = match parse_address(&cfg.address) {
            Some(Address::Ip(a)) => vec![a],
            _ => Vec::new(),
        };
        Trunk {
            cfg,
            transport,
            sources,
            resolved: Arc::new(Mutex::new(resolved)),
        }
    }

    /// The resolved addresses.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.resolved.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Whether a request from `ip` may come in through this trunk.
    pub fn allows_source(&self, ip: IpAddr) -> bool {
        if self.sources.is_empty() {
            let ip = match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
                v4 => v4,
            };
            self.addresses().iter().any(|a| a.ip() == ip)
        } else {
            self.sources.iter().any(|c| c.contains(ip))
        }
    }

    /// Host for the Request-URI, From and To sent to the carrier.
    pub fn domain(&self) -> String {
        if let Some(d) = &self.cfg.domain {
            return d.clone();
        }
        match parse_address(&self.cfg.address) {
            Some(Address::Ip(a)) => match a.ip() {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            },
            Some(Address::Name(h, _)) => h,
            None => self.cfg.address.clone(),
        }
    }
}

/// Resolves every named trunk now and then every `refresh` (RFC 3263 for names without
/// port, A/AAAA otherwise), until the process ends.
pub fn spawn_resolver(trunks: Vec<Trunk>, refresh: Duration) {
    for t in trunks {
        let Some(Address::Name(host, port)) = parse_address(&t.cfg.address) else {
            continue;
        };
        tokio::spawn(async move {
            loop {
                let server = t
                    .cfg
                    .dns_server
                    .as_deref()
                    .and_then(|s| s.parse().ok())
                    .or_else(super::dns::system_server);
                let r = match (server, port) {
                    (Some(s), None) => super::dns::resolve_sip(s, &host, &t.cfg.transport).await,
                    (Some(s), Some(p)) => {
                        let ips = super::dns::addresses(s, &host).await;
                        if ips.is_empty() {
                            Err(format!("{host} has no A or AAAA record"))
                        } else {
                            Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, p)).collect())
                        }
                    }
                    (None, p) => tokio::net::lookup_host((host.as_str(), p.unwrap_or(5060)))
                        .await
                        .map(|a| a.collect())
                        .map_err(|e| e.to_string()),
                };
                match r {
                    Ok(addrs) => {
                        let changed = t.resolved.lock().map(|mut v| {
                            let changed = *v != addrs;
                            *v = addrs.clone();
                            changed
                        });
                        if changed.unwrap_or(false) {
                            tracing::info!(
                                "trunk {}: {host} resolves to {}",
                                t.cfg.name,
                                addrs
                                    .iter()
                                    .map(ToString::to_string)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            );
                        }
                    }
                    Err(e) => tracing::warn!(
                        "trunk {}: cannot resolve {host} ({e}); keeping the last addresses",
                        t.cfg.name
                    ),
                }
                tokio::time::sleep(refresh).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_and_address() {
        let c = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(c.contains("203.0.113.77".parse().unwrap()));
        assert!(c.contains("::ffff:203.0.113.77".parse().unwrap()));
        assert!(!c.contains("203.0.114.1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.1/33").is_none());
        assert_eq!(
            parse_address("127.0.0.1:5070"),
            Some(Address::Ip("127.0.0.1:5070".parse().unwrap()))
        );
        assert_eq!(
            parse_address("sip.carrier.example"),
            Some(Address::Name("sip.carrier.example".into(), None))
        );
        assert_eq!(
            parse_address("[::1]:5080"),
            Some(Address::Ip("[::1]:5080".parse().unwrap()))
        );
        assert_eq!(parse_address("bad host"), None);
    }
}
