//! `config.yaml`: the node's configuration, its embedded default, and validation that names
//! the file, the key and what was expected.

use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The embedded default configuration (the repository's `config.yaml`).
pub const EMBEDDED_DEFAULT: &str = include_str!("../config.yaml");

/// Name of the config file looked for in the working directory.
pub const DEFAULT_FILE: &str = "config.yaml";

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Node-wide settings.
    pub node: NodeSection,
    /// The RELOAD overlay this node belongs to.
    pub overlay: OverlaySection,
    /// SIP front-end settings.
    pub sip: SipSection,
    /// Logging.
    pub log: LogSection,
    /// Registrar limits.
    pub registrar: RegistrarSection,
    /// Users who may register (merged with `data/users.yaml`).
    pub users: Vec<UserEntry>,
    /// Admin HTTP endpoint.
    pub admin: AdminSection,
    /// SIP trunks / PSTN gateways (docs/PSTN.md).
    pub trunks: Vec<crate::pstn::config::TrunkEntry>,
    /// Dial plan for calls to telephone numbers (docs/PSTN.md).
    pub dialplan: crate::pstn::config::DialplanSection,
    /// Service discovery (ReDiR, RFC 7374).
    pub services: ServicesSection,
}

/// `services:` section: ReDiR (RFC 7374) namespaces and tree parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServicesSection {
    /// Namespaces this node registers in at start (e.g. `pstn-gateway`, `turn-server`).
    pub register: Vec<String>,
    /// Branching factor of the ReDiR tree (>= 2; the same at every node).
    pub branching_factor: u32,
    /// Level where registrations and lookups start (the same at every node).
    pub starting_level: u16,
    /// Deepest level a registration descends to.
    pub max_level: u16,
    /// Lifetime of a stored registration, seconds.
    pub lifetime: u32,
    /// Seconds between refreshes of this node's registrations (below `lifetime`).
    pub refresh: u64,
}

impl Default for ServicesSection {
    fn default() -> Self {
        Self {
            register: Vec::new(),
            branching_factor: 10,
            starting_level: 2,
            max_level: 16,
            lifetime: 300,
            refresh: 120,
        }
    }
}

/// `admin:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// Listen address of the admin HTTP endpoint (`/status`, `/metrics`); empty = off.
    pub listen: String,
    /// Enables `POST /debug/store` and `GET /debug/fetch` (tests and labs only).
    pub debug: bool,
}

impl Default for AdminSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9060".into(),
            debug: false,
        }
    }
}

/// `registrar:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrarSection {
    /// Expiry granted when a phone asks for none, seconds.
    pub default_expires: u32,
    /// Shortest expiry accepted (shorter gets 423 Interval Too Brief), seconds.
    pub min_expires: u32,
    /// Longest expiry granted (longer is shortened), seconds.
    pub max_expires: u32,
    /// Contacts kept per user; beyond it the least recently refreshed is dropped.
    pub max_contacts: usize,
    /// Digest algorithms offered, preferred first: `SHA-256`, `MD5`.
    pub digest_algorithms: Vec<String>,
    /// How long a node trusts what it fetched about a shared user (seconds) before asking
    /// the overlay again.
    pub shared_users_ttl: u64,
}

impl Default for RegistrarSection {
    fn default() -> Self {
        Self {
            default_expires: 3600,
            min_expires: 60,
            max_expires: 7200,
            max_contacts: 10,
            digest_algorithms: vec!["MD5".into()],
            shared_users_ttl: 60,
        }
    }
}

/// One entry of `users:` (and of `data/users.yaml`).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// User name: `name@domain` is the address-of-record and `name` the digest username.
    pub name: String,
    /// Password in clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// MD5 HA1, hex of MD5(name:domain:password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha1: Option<String>,
    /// SHA-256 HA1, hex of SHA-256(name:domain:password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha1_sha256: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

