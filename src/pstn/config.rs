//! The `trunks:` and `dialplan:` sections of config.yaml and their validation.

use crate::config::Problem;
use serde::Deserialize;

/// One entry of `trunks:`: a SIP trunk of a carrier or a PSTN gateway.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TrunkEntry {
    /// Name used in `dialplan.routes` and in logs.
    pub name: String,
    /// `host`, `host:port`, `ip` or `ip:port`. A DNS name without port is resolved with
    /// RFC 3263 (NAPTR, then SRV, then A/AAAA); with a port, A/AAAA only.
    pub address: String,
    /// `udp` or `tcp`.
    #[serde(default = "default_transport")]
    pub transport: String,
    /// Host part of the Request-URI, From and To sent to the carrier (default: `address`
    /// without port).
    #[serde(default)]
    pub domain: Option<String>,
    /// Digest user name the carrier gave us.
    #[serde(default)]
    pub username: Option<String>,
    /// Digest password.
    #[serde(default)]
    pub password: Option<String>,
    /// Register with the carrier (and refresh) so that it sends inbound calls here.
    #[serde(default)]
    pub register: bool,
    /// Expiry asked for in that REGISTER, seconds.
    #[serde(default = "default_register_expires")]
    pub register_expires: u32,
    /// Caller number shown to the carrier when the caller has no DID of its own.
    #[serde(default)]
    pub caller_id: Option<String>,
    /// Addresses (`203.0.113.7`) or networks (`203.0.113.0/24`) allowed to send calls in
    /// through this trunk. Empty: the addresses `address` resolves to.
    #[serde(default)]
    pub inbound_sources: Vec<String>,
    /// DNS server (`ip:port`) for resolving `address`; empty: the first `nameserver` of
    /// /etc/resolv.conf.
    #[serde(default)]
    pub dns_server: Option<String>,
}

fn default_transport() -> String {
    "udp".into()
}

fn default_register_expires() -> u32 {
    600
}

/// One `dialplan.routes` entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouteEntry {
    /// E.164 prefix (`+49`, `+`); the longest matching prefix wins.
    pub prefix: String,
    /// Trunk names, tried in order (failover).
    pub trunks: Vec<String>,
}

/// `dialplan:` section.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DialplanSection {
    /// Country calling code without `+` (`49`).
    pub country_code: String,
    /// Area code without the national prefix (`40`); numbers dialled without any prefix get
    /// it. Empty: such numbers are not normalised (and not routed).
    pub area_code: String,
    /// National (trunk) prefix (`0`).
    pub national_prefix: String,
    /// International prefix (`00`).
    pub international_prefix: String,
    /// Emergency numbers: routed first, through every trunk, whatever the caller's
    /// permissions.
    pub emergency: Vec<String>,
    /// E.164 prefixes of premium-rate numbers.
    pub premium: Vec<String>,
    /// Which trunks serve which E.164 prefixes.
    pub routes: Vec<RouteEntry>,
    /// Classes every user may call: `internal`, `national`, `international`, `premium`.
    pub default_permissions: Vec<String>,
    /// Per-user classes (user name -> classes), replacing the default for that user.
    pub permissions: std::collections::BTreeMap<String, Vec<String>>,
    /// User (AOR user part) that gets inbound calls for numbers without a DID entry (the
    /// reception). Empty: such calls get 404.
    pub unknown_did: String,
    /// Milliseconds a trunk may stay silent before the next one is tried.
    pub failover_timeout_ms: u64,
}

impl Default for DialplanSection {
    fn default() -> Self {
        DialplanSection {
            country_code: "49".into(),
            area_code: String::new(),
            national_prefix: "0".into(),
            international_prefix: "00".into(),
            emergency: vec!["112".into(), "110".into()],
            premium: vec!["+49900".into(), "+49137".into()],
            routes: Vec::new(),
            default_permissions: vec!["internal".into(), "national".into()],
            permissions: Default::default(),
            unknown_did: String::new(),
            failover_timeout_ms: 5000,
        }
    }
}

