//! A small DNS stub resolver for RFC 3263 (locating SIP servers): the message codec is
//! sans-IO (RFC 1035 4: header, question, answer records with name compression; NAPTR per
//! RFC 3403, SRV per RFC 2782), the lookups are one UDP query each to one server.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Record types we ask for.
pub const TYPE_A: u16 = 1;
/// AAAA.
pub const TYPE_AAAA: u16 = 28;
/// SRV (RFC 2782).
pub const TYPE_SRV: u16 = 33;
/// NAPTR (RFC 3403).
pub const TYPE_NAPTR: u16 = 35;

/// One answer record we understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// An address.
    Addr(String, IpAddr),
    /// SRV: owner, priority, weight, port, target.
    Srv {
        /// Owner name.
        name: String,
        /// Priority (lower first).
        priority: u16,
        /// Weight.
        weight: u16,
        /// Port.
        port: u16,
        /// Target host.
        target: String,
    },
    /// NAPTR: owner, order, preference, flags, service, replacement.
    Naptr {
        /// Owner name.
        name: String,
        /// Order (lower first).
        order: u16,
        /// Preference (lower first).
        preference: u16,
        /// Flags (`s`).
        flags: String,
        /// Service (`SIP+D2U`).
        service: String,
        /// Replacement domain.
        replacement: String,
    },
}

/// A DNS query for `name` of type `qtype` with message id `id` (recursion desired).
pub fn encode_query(id: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let mut m = Vec::with_capacity(32 + name.len());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    Some(m)
}

struct Rd<'a> {
    b: &'a [u8],
}

impl Rd<'_> {
    fn u8(&self, at: usize) -> Option<u8> {
        self.b.get(at).copied()
    }
    fn u16(&self, at: usize) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8(at)?, self.u8(at + 1)?]))
    }
    /// A (possibly compressed) name at `at`; returns it and the offset after it.
    fn name(&self, mut at: usize) -> Option<(String, usize)> {
        let mut labels: Vec<String> = Vec::new();
        let mut end = None;
        for _ in 0..64 {
            let len = self.u8(at)?;
            if len & 0xC0 == 0xC0 {
                let ptr = (usize::from(len & 0x3F) << 8) | usize::from(self.u8(at + 1)?);
                end.get_or_insert(at + 2);
                at = ptr;
                continue;
            }
            if len == 0 {
                return Some((labels.join("."), end.unwrap_or(at + 1)));
            }
            let l = self.b.get(at + 1..at + 1 + usize::from(len))?;
            labels.push(String::from_utf8_lossy(l).to_ascii_lowercase());
            at += 1 + usize::from(len);
        }
        None
    }
    fn string(&self, at: usize) -> Option<(String, usize)> {
        let len = usize::from(self.u8(at)?);
        let s = self.b.get(at + 1..at + 1 + len)?;
        Some((String::from_utf8_lossy(s).into_owned(), at + 1 + len))
    }
}