impl UserEntry {
    /// What is wrong with this entry, if anything.
    pub fn problem(&self) -> Option<String> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/".contains(c))
        {
            return Some(format!(
                "expected a user name of letters, digits and -_.!~*'()&=+$,;?/; found {:?}",
                self.name
            ));
        }
        let hex_ok = |h: &Option<String>, len: usize| {
            h.as_ref()
                .is_none_or(|h| h.len() == len && h.chars().all(|c| c.is_ascii_hexdigit()))
        };
        if !hex_ok(&self.ha1, 32) {
            return Some("expected `ha1` to be 32 hex digits (MD5)".into());
        }
        if !hex_ok(&self.ha1_sha256, 64) {
            return Some("expected `ha1_sha256` to be 64 hex digits (SHA-256)".into());
        }
        let has_ha1 = self.ha1.is_some() || self.ha1_sha256.is_some();
        match (&self.password, has_ha1) {
            (Some(_), true) => {
                Some("give either `password` or `ha1`/`ha1_sha256`, not both".into())
            }
            (None, false) => Some("expected a `password` or an `ha1`/`ha1_sha256`".into()),
            _ => None,
        }
    }
}

/// `node:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    /// Directory for state the node creates, relative to the config file's directory.
    pub data_dir: PathBuf,
}

impl Default for NodeSection {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
        }
    }
}

/// `overlay:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OverlaySection {
    /// Overlay instance name (a DNS name; its hash is in every RELOAD message header).
    pub instance_name: String,
    /// User name this node enrolls under when it creates its own one-node overlay.
    pub node_user: String,
    /// TLS/TCP listen address of the overlay links.
    pub listen: String,
    /// Addresses of peers already in the overlay.
    pub bootstrap: Vec<String>,
    /// Start a new overlay rather than join one (default: true when `bootstrap` is empty).
    pub first_node: Option<bool>,
    /// Largest RELOAD message sent or accepted, in bytes.
    pub max_message_size: usize,
    /// LAN discovery over UDP multicast.
    pub discovery: DiscoverySection,
    /// Joining by enrollment, and the enrollment server of a node that holds the CA.
    pub enrollment: EnrollmentSection,
    /// Link protocol for the links this node opens: "tls" (TLS-TCP-FH-NO-ICE, the default)
    /// or "dtls" (DTLS-UDP-SR with candidates and checks: it crosses NATs). Nodes accept
    /// both on `listen` (TCP and UDP).
    pub link: String,
    /// TURN server ("IP:port", UDP, anonymous allocations) for a relayed candidate on DTLS
    /// links; empty: none.
    pub turn_server: String,
    /// Derive the Chord stabilization interval from the estimated churn (RFC 7363).
    pub self_tuning: bool,
    /// Leave our certificate out of requests once it is stored in the overlay; receivers
    /// fetch it from CERTIFICATE_BY_NODE and cache it (RFC 6940 6.3.4, 8).
    pub omit_certificates: bool,
    /// TURN-SERVICE usage (RFC 6940 9): advertise a TURN server, find one through the overlay.
    pub turn_service: TurnServiceSection,
}

/// `overlay.turn_service:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TurnServiceSection {
    /// TURN server ("IP:port", UDP, anonymous allocations) this node advertises; empty: none.
    pub advertise: String,
    /// Find a TURN server through the overlay when behind a NAT with DTLS links and no
    /// `turn_server`.
    pub discover: bool,
    /// Turn density: advertisements per TURN server (1..=20).
    pub density: u32,
    /// Run a TURN server in the node: "auto" (when not behind a NAT, with DTLS links),
    /// "yes" or "no".
    pub serve: String,
    /// UDP port of the node's TURN server.
    pub port: u16,
    /// Password of the overlay's TURN credentials (empty: derived from the overlay name and
    /// root certificate).
    pub secret: String,
}

impl Default for TurnServiceSection {
    fn default() -> Self {
        Self {
            advertise: String::new(),
            discover: true,
            density: 5,
            serve: "auto".into(),
            port: 3478,
            secret: String::new(),
        }
    }
}

