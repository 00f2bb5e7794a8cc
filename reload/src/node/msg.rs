//! The engine's view of a RELOAD message: forwarding-header fields it routes on and the
//! decoded method bodies it acts on. `glue` converts these to and from the wire codec.

use crate::crypto::SignatureParts;
use crate::storage::{FetchKind, KindId, Selector, StoreKind};
use crate::wire::{NodeId, ResourceId};

pub use crate::wire::Destination as Dest;
pub use crate::wire::ForwardingHeader as Header;

/// A SecurityBlock (RFC 6940 6.3.4) in engine form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Security {
    /// Certificates (X.509 DER in real deployments; opaque to the engine).
    pub certs: Vec<Vec<u8>>,
    /// The message signature.
    pub signature: SignatureParts,
}

/// An ICE candidate of an Attach (RFC 6940 6.5.1.1) in engine form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Transport address.
    pub addr: std::net::SocketAddr,
    /// Overlay link protocol (`OverlayLinkType`).
    pub link: crate::wire::OverlayLinkType,
    /// host, srflx or relay.
    pub cand_type: crate::wire::CandType,
    /// Related address (the base of srflx, the mapped address of relay); `None` for host.
    pub related: Option<std::net::SocketAddr>,
    /// ICE priority (RFC 8445 5.1.2).
    pub priority: u32,
    /// ICE foundation.
    pub foundation: Vec<u8>,
}

impl Candidate {
    /// A host candidate of a TLS-TCP-FH-NO-ICE passive listener at `addr`.
    pub fn tls_host(addr: std::net::SocketAddr) -> Self {
        Candidate {
            addr,
            link: crate::wire::OverlayLinkType::TLS_TCP_FH_NO_ICE,
            cand_type: crate::wire::CandType::HOST,
            related: None,
            priority: (126 << 24) | (65535 << 8) | 255,
            foundation: b"1".to_vec(),
        }
    }
}

/// AttachReqAns (RFC 6940 6.5.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attach {
    /// ICE ufrag.
    pub ufrag: Vec<u8>,
    /// ICE password.
    pub password: Vec<u8>,
    /// "passive" in requests, "active" in answers.
    pub role: Vec<u8>,
    /// Candidates.
    pub candidates: Vec<Candidate>,
    /// Ask the answerer for an Update once connected.
    pub send_update: bool,
}

/// ChordUpdate (RFC 6940 10.7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChordUpdate {
    /// The sender can now be routed through.
    PeerReady {
        /// Uptime in seconds.
        uptime: u32,
    },
    /// The sender's neighbour table.
    Neighbors {
        /// Uptime in seconds.
        uptime: u32,
        /// Predecessors, nearest first.
        predecessors: Vec<NodeId>,
        /// Successors, nearest first.
        successors: Vec<NodeId>,
    },
    /// The whole routing table.
    Full {
        /// Uptime in seconds.
        uptime: u32,
        /// Predecessors, nearest first.
        predecessors: Vec<NodeId>,
        /// Successors, nearest first.
        successors: Vec<NodeId>,
        /// Fingers.
        fingers: Vec<NodeId>,
    },
}

/// ChordLeaveData (RFC 6940 10.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaveData {
    /// The sender is the receiver's successor; these are its successors.
    FromSucc(Vec<NodeId>),
    /// The sender is the receiver's predecessor; these are its predecessors.
    FromPred(Vec<NodeId>),
}

/// One Kind of a Stat answer: per value (key, length, storage_time, lifetime, exists, hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatKind {
    /// Kind.
    pub kind: KindId,
    /// Generation counter.
    pub generation: u64,
    /// Values' metadata.
    pub values: Vec<StatValue>,
}

/// StoredMetaData (RFC 6940 7.4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatValue {
    /// Position.
    pub key: crate::storage::ValueKey,
    /// Length of the value.
    pub value_length: u32,
    /// Storage time.
    pub storage_time: u64,
    /// Remaining lifetime.
    pub lifetime: u32,
    /// Exists flag.
    pub exists: bool,
    /// Hash algorithm.
    pub hash_alg: u8,
    /// Hash of the value.
    pub hash: Vec<u8>,
}