/// The answer and additional records of a response to query `id`; `None` when it is not
/// a well-formed response to it (or reports an error other than "no such name").
pub fn decode_response(id: u16, b: &[u8]) -> Option<Vec<Record>> {
    let r = Rd { b };
    if r.u16(0)? != id || r.u8(2)? & 0x80 == 0 {
        return None;
    }
    let rcode = r.u8(3)? & 0x0F;
    if rcode == 3 {
        return Some(Vec::new());
    }
    if rcode != 0 {
        return None;
    }
    let qd = r.u16(4)?;
    let counts = usize::from(r.u16(6)?) + usize::from(r.u16(8)?) + usize::from(r.u16(10)?);
    let mut at = 12;
    for _ in 0..qd {
        let (_, next) = r.name(at)?;
        at = next + 4;
    }
    let mut out = Vec::new();
    for _ in 0..counts {
        let (owner, next) = r.name(at)?;
        let rtype = r.u16(next)?;
        let rdlen = usize::from(r.u16(next + 8)?);
        let rd = next + 10;
        b.get(rd..rd + rdlen)?;
        match rtype {
            TYPE_A if rdlen == 4 => {
                let o = b.get(rd..rd + 4)?;
                out.push(Record::Addr(
                    owner,
                    IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3])), // ok: slice of 4 checked above
                ));
            }
            TYPE_AAAA if rdlen == 16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b.get(rd..rd + 16)?);
                out.push(Record::Addr(owner, IpAddr::V6(Ipv6Addr::from(a))));
            }
            TYPE_SRV => {
                let (target, _) = r.name(rd + 6)?;
                out.push(Record::Srv {
                    name: owner,
                    priority: r.u16(rd)?,
                    weight: r.u16(rd + 2)?,
                    port: r.u16(rd + 4)?,
                    target,
                });
            }
            TYPE_NAPTR => {
                let order = r.u16(rd)?;
                let preference = r.u16(rd + 2)?;
                let (flags, p) = r.string(rd + 4)?;
                let (service, p) = r.string(p)?;
                let (_regexp, p) = r.string(p)?;
                let (replacement, _) = r.name(p)?;
                out.push(Record::Naptr {
                    name: owner,
                    order,
                    preference,
                    flags: flags.to_ascii_lowercase(),
                    service: service.to_ascii_uppercase(),
                    replacement,
                });
            }
            _ => {}
        }
        at = rd + rdlen;
    }
    Some(out)
}

/// The first `nameserver` of /etc/resolv.conf, port 53.
pub fn system_server() -> Option<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some("nameserver"))
            .then(|| w.next())
            .flatten()
            .and_then(|a| a.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

/// Sends one query to `server` and waits (twice 1.5 s) for its answer.
pub async fn query(server: SocketAddr, name: &str, qtype: u16) -> Result<Vec<Record>, String> {
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(|_| "bad bind address".to_owned())?;
    let sock = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|e| e.to_string())?;
    let id: u16 = rand::random();
    let q = encode_query(id, name, qtype).ok_or_else(|| format!("bad DNS name {name:?}"))?;
    let mut buf = vec![0u8; 4096];
    for _ in 0..2 {
        sock.send_to(&q, server).await.map_err(|e| e.to_string())?;
        let wait = tokio::time::timeout(Duration::from_millis(1500), async {
            loop {
                let (n, from) = sock.recv_from(&mut buf).await?;
                if from == server
                    && let Some(rs) = buf.get(..n).and_then(|b| decode_response(id, b))
                {
                    return Ok::<_, std::io::Error>(rs);
                }
            }
        })
        .await;
        match wait {
            Ok(Ok(rs)) => return Ok(rs),
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => continue,
        }
    }
    Err(format!("no answer from DNS server {server}"))
}

/// RFC 3263 4.1/4.2 for a host without port over `transport` (`udp`/`tcp`): NAPTR, then
/// SRV, then A/AAAA on port 5060. Returns the addresses in the order to try.
pub async fn resolve_sip(
    server: SocketAddr,
    host: &str,
    transport: &str,
) -> Result<Vec<SocketAddr>, String> {
    let (service, srv_prefix) = match transport {
        "tcp" => ("SIP+D2T", "_sip._tcp."),
        _ => ("SIP+D2U", "_sip._udp."),
    };
    let mut srv_names = Vec::new();
    // NAPTR (RFC 3263 4.1): records of our transport with the "s" flag name SRV records.
    if let Ok(rs) = query(server, host, TYPE_NAPTR).await {
        let mut n: Vec<(u16, u16, String)> = rs
            .into_iter()
            .filter_map(|r| match r {
                Record::Naptr {
                    order,
                    preference,
                    flags,
                    service: s,
                    replacement,
                    ..
                } if flags == "s" && s == service => Some((order, preference, replacement)),
                _ => None,
            })
            .collect();
        n.sort();
        srv_names.extend(n.into_iter().map(|(_, _, r)| r));
    }
    if srv_names.is_empty() {
        srv_names.push(format!("{srv_prefix}{host}"));
    }
    for srv in &srv_names {
        let rs = query(server, srv, TYPE_SRV).await.unwrap_or_default();
        let mut srvs: Vec<(u16, std::cmp::Reverse<u16>, u16, String)> = rs
            .iter()
            .filter_map(|r| match r {
                Record::Srv {
                    priority,
                    weight,
                    port,
                    target,
                    ..
                } if !target.is_empty() => {
                    Some((*priority, std::cmp::Reverse(*weight), *port, target.clone()))
                }
                _ => None,
            })
            .collect();
        if srvs.is_empty() {
            continue;
        }
        // RFC 2782: lowest priority first; within one priority, heavier first (the
        // weighted random pick is replaced by a stable order so failover is predictable).
        srvs.sort();
        let mut out = Vec::new();
        for (_, _, port, target) in srvs {
            let mut ips: Vec<IpAddr> = rs
                .iter()
                .filter_map(|r| match r {
                    Record::Addr(n, ip) if *n == target => Some(*ip),
                    _ => None,
                })
                .collect();
            if ips.is_empty() {
                ips = addresses(server, &target).await;
            }
            out.extend(ips.into_iter().map(|ip| SocketAddr::new(ip, port)));
        }
        if !out.is_empty() {
            return Ok(out);
        }
    }
    let ips = addresses(server, host).await;
    if ips.is_empty() {
        return Err(format!("{host} has no NAPTR, SRV, A or AAAA record"));
    }
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, 5060))
        .collect())
}