/// `overlay.enrollment:` section (docs/SECURITY.md "Joining with a password").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrollmentSection {
    /// HTTPS listen address of the embedded enrollment server (empty: the overlay listen IP,
    /// port 6085; port 0 when the overlay listens on port 0).
    pub listen: String,
    /// The overlay's enrollment password: checked by the server of a CA-holding node, sent by
    /// a joining node (empty on a CA node: generated into the data directory).
    pub password: Option<String>,
    /// Enrollment server URL for joining (empty: https://<first bootstrap host>:6085/enroll).
    pub server: Option<String>,
    /// SHA-256 fingerprint (hex) of the overlay CA to trust (empty: trust on first contact).
    pub ca_fingerprint: Option<String>,
}

/// `overlay.discovery:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoverySection {
    /// On or off.
    pub enabled: bool,
    /// Multicast group and port.
    pub group: String,
    /// Interface address to use (0.0.0.0 = the kernel's choice).
    pub interface: String,
    /// How long a starting node without bootstrap peers listens, in ms.
    pub wait_ms: u64,
    /// Announcement interval, in ms.
    pub interval_ms: u64,
}

impl Default for DiscoverySection {
    fn default() -> Self {
        Self {
            enabled: true,
            group: "239.255.60.84:6084".into(),
            interface: "0.0.0.0".into(),
            wait_ms: 3000,
            interval_ms: 5000,
        }
    }
}

impl Default for OverlaySection {
    fn default() -> Self {
        Self {
            instance_name: "p2psip.local".into(),
            node_user: "node".into(),
            listen: "0.0.0.0:6084".into(),
            bootstrap: Vec::new(),
            first_node: None,
            max_message_size: 65_536,
            discovery: DiscoverySection::default(),
            enrollment: EnrollmentSection::default(),
            link: "tls".into(),
            turn_server: String::new(),
            turn_service: TurnServiceSection::default(),
            self_tuning: false,
            omit_certificates: false,
        }
    }
}

/// `sip:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipSection {
    /// Server / User-Agent header value.
    pub server_name: String,
    /// UDP listen addresses.
    pub udp: Vec<String>,
    /// TCP listen addresses.
    pub tcp: Vec<String>,
    /// SIP domain of the users' addresses (`user@domain`), also the digest realm.
    pub domain: String,
    /// calls: phone-facing SIP-over-TLS listen addresses (empty = none).
    pub tls: Vec<String>,
    /// calls: PEM certificate chain for `tls` (empty = the node's own certificate).
    pub tls_cert: String,
    /// calls: PEM private key for `tls_cert`.
    pub tls_key: String,
    /// calls: inter-node SIP-over-TLS listen address (empty = the overlay listen address's
    /// IP with any free port; "off" = no calls across the overlay).
    pub internode: String,
    /// calls: seconds an inter-node SIP connection may stay unused before it is closed.
    pub internode_idle_s: u64,
    /// calls: UDP address of the inter-node SIP-over-DTLS socket (ICE candidates, TURN
    /// relayed candidate; empty = the overlay listen address's IP with any free port;
    /// "off" = TLS over TCP only).
    pub internode_dtls: String,
    /// calls: offer the inter-node TLS listener as a TCP host candidate in AppAttach (false:
    /// other nodes reach this one over SIP/DTLS only).
    pub internode_tcp: bool,
}

impl Default for SipSection {
    fn default() -> Self {
        Self {
            server_name: "p2psip".into(),
            udp: vec!["0.0.0.0:5060".into()],
            tcp: vec!["0.0.0.0:5060".into()],
            domain: "p2psip.local".into(),
            tls: Vec::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            internode: String::new(),
            internode_idle_s: 300,
            internode_dtls: String::new(),
            internode_tcp: true,
        }
    }
}

/// `log:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// Default level filter when RUST_LOG is unset.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// Where a configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file on disk.
    File(PathBuf),
    /// The default compiled into the binary.
    Embedded,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Embedded => f.write_str("<embedded default config.yaml>"),
        }
    }
}

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `sip.udp[0]`.
    pub key: String,
    /// What was expected there, and what was found.
    pub message: String,
}