/// The permission classes.
pub const CLASSES: [&str; 4] = ["internal", "national", "international", "premium"];

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Appends every problem of the two sections.
pub fn check(trunks: &[TrunkEntry], dp: &DialplanSection, problems: &mut Vec<Problem>) {
    let mut names = std::collections::BTreeSet::new();
    for (i, t) in trunks.iter().enumerate() {
        let key = |k: &str| format!("trunks[{i}].{k}");
        if t.name.is_empty()
            || !t
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            problems.push(Problem {
                key: key("name"),
                message: format!(
                    "expected a name of letters, digits and -_.; found {:?}",
                    t.name
                ),
            });
        } else if !names.insert(t.name.clone()) {
            problems.push(Problem {
                key: key("name"),
                message: format!("trunk name {:?} is used twice", t.name),
            });
        }
        if super::trunk::parse_address(&t.address).is_none() {
            problems.push(Problem {
                key: key("address"),
                message: format!(
                    "expected host, host:port, ip or ip:port (e.g. \"sip.carrier.example\" or \"203.0.113.7:5060\"); found {:?}",
                    t.address
                ),
            });
        }
        if !["udp", "tcp"].contains(&t.transport.as_str()) {
            problems.push(Problem {
                key: key("transport"),
                message: format!("expected `udp` or `tcp`; found {:?}", t.transport),
            });
        }
        if t.username.is_some() != t.password.is_some() {
            problems.push(Problem {
                key: key("password"),
                message: "give both `username` and `password`, or neither".into(),
            });
        }
        if t.register && t.username.is_none() {
            problems.push(Problem {
                key: key("register"),
                message: "registering with the carrier needs `username` and `password`".into(),
            });
        }
        if t.register && t.register_expires < 60 {
            problems.push(Problem {
                key: key("register_expires"),
                message: format!("expected at least 60 s; found {}", t.register_expires),
            });
        }
        if let Some(d) = &t.domain
            && sip::message::parse_host_port(d).is_none_or(|(_, p)| p.is_some())
        {
            problems.push(Problem {
                key: key("domain"),
                message: format!("expected a host name or IP address without port; found {d:?}"),
            });
        }
        if let Some(c) = &t.caller_id
            && !super::dialplan::is_number(c)
        {
            problems.push(Problem {
                key: key("caller_id"),
                message: format!("expected a telephone number such as \"+494012345\"; found {c:?}"),
            });
        }
        for (j, s) in t.inbound_sources.iter().enumerate() {
            if super::trunk::Cidr::parse(s).is_none() {
                problems.push(Problem {
                    key: format!("trunks[{i}].inbound_sources[{j}]"),
                    message: format!(
                        "expected an IP address or network such as \"203.0.113.0/24\"; found {s:?}"
                    ),
                });
            }
        }
        if let Some(d) = &t.dns_server
            && d.parse::<std::net::SocketAddr>().is_err()
        {
            problems.push(Problem {
                key: key("dns_server"),
                message: format!("expected ip:port such as \"192.0.2.53:53\"; found {d:?}"),
            });
        }
    }
    let num_key = |k: &str| format!("dialplan.{k}");
    for (k, v, may_be_empty) in [
        ("country_code", &dp.country_code, false),
        ("area_code", &dp.area_code, true),
        ("national_prefix", &dp.national_prefix, true),
        ("international_prefix", &dp.international_prefix, false),
    ] {
        if !(digits(v) || may_be_empty && v.is_empty()) {
            problems.push(Problem {
                key: num_key(k),
                message: format!("expected digits; found {v:?}"),
            });
        }
    }
    for (j, e) in dp.emergency.iter().enumerate() {
        if !digits(e) {
            problems.push(Problem {
                key: format!("dialplan.emergency[{j}]"),
                message: format!("expected digits such as \"112\"; found {e:?}"),
            });
        }
    }
    for (j, p) in dp.premium.iter().enumerate() {
        if !p.strip_prefix('+').is_some_and(digits) {
            problems.push(Problem {
                key: format!("dialplan.premium[{j}]"),
                message: format!("expected an E.164 prefix such as \"+49900\"; found {p:?}"),
            });
        }
    }
    for (j, r) in dp.routes.iter().enumerate() {
        if !r
            .prefix
            .strip_prefix('+')
            .is_some_and(|d| d.is_empty() || digits(d))
        {
            problems.push(Problem {
                key: format!("dialplan.routes[{j}].prefix"),
                message: format!(
                    "expected an E.164 prefix such as \"+49\" or \"+\"; found {:?}",
                    r.prefix
                ),
            });
        }
        if r.trunks.is_empty() {
            problems.push(Problem {
                key: format!("dialplan.routes[{j}].trunks"),
                message: "expected at least one trunk name".into(),
            });
        }
        for t in &r.trunks {
            if !trunks.iter().any(|x| &x.name == t) {
                problems.push(Problem {
                    key: format!("dialplan.routes[{j}].trunks"),
                    message: format!("no trunk is named {t:?} in `trunks`"),
                });
            }
        }
    }
    let check_classes = |key: String, list: &[String], problems: &mut Vec<Problem>| {
        for c in list {
            if !CLASSES.contains(&c.as_str()) {
                problems.push(Problem {
                    key: key.clone(),
                    message: format!(
                        "expected classes among internal, national, international, premium; found {c:?}"
                    ),
                });
            }
        }
    };
    check_classes(
        "dialplan.default_permissions".into(),
        &dp.default_permissions,
        problems,
    );
    for (u, list) in &dp.permissions {
        check_classes(format!("dialplan.permissions.{u}"), list, problems);
    }
    if dp.failover_timeout_ms == 0 {
        problems.push(Problem {
            key: "dialplan.failover_timeout_ms".into(),
            message: "expected a time above 0".into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, Source, parse};

    #[test]
    fn trunks_and_dialplan_are_checked() {
        let good = "sip: {udp: [\"127.0.0.1:0\"]}\ntrunks:\n  - {name: a, address: \"127.0.0.1:5070\", username: u, password: p, register: true}\n  - {name: b, address: carrier.example, transport: tcp, inbound_sources: [\"203.0.113.0/24\"]}\ndialplan:\n  routes: [{prefix: \"+\", trunks: [a, b]}]\n  permissions: {\"1001\": [internal, national, international]}\n";
        parse(good, Source::Embedded, ".".into()).unwrap();
        let bad = "sip: {udp: [\"127.0.0.1:0\"]}\ntrunks:\n  - {name: a, address: \"bad host\", transport: sctp, username: u}\n  - {name: a, address: x.example, inbound_sources: [\"10.0.0.0/40\"], register: true}\ndialplan:\n  country_code: \"+49\"\n  emergency: [\"11a\"]\n  routes: [{prefix: \"49\", trunks: [zz]}]\n  default_permissions: [moon]\n";
        let Err(ConfigError::Invalid { problems, .. }) = parse(bad, Source::Embedded, ".".into())
        else {
            panic!("bad config accepted");
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "trunks[0].address",
            "trunks[0].transport",
            "trunks[0].password",
            "trunks[1].name",
            "trunks[1].inbound_sources[0]",
            "trunks[1].register",
            "dialplan.country_code",
            "dialplan.emergency[0]",
            "dialplan.routes[0].prefix",
            "dialplan.routes[0].trunks",
            "dialplan.default_permissions",
        ] {
            assert!(keys.contains(&k), "{k} not reported: {keys:?}");
        }
    }
}