/// A method body (request or answer) the engine understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// AttachReq.
    AttachReq(Attach),
    /// AttachAns.
    AttachAns(Attach),
    /// JoinReq.
    JoinReq(NodeId),
    /// JoinAns.
    JoinAns,
    /// LeaveReq.
    LeaveReq(NodeId, LeaveData),
    /// LeaveAns.
    LeaveAns,
    /// UpdateReq (Chord body).
    UpdateReq(ChordUpdate),
    /// UpdateAns.
    UpdateAns,
    /// PingReq.
    PingReq,
    /// PingAns.
    PingAns {
        /// Random id.
        response_id: u64,
        /// Time (ms since epoch).
        time: u64,
    },
    /// StoreReq.
    StoreReq {
        /// Resource.
        resource: ResourceId,
        /// 0 = original, 1.. = replica.
        replica_number: u8,
        /// Kinds.
        kinds: Vec<StoreKind>,
    },
    /// StoreAns: (kind, generation, replicas).
    StoreAns(Vec<(KindId, u64, Vec<NodeId>)>),
    /// FetchReq: (kind, generation, selector).
    FetchReq {
        /// Resource.
        resource: ResourceId,
        /// Specifiers.
        specifiers: Vec<(KindId, u64, Selector)>,
    },
    /// FetchAns.
    FetchAns(Vec<FetchKind>),
    /// StatReq (FetchReq layout).
    StatReq {
        /// Resource.
        resource: ResourceId,
        /// Specifiers.
        specifiers: Vec<(KindId, u64, Selector)>,
    },
    /// StatAns.
    StatAns(Vec<StatKind>),
    /// FindReq.
    FindReq {
        /// Resource.
        resource: ResourceId,
        /// Kinds.
        kinds: Vec<KindId>,
    },
    /// FindAns: (kind, closest).
    FindAns(Vec<(KindId, ResourceId)>),
    /// RouteQueryReq (RFC 6940 6.4.2.4).
    RouteQueryReq {
        /// Ask for a full Update afterwards.
        send_update: bool,
        /// The destination asked about.
        destination: Dest,
    },
    /// RouteQueryAns (Chord, RFC 6940 10.8): the next hop.
    RouteQueryAns(NodeId),
    /// ProbeReq (RFC 6940 6.4.2.5.1): requested info types, in order.
    ProbeReq(Vec<crate::wire::ProbeInformationType>),
    /// ProbeAns (RFC 6940 6.4.2.5.2).
    ProbeAns(Vec<crate::wire::ProbeInformation>),
    /// An error answer.
    Error {
        /// Error code.
        code: u16,
        /// error_info.
        info: Vec<u8>,
    },
}

/// RFC 6940 message codes (section 14.8) the engine uses.
pub mod code {
    /// attach_req
    pub const ATTACH_REQ: u16 = 3;
    /// store_req
    pub const STORE_REQ: u16 = 7;
    /// fetch_req
    pub const FETCH_REQ: u16 = 9;
    /// find_req
    pub const FIND_REQ: u16 = 13;
    /// join_req
    pub const JOIN_REQ: u16 = 15;
    /// leave_req
    pub const LEAVE_REQ: u16 = 17;
    /// update_req
    pub const UPDATE_REQ: u16 = 19;
    /// ping_req
    pub const PING_REQ: u16 = 23;
    /// ping_ans
    pub const PING_ANS: u16 = 24;
    /// stat_req
    pub const STAT_REQ: u16 = 25;
    /// probe_req
    pub const PROBE_REQ: u16 = 1;
    /// route_query_req
    pub const ROUTE_QUERY_REQ: u16 = 21;
    /// error
    pub const ERROR: u16 = 0xffff;
}

/// RFC 6940 error codes (section 14.9).
pub mod error_code {
    /// Error_Forbidden
    pub const FORBIDDEN: u16 = 2;
    /// Error_Not_Found
    pub const NOT_FOUND: u16 = 3;
    /// Error_Request_Timeout
    pub const REQUEST_TIMEOUT: u16 = 4;
    /// Error_Generation_Counter_Too_Low
    pub const GENERATION_COUNTER_TOO_LOW: u16 = 5;
    /// Error_Incompatible_with_Overlay
    pub const INCOMPATIBLE_WITH_OVERLAY: u16 = 6;
    /// Error_Unsupported_Forwarding_Option
    pub const UNSUPPORTED_FORWARDING_OPTION: u16 = 7;
    /// Error_Data_Too_Large
    pub const DATA_TOO_LARGE: u16 = 8;
    /// Error_Data_Too_Old
    pub const DATA_TOO_OLD: u16 = 9;
    /// Error_TTL_Exceeded
    pub const TTL_EXCEEDED: u16 = 10;
    /// Error_Message_Too_Large
    pub const MESSAGE_TOO_LARGE: u16 = 11;
    /// Error_Unknown_Kind
    pub const UNKNOWN_KIND: u16 = 12;
    /// Error_Unknown_Extension
    pub const UNKNOWN_EXTENSION: u16 = 13;
    /// Error_Config_Too_Old
    pub const CONFIG_TOO_OLD: u16 = 15;
    /// Error_Config_Too_New
    pub const CONFIG_TOO_NEW: u16 = 16;
    /// Error_In_Progress
    pub const IN_PROGRESS: u16 = 17;
    /// Error_Invalid_Message
    pub const INVALID_MESSAGE: u16 = 20;
}

/// True for request codes (odd, below 0x8000).
#[must_use]
pub fn is_request(code: u16) -> bool {
    code % 2 == 1 && code < 0x8000
}