/// A configuration that failed to load.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// YAML syntax or type error.
    #[error("config file {source_name}: {message}")]
    Syntax {
        /// The file.
        source_name: String,
        /// The parser's words, with line and column.
        message: String,
    },
    /// Values that parse but make no sense.
    #[error("config file {source_name} has {} problem(s):\n{}", problems.len(), render(problems))]
    Invalid {
        /// The file.
        source_name: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - key `{}`: {}", p.key, p.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A loaded and validated configuration with its origin.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The values.
    pub config: Config,
    /// Where they came from.
    pub source: Source,
    /// Directory relative paths resolve against.
    pub base_dir: PathBuf,
    /// Parsed SIP UDP listen addresses.
    pub sip_udp: Vec<SocketAddr>,
    /// Parsed SIP TCP listen addresses.
    pub sip_tcp: Vec<SocketAddr>,
    /// Parsed overlay listen address.
    pub overlay_listen: SocketAddr,
    /// Parsed bootstrap addresses.
    pub bootstrap: Vec<SocketAddr>,
    /// Parsed admin listen address (`None` = off).
    pub admin_listen: Option<SocketAddr>,
    /// Parsed discovery settings (`None` = off).
    pub discovery: Option<(std::net::SocketAddrV4, std::net::Ipv4Addr)>,
    /// Parsed `overlay.link`.
    pub link: crate::overlay::LinkProtocol,
    /// Parsed `overlay.turn_server`.
    pub turn_server: Option<SocketAddr>,
    /// Parsed `overlay.turn_service`.
    pub turn_service: crate::overlay::turn_service::TurnServiceConfig,
}

impl Loaded {
    /// Absolute path of the data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.base_dir.join(&self.config.node.data_dir)
    }
}

/// Loads `path`, or `./config.yaml` when it exists, or the embedded default.
pub fn load(path: Option<&Path>) -> Result<Loaded, ConfigError> {
    let (text, source, base_dir) = match path {
        Some(p) => read_file(p)?,
        None if Path::new(DEFAULT_FILE).is_file() => read_file(Path::new(DEFAULT_FILE))?,
        None => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            (EMBEDDED_DEFAULT.to_string(), Source::Embedded, cwd)
        }
    };
    parse(&text, source, base_dir)
}

fn read_file(p: &Path) -> Result<(String, Source, PathBuf), ConfigError> {
    let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
        path: p.to_path_buf(),
        source,
    })?;
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let base = abs
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok((text, Source::File(p.to_path_buf()), base))
}