/// A and AAAA records of `host`.
pub async fn addresses(server: SocketAddr, host: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for t in [TYPE_A, TYPE_AAAA] {
        if let Ok(rs) = query(server, host, t).await {
            out.extend(rs.into_iter().filter_map(|r| match r {
                Record::Addr(n, ip) if n == host.trim_end_matches('.').to_ascii_lowercase() => {
                    Some(ip)
                }
                _ => None,
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(out: &mut Vec<u8>, n: &str) {
        for l in n.split('.') {
            out.push(l.len() as u8);
            out.extend_from_slice(l.as_bytes());
        }
        out.push(0);
    }

    #[test]
    fn decodes_srv_naptr_and_a_with_compression() {
        let q = encode_query(0x1234, "carrier.example", TYPE_NAPTR).unwrap();
        let mut m = q.clone();
        m[2] = 0x81;
        m[3] = 0x80;
        m[7] = 3; // ancount
        // NAPTR, owner = pointer to the question name (offset 12).
        m.extend_from_slice(&[0xC0, 12, 0, 35, 0, 1, 0, 0, 0, 60]);
        let mut rd = vec![0, 10, 0, 20, 1, b's', 7];
        rd.extend_from_slice(b"SIP+D2U");
        rd.push(0);
        name(&mut rd, "_sip._udp.carrier.example");
        m.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        m.extend_from_slice(&rd);
        // SRV with a compressed target.
        m.extend_from_slice(&[0xC0, 12, 0, 33, 0, 1, 0, 0, 0, 60]);
        let mut rd = vec![0, 1, 0, 5, 0x13, 0xC4, 2, b's', b'1', 0xC0, 12];
        m.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        m.append(&mut rd);
        m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        let rs = decode_response(0x1234, &m).unwrap();
        assert_eq!(rs.len(), 3);
        assert!(
            matches!(&rs[0], Record::Naptr { service, replacement, flags, .. }
            if service == "SIP+D2U" && replacement == "_sip._udp.carrier.example" && flags == "s")
        );
        assert!(
            matches!(&rs[1], Record::Srv { port: 5060, target, .. } if target == "s1.carrier.example")
        );
        assert_eq!(
            rs[2],
            Record::Addr("carrier.example".into(), "192.0.2.1".parse().unwrap())
        );
        // Wrong id, truncated, pointer loops: no panic, no answer.
        assert!(decode_response(1, &m).is_none());
        for n in 0..m.len() {
            let _ = decode_response(0x1234, &m[..n]);
        }
        let mut looped = q;
        looped[2] = 0x81;
        looped[7] = 1;
        looped.extend_from_slice(&[0xC0, 29, 0, 1]);
        assert!(decode_response(0x1234, &looped).is_none());
    }
}