/// Parses and validates configuration text.
pub fn parse(text: &str, source: Source, base_dir: PathBuf) -> Result<Loaded, ConfigError> {
    let source_name = source.to_string();
    // An empty file (or one holding only comments) means "all defaults".
    let config: Config = if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        Config::default()
    } else {
        serde_saphyr::from_str(text).map_err(|e| ConfigError::Syntax {
            source_name: source_name.clone(),
            message: describe_yaml_error(text, &e),
        })?
    };
    let mut problems = Vec::new();
    let sip_udp = addrs(&config.sip.udp, "sip.udp", &mut problems);
    let sip_tcp = addrs(&config.sip.tcp, "sip.tcp", &mut problems);
    if config.sip.udp.is_empty() && config.sip.tcp.is_empty() {
        problems.push(Problem {
            key: "sip".into(),
            message: "expected at least one listen address in `udp` or `tcp`, found none".into(),
        });
    }
    if config.sip.server_name.trim().is_empty() || config.sip.server_name.contains(['\r', '\n']) {
        problems.push(Problem {
            key: "sip.server_name".into(),
            message: "expected a non-empty single-line name".into(),
        });
    }
    if !["error", "warn", "info", "debug", "trace"].contains(&config.log.level.as_str()) {
        problems.push(Problem {
            key: "log.level".into(),
            message: format!(
                "expected one of error, warn, info, debug, trace; found {:?}",
                config.log.level
            ),
        });
    }
    if !["text", "json"].contains(&config.log.format.as_str()) {
        problems.push(Problem {
            key: "log.format".into(),
            message: format!("expected `text` or `json`; found {:?}", config.log.format),
        });
    }
    let name = &config.overlay.instance_name;
    if name.is_empty()
        || name.len() > 253
        || !name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
    {
        problems.push(Problem {
            key: "overlay.instance_name".into(),
            message: format!("expected a DNS name such as \"office.example\"; found {name:?}"),
        });
    }
    let user = &config.overlay.node_user;
    if user.is_empty() || !user.bytes().all(|b| b.is_ascii_graphic() && b != b'@') {
        problems.push(Problem {
            key: "overlay.node_user".into(),
            message: format!("expected a user name without spaces or '@'; found {user:?}"),
        });
    }
    if config.sip.domain.is_empty()
        || !config
            .sip
            .domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        problems.push(Problem {
            key: "sip.domain".into(),
            message: format!(
                "expected a domain name such as p2psip.local; found {:?}",
                config.sip.domain
            ),
        });
    }
    let sv = &config.services;
    if sv.branching_factor < 2
        || sv.starting_level > sv.max_level
        || sv.lifetime == 0
        || sv.refresh == 0
        || sv.refresh >= u64::from(sv.lifetime)
        || sv.register.iter().any(|n| n.is_empty() || n.len() > 255)
    {
        problems.push(Problem {
            key: "services".into(),
            message: "expected branching_factor >= 2, starting_level <= max_level, 0 < refresh < lifetime, and namespaces of 1 to 255 bytes".into(),
        });
    }
    let r = &config.registrar;
    if r.min_expires > r.max_expires || r.default_expires == 0 || r.max_contacts == 0 {
        problems.push(Problem {
            key: "registrar".into(),
            message:
                "expected min_expires <= max_expires, and default_expires and max_contacts above 0"
                    .into(),
        });
    }
    if r.digest_algorithms.is_empty()
        || r.digest_algorithms
            .iter()
            .any(|a| !["SHA-256", "MD5"].iter().any(|k| k.eq_ignore_ascii_case(a)))
    {
        problems.push(Problem {
            key: "registrar.digest_algorithms".into(),
            message: format!(
                "expected a list of SHA-256 and/or MD5; found {:?}",
                r.digest_algorithms
            ),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for (i, u) in config.users.iter().enumerate() {
        if let Some(m) = u.problem() {
            problems.push(Problem {
                key: format!("users[{i}]"),
                message: m,
            });
        }
        if !seen.insert(u.name.clone()) {
            problems.push(Problem {
                key: format!("users[{i}]"),
                message: format!("user {:?} is listed twice", u.name),
            });
        }
    }
    if config.node.data_dir.as_os_str().is_empty() {
        problems.push(Problem {
            key: "node.data_dir".into(),
            message: "expected a directory path, found an empty string".into(),
        });
    }
    let overlay_listen = addrs(
        std::slice::from_ref(&config.overlay.listen),
        "overlay.listen",
        &mut problems,
    )
    .first()
    .copied()
    .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 6084)));
    let bootstrap = addrs(
        &config.overlay.bootstrap,
        "overlay.bootstrap",
        &mut problems,
    );
    let admin_listen = if config.admin.listen.is_empty() {
        None
    } else {
        addrs(
            std::slice::from_ref(&config.admin.listen),
            "admin.listen",
            &mut problems,
        )
        .first()
        .copied()
    };
    if config.overlay.max_message_size < 1024 || config.overlay.max_message_size > 0xff_ffff {
        problems.push(Problem {
            key: "overlay.max_message_size".into(),
            message: format!(
                "expected between 1024 and 16777215 bytes; found {}",
                config.overlay.max_message_size
            ),
        });
    }
    let en = &config.overlay.enrollment;
    if !en.listen.is_empty() {
        addrs(
            std::slice::from_ref(&en.listen),
            "overlay.enrollment.listen",
            &mut problems,
        );
    }
    if let Some(u) = &en.server
        && !u.starts_with("https://")
    {
        problems.push(Problem {
            key: "overlay.enrollment.server".into(),
            message: format!("expected an https:// URL; found {u:?}"),
        });
    }
    if let Some(f) = &en.ca_fingerprint
        && (f.len() != 64 || !f.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        problems.push(Problem {
            key: "overlay.enrollment.ca_fingerprint".into(),
            message: format!("expected 64 hex digits (SHA-256 of the CA certificate); found {f:?}"),
        });
    }
    let link = match config.overlay.link.as_str() {
        "tls" => crate::overlay::LinkProtocol::Tls,
        "dtls" => crate::overlay::LinkProtocol::Dtls,
        other => {
            problems.push(Problem {
                key: "overlay.link".into(),
                message: format!("expected \"tls\" or \"dtls\"; found {other:?}"),
            });
            crate::overlay::LinkProtocol::Tls
        }
    };
    let turn_server = if config.overlay.turn_server.is_empty() {
        None
    } else {
        addrs(
            std::slice::from_ref(&config.overlay.turn_server),
            "overlay.turn_server",
            &mut problems,
        )
        .first()
        .copied()
    };
    let ts = &config.overlay.turn_service;
    let turn_service = crate::overlay::turn_service::TurnServiceConfig {
        advertise: if ts.advertise.is_empty() {
            None
        } else {
            addrs(
                std::slice::from_ref(&ts.advertise),
                "overlay.turn_service.advertise",
                &mut problems,
            )
            .first()
            .copied()
        },
        discover: ts.discover,
        density: ts.density,
        serve: match ts.serve.as_str() {
            "auto" => crate::overlay::turn_service::Serve::Auto,
            "yes" => crate::overlay::turn_service::Serve::Yes,
            "no" => crate::overlay::turn_service::Serve::No,
            other => {
                problems.push(Problem {
                    key: "overlay.turn_service.serve".into(),
                    message: format!("expected \"auto\", \"yes\" or \"no\"; found {other:?}"),
                });
                crate::overlay::turn_service::Serve::No
            }
        },
        port: ts.port,
        secret: (!ts.secret.is_empty()).then(|| ts.secret.clone()),
    };
    if !(1..=20).contains(&ts.density) {
        problems.push(Problem {
            key: "overlay.turn_service.density".into(),
            message: format!(
                "expected 1 to 20 (NODE-MULTIPLE's maximum); found {}",
                ts.density
            ),
        });
    }
    let d = &config.overlay.discovery;
    let discovery = if d.enabled {
        let group = d
            .group
            .parse::<std::net::SocketAddrV4>()
            .ok()
            .filter(|g| g.ip().is_multicast());
        let iface = d.interface.parse::<std::net::Ipv4Addr>().ok();
        if group.is_none() {
            problems.push(Problem {
                key: "overlay.discovery.group".into(),
                message: format!(
                    "expected an IPv4 multicast group and port such as \"239.255.60.84:6084\"; found {:?}",
                    d.group
                ),
            });
        }
        if iface.is_none() {
            problems.push(Problem {
                key: "overlay.discovery.interface".into(),
                message: format!("expected an IPv4 address; found {:?}", d.interface),
            });
        }
        group.zip(iface)
    } else {
        None
    };
    crate::pstn::config::check(&config.trunks, &config.dialplan, &mut problems);
    if !problems.is_empty() {
        return Err(ConfigError::Invalid {
            source_name,
            problems,
        });
    }
    Ok(Loaded {
        config,
        source,
        base_dir,
        sip_udp,
        sip_tcp,
        overlay_listen,
        bootstrap,
        admin_listen,
        discovery,
        link,
        turn_server,
        turn_service,
    })
}

/// Words for a YAML error: line, column, the dotted key it sits under, and what was expected.
fn describe_yaml_error(text: &str, e: &serde_saphyr::Error) -> String {
    let plain = e.without_snippet().to_string();
    // The parser's text starts with "error: line L column C: "; keep only what follows.
    let what = plain
        .split_once(": ")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split_once(": ").map(|(_, m)| m))
        .unwrap_or(&plain)
        .trim();
    let what = what.rsplit_once(" at line ").map_or(what, |(m, _)| m);
    let what = what.replace("expected sequence start", "expected a list");
    match e.location() {
        Some(loc) => {
            let key = key_path_at(text, loc.line() as usize);
            let key = if key.is_empty() {
                String::new()
            } else {
                format!(", key `{key}`")
            };
            format!("line {} column {}{key}: {what}", loc.line(), loc.column())
        }
        None => what.to_string(),
    }
}

/// The dotted path of mapping keys enclosing 1-based `line` of a block-style YAML text.
fn key_path_at(text: &str, line: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = line.checked_sub(1).filter(|&i| i < lines.len()) else {
        return String::new();
    };
    let mut path = Vec::new();
    let mut limit = usize::MAX;
    for l in lines[..=start].iter().rev() {
        let body = l.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let indent = l.len() - body.len();
        if indent >= limit {
            continue;
        }
        let body = body.trim_start_matches("- ");
        if let Some((k, _)) = body.split_once(':')
            && !k.is_empty()
            && !k.contains([' ', '{', '[', '"', '\''])
        {
            path.push(k.to_string());
            limit = indent;
        }
        if indent == 0 {
            break;
        }
    }
    path.reverse();
    path.join(".")
}

fn addrs(list: &[String], key: &str, problems: &mut Vec<Problem>) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for (i, s) in list.iter().enumerate() {
        match s.parse::<SocketAddr>() {
            Ok(a) => out.push(a),
            Err(_) => problems.push(Problem {
                key: format!("{key}[{i}]"),
                message: format!(
                    "expected an IP address and port such as \"0.0.0.0:5060\" or \"[::]:5060\"; found {s:?}"
                ),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Loaded, ConfigError> {
        parse(text, Source::File("t.yaml".into()), PathBuf::from("/x"))
    }

    #[test]
    fn embedded_default_is_valid() {
        let l = parse(EMBEDDED_DEFAULT, Source::Embedded, PathBuf::from("/srv")).unwrap();
        assert_eq!(
            l.sip_udp,
            vec!["0.0.0.0:5060".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(l.data_dir(), PathBuf::from("/srv/data"));
        assert_eq!(l.config.users.len(), 20);
        assert_eq!(l.config.users[1].name, "1001");
        assert_eq!(
            l.config.users[1].password.as_deref(),
            Some("p2psip-demo-1001")
        );
        assert_eq!(l.config.sip.domain, "p2psip.local");
    }

    #[test]
    fn registrar_section_is_checked() {
        let e =
            p("registrar:\n  min_expires: 100\n  max_expires: 10\n  digest_algorithms: [SHA-1]\n")
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("key `registrar`") && e.contains("registrar.digest_algorithms"),
            "{e}"
        );
        let l = p("registrar:\n  digest_algorithms: [md5]\nsip:\n  domain: Example.COM\n").unwrap();
        assert_eq!(l.config.registrar.digest_algorithms, vec!["md5".to_owned()]);
        assert!(p("sip:\n  domain: 'a b'\n").is_err());
    }

    #[test]
    fn user_entries_are_checked() {
        let e = p("users:\n  - {name: a}\n  - {name: 'b@c', password: x}\n  - {name: d, password: x, ha1: 0123456789abcdef0123456789abcdef}\n  - {name: e, ha1: zz}\n")
            .unwrap_err()
            .to_string();
        for k in ["users[0]", "users[1]", "users[2]", "users[3]"] {
            assert!(e.contains(k), "{e}");
        }
    }

    #[test]
    fn empty_file_means_defaults() {
        assert!(p("# nothing\n").is_ok());
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let e = p("sip:\n  udpp: []\n").unwrap_err().to_string();
        assert!(e.contains("t.yaml") && e.contains("udpp"), "{e}");
    }

    #[test]
    fn every_problem_is_listed() {
        let e = p("sip:\n  udp: [nope]\n  tcp: ['1.2.3.4']\nlog:\n  level: loud\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sip.udp[0]") && e.contains("sip.tcp[0]") && e.contains("log.level"),
            "{e}"
        );
        assert!(e.contains("3 problem"), "{e}");
    }

    #[test]
    fn wrong_type_is_a_syntax_error_naming_the_key() {
        let e = p("sip:\n  udp: 5\n").unwrap_err().to_string();
        assert!(
            e.contains("t.yaml") && e.contains("key `sip.udp`") && e.contains("line 2"),
            "{e}"
        );
    }
}
