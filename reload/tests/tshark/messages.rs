//! The capture: every RELOAD method, request and answer, plus an ACK, each with what tshark
//! must show for it.

use super::*;

// ---------------------------------------------------------------------------------------------

pub(crate) fn signer() -> Signature {
    Signature {
        algorithm: SignatureAndHashAlgorithm::ECDSA_SHA256,
        identity: SignerIdentity::CertHash {
            hash_alg: HashAlgorithm::SHA256,
            certificate_hash: Opaque(hex::decode(CERT_SHA256).unwrap()),
        },
        // The shape of a DER ECDSA-Sig-Value; not a valid signature (nothing verifies it).
        value: Opaque(
            [
                &[0x30, 0x44, 0x02, 0x20][..],
                &[0x5a; 32],
                &[0x02, 0x20],
                &[0x3c; 32],
            ]
            .concat(),
        ),
    }
}

fn security() -> SecurityBlock {
    SecurityBlock {
        certificates: vec![GenericCertificate {
            cert_type: CertificateType::X509,
            certificate: Opaque(CERT.to_vec()),
        }],
        signature: signer(),
    }
}

/// The forwarding-header part of a packet description.
struct Hdr {
    txid: u64,
    ttl: u8,
    via: Vec<Destination>,
    dst: Vec<Destination>,
}

/// Builds framed messages; each direction has its own framing sequence space from 0.
#[derive(Default)]
struct Builder {
    seq_req: u32,
    seq_ans: u32,
    pkts: Vec<Pkt>,
}

impl Builder {
    fn add(
        &mut self,
        label: impl Into<String>,
        method: &'static str,
        h: Hdr,
        body: Body,
        checks: Vec<Check>,
    ) {
        self.add_q(label, method, h, body, checks, vec![]);
    }

    fn add_q(
        &mut self,
        label: impl Into<String>,
        method: &'static str,
        h: Hdr,
        body: Body,
        mut checks: Vec<Check>,
        quirks: Vec<Quirk>,
    ) {
        let code = body.code();
        let request = code.is_request();
        let header = ForwardingHeader {
            overlay: overlay_hash(OVERLAY_NAME),
            configuration_sequence: CONFIG_SEQ,
            ttl: h.ttl,
            transaction_id: h.txid,
            max_response_length: if request { 65_000 } else { 0 },
            via_list: h.via.clone(),
            destination_list: h.dst.clone(),
            ..ForwardingHeader::default()
        };
        let body_bytes = body.to_bytes().unwrap();
        let msg = Message {
            header,
            contents: MessageContents::from_body(&body).unwrap(),
            security: security(),
        };
        let bytes = msg.encode().unwrap();
        // Our own decoder agrees before tshark is asked.
        let back = Message::decode(&bytes).unwrap();
        assert_eq!(back, msg);
        assert_eq!(back.contents.decode_body(&BuiltinKinds).unwrap(), body);
        let seq = if request {
            &mut self.seq_req
        } else {
            &mut self.seq_ans
        };
        let sequence = *seq;
        *seq += 1;
        let payload = FramedMessage::Data {
            sequence,
            message: Opaque(bytes.clone()),
        }
        .to_bytes()
        .unwrap();

        let fwd = "reload.forwarding";
        let via = "reload.forwarding.via_list";
        let dst = "reload.forwarding.destination_list";
        let sec = "reload.security_block";
        let nodes = |l: &[Destination]| -> Vec<String> {
            l.iter()
                .filter_map(|d| d.node_id().map(|n| nid_hex(n.0)))
                .collect()
        };
        let compressed = |l: &[Destination]| -> Vec<String> {
            l.iter()
                .filter_map(|d| match d {
                    Destination::Compressed(c) => Some(format!("{c:04x}")),
                    _ => None,
                })
                .collect()
        };
        let resources = |l: &[Destination]| -> Vec<Vec<u8>> {
            l.iter()
                .filter_map(|d| match d {
                    Destination::Resource(r) => Some(enc(r)),
                    _ => None,
                })
                .collect()
        };
        let mut all = vec![
            // framing (RFC 6940 6.6.2)
            show("reload_framing.type", &[128]),
            show("reload_framing.sequence", &[sequence]),
            show("reload_framing.message.length", &[bytes.len()]),
            span("reload_framing.message", &[p24(&bytes)]),
            // forwarding header (6.3.2)
            value("reload.forwarding.token", &[[0xd2, 0x45, 0x4c, 0x4f]]),
            value(
                "reload.forwarding.overlay",
                &[overlay_hash(OVERLAY_NAME).to_be_bytes()],
            ),
            show("reload.forwarding.configuration_sequence", &[CONFIG_SEQ]),
            value("reload.forwarding.version", &[[VERSION]]),
            show("reload.forwarding.ttl", &[h.ttl]),
            value("reload.forwarding.fragment", &[UNFRAGMENTED.to_be_bytes()]),
            show("reload.length.32", &[bytes.len()]).under(fwd),
            value("reload.forwarding.trans_id", &[h.txid.to_be_bytes()]),
            show(
                "reload.forwarding.max_response_length",
                &[if request { 65_000 } else { 0 }],
            ),
            span(
                "reload.destination",
                &h.via.iter().map(enc).collect::<Vec<_>>(),
            )
            .under(via),
            span(
                "reload.destination",
                &h.dst.iter().map(enc).collect::<Vec<_>>(),
            )
            .under(dst),
            value("reload.destination.data.nodeid", &hexes(&nodes(&h.via))).under(via),
            value("reload.destination.data.nodeid", &hexes(&nodes(&h.dst))).under(dst),
            value(
                "reload.forwarding.destination.compressed_id",
                &hexes(&compressed(&h.dst)),
            )
            .under(dst),
            span("reload.destination.data.resourceid", &resources(&h.dst)).under(dst),
            // contents (6.3.3)
            show("reload.message.code", &[code.0]),
            span("reload.message.body", &[p32(&body_bytes)]),
            // security block (6.3.4)
            show("reload.certificate.type", &[0]).under(sec),
            span("reload.certificate", &[CERT]).under(sec),
            show("x509ce.rfc822Name", &["alice@example.com"]).under(sec),
            span("reload.signature", &[enc(&signer())]).under(sec),
            show("reload.signature.identity.type", &[1]).under(sec),
            span(
                "reload.signature.identity.value.certificate_hash",
                &[p8(&hex::decode(CERT_SHA256).unwrap())],
            )
            .under(sec),
        ];
        all.append(&mut checks);
        self.pkts.push(Pkt {
            label: label.into(),
            method,
            payload,
            from_requester: request,
            code_txid: Some((code.0, h.txid)),
            checks: all,
            quirks,
        });
    }

    /// An ACK from the answering side for the last data frame the requester sent, with the
    /// `received` bits of the (up to 32) frames before it (LSB = ack_sequence - 1).
    fn ack(&mut self) {
        let ack_sequence = self.seq_req - 1;
        let n = ack_sequence.min(32);
        let received = if n == 32 { u32::MAX } else { (1u32 << n) - 1 };
        let data_frame = self.pkts.iter().rposition(|p| p.from_requester).unwrap() + 1;
        let payload = FramedMessage::Ack {
            ack_sequence,
            received,
        }
        .to_bytes()
        .unwrap();
        let acked = format!("Acked Frames:[{}-{}]", ack_sequence - n, ack_sequence - 1);
        self.pkts.push(Pkt {
            label: format!("ACK of sequence {ack_sequence}"),
            method: "ACK (framing)",
            payload,
            from_requester: false,
            code_txid: None,
            checks: vec![
                show("reload_framing.type", &[129]),
                show("reload_framing.ack_sequence", &[ack_sequence]),
                value("reload_framing.received", &[received.to_be_bytes()]),
                showname("reload_framing.parsed_received", &[&acked]),
                show("reload_framing.response-to", &[data_frame]),
            ],
            quirks: vec![],
        });
    }
}

fn hexes(v: &[String]) -> Vec<Vec<u8>> {
    v.iter().map(|s| hex::decode(s).unwrap()).collect()
}

pub(crate) fn build() -> Vec<Pkt> {
    let mut b = Builder::default();
    let aor = ResourceId::hash(b"alice@example.com");
    let cert_res = ResourceId::hash(&nid(ALICE).to_array());
    let turn_res = ResourceId::hash(&[&nid(PEER_C).to_array()[..], &1u32.to_be_bytes()].concat());
    // Requests arrive through two peers; answers go back along the reversed via list, whose
    // first entry the previous hop compressed.
    let req = |txid: u64, dst: Vec<Destination>| Hdr {
        txid,
        ttl: 98,
        via: vec![node(PEER_A), node(PEER_B)],
        dst,
    };
    let ans = |txid: u64| Hdr {
        txid,
        ttl: 100,
        via: vec![],
        dst: vec![Destination::Compressed(0x8123), node(PEER_A), node(ALICE)],
    };
    // Neighbour-to-neighbour messages (Join, Leave, Update, ConfigUpdate): one hop.
    let hop = |txid: u64, to: u128| Hdr {
        txid,
        ttl: 100,
        via: vec![],
        dst: vec![node(to)],
    };
    let kinds = |v: &[u32]| -> Check { show("reload.kinddata.kind", v) };
    let gens = |v: &[u64]| -> Check { show("reload.generation_counter", v) };
    let node_values =
        |v: &[u128]| -> Vec<Vec<u8>> { v.iter().map(|n| nid(*n).to_array().to_vec()).collect() };

    // --- Probe (6.4.2.5) -----------------------------------------------------------------
    b.add(
        "ProbeReq",
        "Probe",
        req(0x0102_0304_0506_0708, vec![node(PEER_C)]),
        Body::ProbeReq(ProbeReq {
            requested_info: vec![
                ProbeInformationType::RESPONSIBLE_SET,
                ProbeInformationType::NUM_RESOURCES,
                ProbeInformationType::UPTIME,
            ],
        }),
        vec![value("reload.probe_information.type", &[[1], [2], [3]])],
    );
    b.add(
        "ProbeAns",
        "Probe",
        ans(0x0102_0304_0506_0708),
        Body::ProbeAns(ProbeAns {
            probe_info: vec![
                ProbeInformation::ResponsibleSet(250_000_000),
                ProbeInformation::NumResources(42),
                ProbeInformation::Uptime(86_400),
            ],
        }),
        vec![
            value("reload.probe_information.type", &[[1], [2], [3]]),
            value("reload.responsible_set", &[250_000_000u32.to_be_bytes()]),
            show("reload.num_resources", &[42]),
            show("reload.uptime", &[86_400]),
        ],
    );

    // --- Attach (6.5.1) ------------------------------------------------------------------
    let host = IceCandidate {
        addr_port: IpAddressPort::V4 {
            addr: Ipv4Addr::new(192, 168, 1, 20),
            port: 6084,
        },
        overlay_link: OverlayLinkType::DTLS_UDP_SR,
        foundation: Opaque(b"1".to_vec()),
        priority: 2_130_706_431,
        cand_type: CandType::HOST,
        rel_addr_port: None,
        extensions: vec![],
    };
    let srflx = IceCandidate {
        addr_port: IpAddressPort::V4 {
            addr: Ipv4Addr::new(203, 0, 113, 9),
            port: 40_000,
        },
        overlay_link: OverlayLinkType::DTLS_UDP_SR,
        foundation: Opaque(b"2".to_vec()),
        priority: 1_694_498_815,
        cand_type: CandType::SRFLX,
        rel_addr_port: Some(IpAddressPort::V4 {
            addr: Ipv4Addr::new(192, 168, 1, 20),
            port: 6084,
        }),
        extensions: vec![IceExtension {
            name: Opaque(b"network-id".to_vec()),
            value: Opaque(b"1".to_vec()),
        }],
    };
    let relay = IceCandidate {
        addr_port: IpAddressPort::V6 {
            addr: "2001:db8::7".parse().unwrap(),
            port: 3478,
        },
        overlay_link: OverlayLinkType::DTLS_UDP_SR,
        foundation: Opaque(b"3".to_vec()),
        priority: 16_777_215,
        cand_type: CandType::RELAY,
        rel_addr_port: Some(IpAddressPort::V6 {
            addr: "2001:db8::1".parse().unwrap(),
            port: 50_000,
        }),
        extensions: vec![],
    };
    let attach_req = AttachReqAns {
        ufrag: Opaque(b"ufA9".to_vec()),
        password: Opaque(b"pwdpwdpwdpwdpwdpwdpwd1".to_vec()),
        role: Opaque(b"passive".to_vec()),
        candidates: vec![host.clone(), srflx.clone(), relay.clone()],
        send_update: true,
    };
    b.add_q(
        "AttachReq (host, srflx, relay IPv6, ICE extension)",
        "Attach",
        req(0x1111_0000_0000_0001, vec![node(PEER_C)]),
        Body::AttachReq(attach_req.clone()),
        vec![
            span("reload.ufrag", &[p8(&attach_req.ufrag)]),
            span("reload.password", &[p8(&attach_req.password)]),
            span("reload.role", &[p8(b"passive")]),
            span(
                "reload.icecandidate",
                &attach_req.candidates.iter().map(enc).collect::<Vec<_>>(),
            ),
            show("reload.icecandidate.type", &[1, 2, 4]),
            show("reload.overlaylink.type", &[1, 1, 1]),
            show(
                "reload.ipv4addr",
                &["192.168.1.20", "203.0.113.9", "192.168.1.20"],
            ),
            show("reload.ipv6addr", &["2001:db8::7", "2001:db8::1"]),
            show("reload.port", &[6084, 40_000, 6084, 3478, 50_000]),
            span("reload.iceextension.name", &[p16(b"network-id")]),
            span("reload.iceextension.value", &[p16(b"1")]),
            show("reload.sendupdate", &[1]),
        ],
        vec![Quirk::IcePriority(attach_req.candidates.clone())],
    );
    let attach_ans = AttachReqAns {
        ufrag: Opaque(b"ufC3".to_vec()),
        password: Opaque(b"pwdpwdpwdpwdpwdpwdpwd3".to_vec()),
        role: Opaque(b"active".to_vec()),
        candidates: vec![host, srflx],
        send_update: false,
    };
    b.add_q(
        "AttachAns",
        "Attach",
        ans(0x1111_0000_0000_0001),
        Body::AttachAns(attach_ans.clone()),
        vec![
            span("reload.role", &[p8(b"active")]),
            span(
                "reload.icecandidate",
                &attach_ans.candidates.iter().map(enc).collect::<Vec<_>>(),
            ),
            show("reload.icecandidate.type", &[1, 2]),
            show("reload.sendupdate", &[0]),
        ],
        vec![Quirk::IcePriority(attach_ans.candidates.clone())],
    );

    // --- Store (7.4.1) -------------------------------------------------------------------
    let route = SipRegistration::Route {
        contact_prefs: Opaque(b"(sip.schemes=SIP)".to_vec()),
        destination_list: vec![node(PEER_B), node(ALICE)],
    };
    let sip_value = StoredData {
        storage_time: 1_700_000_000_123,
        lifetime: 3600,
        value: StoredDataValue::Dictionary(DictionaryEntry {
            key: Opaque(nid(ALICE).to_array().to_vec()),
            value: DataValue {
                exists: true,
                value: Opaque(enc(&route)),
            },
        }),
        signature: signer(),
    };
    let cert_value = StoredData {
        storage_time: 1_700_000_000_456,
        lifetime: 86_400,
        value: StoredDataValue::Array(ArrayEntry {
            index: ArrayEntry::APPEND,
            value: DataValue {
                exists: true,
                value: Opaque(CERT.to_vec()),
            },
        }),
        signature: signer(),
    };
    let turn = TurnServer {
        iteration: 1,
        server_address: IpAddressPort::V4 {
            addr: Ipv4Addr::new(198, 51, 100, 3),
            port: 3478,
        },
    };
    let turn_value = StoredData {
        storage_time: 1_700_000_000_789,
        lifetime: 600,
        value: StoredDataValue::Single(DataValue {
            exists: true,
            value: Opaque(enc(&turn)),
        }),
        signature: signer(),
    };
    let body = "reload.message.contents";
    b.add(
        "StoreReq SIP-REGISTRATION (dictionary entry, sip_registration_route)",
        "Store",
        req(
            0x2222_0000_0000_0001,
            vec![Destination::Resource(aor.clone())],
        ),
        Body::StoreReq(StoreReq {
            resource: aor.clone(),
            replica_number: 0,
            kind_data: vec![StoreKindData {
                kind: KindId::SIP_REGISTRATION,
                generation_counter: 41,
                values: KindValues::Decoded(vec![sip_value.clone()]),
            }],
        }),
        vec![
            span("reload.resource", &[enc(&aor)]),
            show("reload.store.replica_number", &[0]),
            kinds(&[1]),
            gens(&[41]),
            span("reload.storeddata", &[sip_value.to_bytes().unwrap()]),
            value(
                "reload.storeddata.storage_time",
                &[1_700_000_000_123u64.to_be_bytes()],
            ),
            show("reload.storeddata.lifetime", &[3600]),
            span("reload.dictionarykey", &[p16(&nid(ALICE).to_array())]),
            value("reload.nodeid", &node_values(&[ALICE])).under("reload.dictionarykey"),
            show("reload.datavalue.exists", &[1]),
            span("reload.sipregistration", &[enc(&route)]),
            show("reload.sipregistration.type", &[2]),
            show("reload.opaque.string", &["(sip.schemes=SIP)"])
                .under("reload.sipregistration.data.contact_prefs"),
            value(
                "reload.destination.data.nodeid",
                &node_values(&[PEER_B, ALICE]),
            )
            .under("reload.sipregistration.data.destination_list"),
            span("reload.signature", &[enc(&signer())]).under(body),
        ],
    );
    b.add(
        "StoreReq CERTIFICATE_BY_NODE (array entry, append), replica 1",
        "Store",
        req(
            0x2222_0000_0000_0002,
            vec![Destination::Resource(cert_res.clone())],
        ),
        Body::StoreReq(StoreReq {
            resource: cert_res.clone(),
            replica_number: 1,
            kind_data: vec![StoreKindData {
                kind: KindId::CERTIFICATE_BY_NODE,
                generation_counter: 12,
                values: KindValues::Decoded(vec![cert_value.clone()]),
            }],
        }),
        vec![
            span("reload.resource", &[enc(&cert_res)]),
            show("reload.store.replica_number", &[1]),
            kinds(&[3]),
            gens(&[12]),
            span("reload.storeddata", &[cert_value.to_bytes().unwrap()]),
            value(
                "reload.arrayentry.index",
                &[ArrayEntry::APPEND.to_be_bytes()],
            ),
            // the stored certificate went through Wireshark's X.509 dissector
            show("x509ce.rfc822Name", &["alice@example.com"]).under(body),
            show("x509sat.uTF8String", &["alice", "alice"]).under(body),
        ],
    );
    b.add(
        "StoreReq TURN-SERVICE (single value) + CERTIFICATE_BY_NODE",
        "Store",
        req(
            0x2222_0000_0000_0003,
            vec![Destination::Resource(turn_res.clone())],
        ),
        Body::StoreReq(StoreReq {
            resource: turn_res.clone(),
            replica_number: 0,
            kind_data: vec![
                StoreKindData {
                    kind: KindId::TURN_SERVICE,
                    generation_counter: 5,
                    values: KindValues::Decoded(vec![turn_value.clone()]),
                },
                StoreKindData {
                    kind: KindId::CERTIFICATE_BY_NODE,
                    generation_counter: 6,
                    values: KindValues::Decoded(vec![cert_value.clone()]),
                },
            ],
        }),
        vec![
            span("reload.resource", &[enc(&turn_res)]),
            kinds(&[2, 3]),
            gens(&[5, 6]),
            span(
                "reload.storeddata",
                &[
                    turn_value.to_bytes().unwrap(),
                    cert_value.to_bytes().unwrap(),
                ],
            ),
            span("reload.turnserver", &[enc(&turn)]),
            show("reload.turnserver.iteration", &[1]),
            show("reload.ipv4addr", &["198.51.100.3"]).under("reload.turnserver.server_address"),
            show("reload.port", &[3478]).under("reload.turnserver.server_address"),
        ],
    );
    let private_value = StoredData {
        storage_time: 1_700_000_000_999,
        lifetime: 60,
        value: StoredDataValue::Single(DataValue {
            exists: true,
            value: Opaque(b"private kind value".to_vec()),
        }),
        signature: signer(),
    };
    b.add(
        "StoreReq private Kind 0xf0000001 (single value; data model from the Kind-ID UAT)",
        "Store",
        req(
            0x2222_0000_0000_0004,
            vec![Destination::Resource(aor.clone())],
        ),
        Body::StoreReq(StoreReq {
            resource: aor.clone(),
            replica_number: 0,
            kind_data: vec![StoreKindData {
                kind: PRIVATE_KIND,
                generation_counter: 1,
                values: KindValues::Opaque(Opaque(
                    p32(&private_value.to_bytes().unwrap())[4..].to_vec(),
                )),
            }],
        }),
        vec![
            kinds(&[PRIVATE_KIND.0]),
            span("reload.storeddata", &[private_value.to_bytes().unwrap()]),
            span("reload.datavaluevalue", &[p32(b"private kind value")]),
            span("reload.signature", &[enc(&signer())]).under(body),
        ],
    );
    b.ack();
    let store_ans = StoreAns {
        kind_responses: vec![
            StoreKindResponse {
                kind: KindId::TURN_SERVICE,
                generation_counter: 6,
                replicas: vec![nid(PEER_C), nid(PEER_D)],
            },
            StoreKindResponse {
                kind: KindId::CERTIFICATE_BY_NODE,
                generation_counter: 7,
                replicas: vec![nid(PEER_D)],
            },
        ],
    };
    b.add(
        "StoreAns (two Kinds, replicas)",
        "Store",
        ans(0x2222_0000_0000_0003),
        Body::StoreAns(store_ans.clone()),
        vec![
            span("reload.storeans", &[enc(&store_ans)]),
            span(
                "reload.storekindresponse",
                &store_ans.kind_responses.iter().map(enc).collect::<Vec<_>>(),
            ),
            kinds(&[2, 3]),
            gens(&[6, 7]),
            value("reload.nodeid", &node_values(&[PEER_C, PEER_D, PEER_D]))
                .under("reload.storekindresponse.replicas"),
        ],
    );

    // --- Fetch (7.4.2) -------------------------------------------------------------------
    let keys = vec![nid(ALICE).to_array().to_vec(), nid(BOB).to_array().to_vec()];
    let fetch_req = FetchReq {
        resource: aor.clone(),
        specifiers: vec![
            StoredDataSpecifier {
                kind: KindId::SIP_REGISTRATION,
                generation: 0,
                model_specifier: ModelSpecifier::Dictionary(
                    keys.iter().map(|k| Opaque(k.clone())).collect(),
                ),
            },
            StoredDataSpecifier {
                kind: KindId::CERTIFICATE_BY_NODE,
                generation: 3,
                model_specifier: ModelSpecifier::Array(vec![
                    ArrayRange { first: 0, last: 2 },
                    ArrayRange {
                        first: 5,
                        last: ArrayRange::TO_END,
                    },
                ]),
            },
            StoredDataSpecifier {
                kind: KindId::TURN_SERVICE,
                generation: 9,
                model_specifier: ModelSpecifier::Single,
            },
        ],
    };
    let spec_bytes = |s: &StoredDataSpecifier| {
        let mut v = Vec::new();
        s.encode(&mut v).unwrap();
        v
    };
    b.add_q(
        "FetchReq (dictionary keys, array ranges, single)",
        "Fetch",
        req(
            0x3333_0000_0000_0001,
            vec![Destination::Resource(aor.clone())],
        ),
        Body::FetchReq(fetch_req.clone()),
        vec![
            span("reload.resource", &[enc(&aor)]),
            span(
                "reload.storeddataspecifier",
                &fetch_req
                    .specifiers
                    .iter()
                    .map(spec_bytes)
                    .collect::<Vec<_>>(),
            ),
            kinds(&[1, 3, 2]),
            gens(&[0, 3, 9]),
            showname(
                "reload.arrayrange",
                &["ArrayRange [0-2]", "ArrayRange [5-end]"],
            ),
        ],
        vec![Quirk::DictionaryKeys(keys)],
    );
    b.add(
        "FetchReq (SIP lookup: every dictionary key)",
        "Fetch",
        req(
            0x3333_0000_0000_0002,
            vec![Destination::Resource(aor.clone())],
        ),
        Body::FetchReq(FetchReq {
            resource: aor.clone(),
            specifiers: vec![StoredDataSpecifier {
                kind: KindId::SIP_REGISTRATION,
                generation: 0,
                model_specifier: ModelSpecifier::Dictionary(vec![]),
            }],
        }),
        vec![
            kinds(&[1]),
            gens(&[0]),
            show::<u8>("reload.dictionarykey", &[]),
        ],
    );
    // A second entry under another UA's Node-ID: forward to another AOR (RFC 7904 3.2).
    let uri = SipRegistration::Uri(Opaque(b"alice-office@example.com".to_vec()));
    let uri_value = StoredData {
        storage_time: 1_700_000_000_321,
        lifetime: 3600,
        value: StoredDataValue::Dictionary(DictionaryEntry {
            key: Opaque(nid(BOB).to_array().to_vec()),
            value: DataValue {
                exists: true,
                value: Opaque(enc(&uri)),
            },
        }),
        signature: signer(),
    };
    b.add(
        "FetchAns (dictionary: route and uri entries, empty array, single)",
        "Fetch",
        ans(0x3333_0000_0000_0001),
        Body::FetchAns(FetchAns {
            kind_responses: vec![
                FetchKindResponse {
                    kind: KindId::SIP_REGISTRATION,
                    generation: 42,
                    values: KindValues::Decoded(vec![sip_value.clone(), uri_value.clone()]),
                },
                FetchKindResponse {
                    kind: KindId::CERTIFICATE_BY_NODE,
                    generation: 3,
                    values: KindValues::Decoded(vec![]),
                },
                FetchKindResponse {
                    kind: KindId::TURN_SERVICE,
                    generation: 10,
                    values: KindValues::Decoded(vec![turn_value.clone()]),
                },
            ],
        }),
        vec![
            kinds(&[1, 3, 2]),
            gens(&[42, 3, 10]),
            span(
                "reload.storeddata",
                &[
                    sip_value.to_bytes().unwrap(),
                    uri_value.to_bytes().unwrap(),
                    turn_value.to_bytes().unwrap(),
                ],
            ),
            value("reload.nodeid", &node_values(&[ALICE, BOB])).under("reload.dictionarykey"),
            span("reload.sipregistration", &[enc(&route), enc(&uri)]),
            show("reload.sipregistration.type", &[2, 1]),
            show("reload.opaque.string", &["alice-office@example.com"])
                .under("reload.sipregistration.data.uri"),
            span("reload.turnserver", &[enc(&turn)]),
        ],
    );
    let missing = StoredData {
        storage_time: 0,
        lifetime: 0,
        value: StoredDataValue::Dictionary(DictionaryEntry {
            key: Opaque(nid(BOB).to_array().to_vec()),
            value: DataValue::default(),
        }),
        signature: Signature::none(),
    };
    b.add_q(
        "FetchAns (synthetic missing value: exists=false, identity none)",
        "Fetch",
        ans(0x3333_0000_0000_0002),
        Body::FetchAns(FetchAns {
            kind_responses: vec![FetchKindResponse {
                kind: KindId::SIP_REGISTRATION,
                generation: 42,
                values: KindValues::Decoded(vec![missing.clone()]),
            }],
        }),
        vec![
            kinds(&[1]),
            gens(&[42]),
            span("reload.storeddata", &[missing.to_bytes().unwrap()]),
            value("reload.nodeid", &node_values(&[BOB])).under("reload.dictionarykey"),
            show("reload.datavalue.exists", &[0]),
            span("reload.signature", &[enc(&Signature::none())]).under(body),
            show("reload.signature.identity.type", &[3]).under(body),
        ],
        vec![Quirk::SignerIdentityNone],
    );

    // --- Stat (7.4.3) --------------------------------------------------------------------
    b.add(
        "StatReq",
        "Stat",
        req(
            0x4444_0000_0000_0001,
            vec![Destination::Resource(cert_res.clone())],
        ),
        Body::StatReq(FetchReq {
            resource: cert_res.clone(),
            specifiers: vec![StoredDataSpecifier {
                kind: KindId::CERTIFICATE_BY_NODE,
                generation: 0,
                model_specifier: ModelSpecifier::Array(vec![ArrayRange {
                    first: 0,
                    last: ArrayRange::TO_END,
                }]),
            }],
        }),
        vec![
            span("reload.resource", &[enc(&cert_res)]),
            kinds(&[3]),
            showname("reload.arrayrange", &["ArrayRange [0-end]"]),
        ],
    );
    let meta = |len: u32| MetaData {
        exists: true,
        value_length: len,
        hash_algorithm: HashAlgorithm::SHA1,
        hash_value: Opaque(vec![0xab; 20]),
    };
    let stat_values = vec![
        StoredMetaData {
            storage_time: 1_700_000_000_456,
            lifetime: 86_400,
            metadata: MetaDataValue::Array {
                index: 0,
                value: meta(CERT.len() as u32),
            },
        },
        StoredMetaData {
            storage_time: 1_700_000_000_789,
            lifetime: 600,
            metadata: MetaDataValue::Single(meta(9)),
        },
        StoredMetaData {
            storage_time: 1_700_000_000_123,
            lifetime: 3600,
            metadata: MetaDataValue::Dictionary {
                key: Opaque(nid(ALICE).to_array().to_vec()),
                value: meta(40),
            },
        },
    ];
    let stat_kinds = [
        (KindId::CERTIFICATE_BY_NODE, 3),
        (KindId::TURN_SERVICE, 10),
        (KindId::SIP_REGISTRATION, 42),
    ];
    b.add(
        "StatAns (array, single, dictionary metadata)",
        "Stat",
        ans(0x4444_0000_0000_0001),
        Body::StatAns(StatAns {
            kind_responses: stat_kinds
                .iter()
                .zip(&stat_values)
                .map(|(&(kind, generation), v)| StatKindResponse {
                    kind,
                    generation,
                    values: KindMetaValues::Decoded(vec![v.clone()]),
                })
                .collect(),
        }),
        vec![
            kinds(&[3, 2, 1]),
            gens(&[3, 10, 42]),
            span(
                "reload.storedmetadata",
                &stat_values
                    .iter()
                    .map(|v| {
                        let mut o = Vec::new();
                        v.encode(&mut o).unwrap();
                        o
                    })
                    .collect::<Vec<_>>(),
            ),
            show("reload.metadata.value_length", &[CERT.len() as u32, 9, 40]),
            show("reload.arrayentry.index", &[0]),
            value("reload.nodeid", &node_values(&[ALICE])).under("reload.dictionarykey"),
        ],
    );

    // --- Find (7.4.4) --------------------------------------------------------------------
    b.add(
        "FindReq",
        "Find",
        req(
            0x5555_0000_0000_0001,
            vec![Destination::Resource(aor.clone())],
        ),
        Body::FindReq(FindReq {
            resource: aor.clone(),
            kinds: vec![KindId::SIP_REGISTRATION, KindId::TURN_SERVICE],
        }),
        vec![
            span("reload.resource", &[enc(&aor)]),
            show("reload.kindid", &[1, 2]),
        ],
    );
    let find_ans = vec![
        FindKindData {
            kind: KindId::SIP_REGISTRATION,
            closest: aor.clone(),
        },
        FindKindData {
            kind: KindId::TURN_SERVICE,
            closest: ResourceId(vec![0; 16]),
        },
    ];
    b.add(
        "FindAns",
        "Find",
        ans(0x5555_0000_0000_0001),
        Body::FindAns(FindAns {
            results: find_ans.clone(),
        }),
        vec![
            span(
                "reload.findkinddata",
                &find_ans.iter().map(enc).collect::<Vec<_>>(),
            ),
            kinds(&[1, 2]),
            span(
                "reload.findkindata.closest",
                &find_ans.iter().map(|f| enc(&f.closest)).collect::<Vec<_>>(),
            ),
        ],
    );

    // --- Join / Leave (6.4.2.1, 6.4.2.2, 10.9) --------------------------------------------
    b.add(
        "JoinReq",
        "Join",
        hop(0x6666_0000_0000_0001, PEER_C),
        Body::JoinReq(JoinReq {
            joining_peer_id: nid(ALICE),
            overlay_specific_data: Opaque::default(),
        }),
        vec![value(
            "reload.joinreq.joining_peer_id",
            &node_values(&[ALICE]),
        )],
    );
    b.add(
        "JoinAns",
        "Join",
        hop(0x6666_0000_0000_0001, ALICE),
        Body::JoinAns(JoinAns::default()),
        vec![span("reload.joinans", &[[0u8, 0]])],
    );
    b.add(
        "LeaveReq (Chord from_succ)",
        "Leave",
        hop(0x7777_0000_0000_0001, PEER_B),
        Body::LeaveReq(
            LeaveReq::chord(
                nid(ALICE),
                &ChordLeaveData::FromSucc(vec![nid(PEER_C), nid(PEER_D)]),
            )
            .unwrap(),
        ),
        vec![
            value("reload.leavereq.leaving_peer_id", &node_values(&[ALICE])),
            show("reload.chordleavedata.type", &[1]),
            value("reload.nodeid", &node_values(&[PEER_C, PEER_D]))
                .under("reload.chordleavedata.successors"),
        ],
    );
    b.add(
        "LeaveReq (Chord from_pred)",
        "Leave",
        hop(0x7777_0000_0000_0002, PEER_C),
        Body::LeaveReq(
            LeaveReq::chord(
                nid(ALICE),
                &ChordLeaveData::FromPred(vec![nid(PEER_B), nid(PEER_A)]),
            )
            .unwrap(),
        ),
        vec![
            value("reload.leavereq.leaving_peer_id", &node_values(&[ALICE])),
            show("reload.chordleavedata.type", &[2]),
            value("reload.nodeid", &node_values(&[PEER_B, PEER_A]))
                .under("reload.chordleavedata.predecessors"),
        ],
    );
    b.add(
        "LeaveAns",
        "Leave",
        hop(0x7777_0000_0000_0001, ALICE),
        Body::LeaveAns(Opaque::default()),
        vec![],
    );

    // --- Update (6.4.2.3, 10.7) ----------------------------------------------------------
    b.add(
        "UpdateReq (Chord peer_ready)",
        "Update",
        hop(0x8888_0000_0000_0001, PEER_C),
        Body::UpdateReq(ChordUpdate {
            uptime: 12,
            data: ChordUpdateData::PeerReady,
        }),
        vec![
            show("reload.chordupdate.type", &[1]),
            show("reload.uptime", &[12]),
        ],
    );
    b.add(
        "UpdateReq (Chord neighbors)",
        "Update",
        hop(0x8888_0000_0000_0002, PEER_C),
        Body::UpdateReq(ChordUpdate {
            uptime: 3600,
            data: ChordUpdateData::Neighbors {
                predecessors: vec![nid(PEER_B), nid(PEER_A)],
                successors: vec![nid(PEER_C), nid(PEER_D)],
            },
        }),
        vec![
            show("reload.chordupdate.type", &[2]),
            show("reload.uptime", &[3600]),
            value("reload.nodeid", &node_values(&[PEER_B, PEER_A]))
                .under("reload.chordupdate.predecessors"),
            value("reload.nodeid", &node_values(&[PEER_C, PEER_D]))
                .under("reload.chordupdate.successors"),
        ],
    );
    b.add(
        "UpdateReq (Chord full)",
        "Update",
        hop(0x8888_0000_0000_0003, PEER_C),
        Body::UpdateReq(ChordUpdate {
            uptime: 7200,
            data: ChordUpdateData::Full {
                predecessors: vec![nid(PEER_B)],
                successors: vec![nid(PEER_C)],
                fingers: vec![nid(PEER_C), nid(PEER_D), nid(BOB)],
            },
        }),
        vec![
            show("reload.chordupdate.type", &[3]),
            value("reload.nodeid", &node_values(&[PEER_B]))
                .under("reload.chordupdate.predecessors"),
            value("reload.nodeid", &node_values(&[PEER_C])).under("reload.chordupdate.successors"),
            value("reload.nodeid", &node_values(&[PEER_C, PEER_D, BOB]))
                .under("reload.chordupdate.fingers"),
        ],
    );
    b.add(
        "UpdateAns",
        "Update",
        hop(0x8888_0000_0000_0003, ALICE),
        Body::UpdateAns(Opaque::default()),
        vec![],
    );

    // --- RouteQuery (6.4.2.4, 10.8) ------------------------------------------------------
    b.add(
        "RouteQueryReq",
        "RouteQuery",
        req(0x9999_0000_0000_0001, vec![node(PEER_C)]),
        Body::RouteQueryReq(RouteQueryReq {
            send_update: true,
            destination: Destination::Resource(aor.clone()),
            overlay_specific_data: Opaque::default(),
        }),
        vec![
            show("reload.sendupdate", &[1]),
            span(
                "reload.routequeryreq.destination",
                &[enc(&Destination::Resource(aor.clone()))],
            ),
        ],
    );
    b.add(
        "RouteQueryAns",
        "RouteQuery",
        ans(0x9999_0000_0000_0001),
        Body::RouteQueryAns(ChordRouteQueryAns {
            next_peer: nid(PEER_D),
        }),
        vec![value(
            "reload.chordroutequeryans.nodeid",
            &node_values(&[PEER_D]),
        )],
    );

    // --- Ping (6.5.3) --------------------------------------------------------------------
    b.add(
        "PingReq (to the wildcard Node-ID, padded)",
        "Ping",
        req(0xaaaa_0000_0000_0001, vec![node(NodeId::WILDCARD.0)]),
        Body::PingReq(PingReq {
            padding: Opaque(vec![0; 32]),
        }),
        vec![span("reload.padding", &[p16(&[0; 32])])],
    );
    b.add(
        "PingAns",
        "Ping",
        ans(0xaaaa_0000_0000_0001),
        Body::PingAns(PingAns {
            response_id: 0x0123_4567_89ab_cdef,
            time: 1_700_000_000_000,
        }),
        vec![
            value(
                "reload.ping.response_id",
                &[0x0123_4567_89ab_cdefu64.to_be_bytes()],
            ),
            value("reload.ping.time", &[1_700_000_000_000u64.to_be_bytes()]),
        ],
    );

    // --- AppAttach (6.5.2) ---------------------------------------------------------------
    let app_cand = IceCandidate {
        addr_port: IpAddressPort::V4 {
            addr: Ipv4Addr::new(192, 168, 1, 20),
            port: 5062,
        },
        overlay_link: OverlayLinkType::DTLS_UDP_SR,
        foundation: Opaque(b"7".to_vec()),
        priority: 2_130_706_431,
        cand_type: CandType::HOST,
        rel_addr_port: None,
        extensions: vec![],
    };
    for (label, txid, request, role) in [
        (
            "AppAttachReq (SIP, 5060)",
            0xbbbb_0000_0000_0001u64,
            true,
            "passive",
        ),
        ("AppAttachAns", 0xbbbb_0000_0000_0001, false, "active"),
    ] {
        let a = AppAttachReqAns {
            ufrag: Opaque(b"apU1".to_vec()),
            password: Opaque(b"appattachpasswordxyz12".to_vec()),
            application: APPLICATION_SIP,
            role: Opaque(role.as_bytes().to_vec()),
            candidates: vec![app_cand.clone()],
        };
        b.add_q(
            label,
            "AppAttach",
            if request {
                req(txid, vec![node(PEER_B), node(ALICE)])
            } else {
                ans(txid)
            },
            if request {
                Body::AppAttachReq(a.clone())
            } else {
                Body::AppAttachAns(a.clone())
            },
            vec![
                show("reload.application", &[APPLICATION_SIP]),
                span("reload.ufrag", &[p8(b"apU1")]),
                span("reload.role", &[p8(role.as_bytes())]),
                span("reload.icecandidate", &[enc(&app_cand)]),
                show("reload.port", &[5062]),
            ],
            vec![Quirk::IcePriority(vec![app_cand.clone()])],
        );
    }

    // --- ConfigUpdate (6.5.4) ------------------------------------------------------------
    let config = br#"<?xml version="1.0" encoding="UTF-8"?><overlay xmlns="urn:ietf:params:xml:ns:p2p:config-base"><configuration instance-name="example.com" sequence="8"><topology-plugin>CHORD-RELOAD</topology-plugin></configuration></overlay>"#;
    let kind_block = br#"<kind-block><kind name="SIP-REGISTRATION"><data-model>DICTIONARY</data-model><access-control>USER-NODE-MATCH</access-control><max-count>10</max-count><max-size>1000</max-size></kind></kind-block>"#;
    b.add(
        "ConfigUpdateReq (config)",
        "ConfigUpdate",
        hop(0xcccc_0000_0000_0001, PEER_C),
        Body::ConfigUpdateReq(ConfigUpdateReq::Config(Opaque(config.to_vec()))),
        vec![
            show("reload.configupdatereq.type", &[1]),
            span("reload.configupdatereq.config_data", &[p24(config)]),
        ],
    );
    b.add(
        "ConfigUpdateReq (kind)",
        "ConfigUpdate",
        hop(0xcccc_0000_0000_0002, PEER_C),
        Body::ConfigUpdateReq(ConfigUpdateReq::Kinds(vec![Opaque(kind_block.to_vec())])),
        vec![
            show("reload.configupdatereq.type", &[2]),
            span("reload.configupdatereq.kinds", &[p24(&p16(kind_block))]),
            span("reload.configupdatereq.kinddescription", &[p16(kind_block)]),
        ],
    );
    b.add(
        "ConfigUpdateAns",
        "ConfigUpdate",
        hop(0xcccc_0000_0000_0001, ALICE),
        Body::ConfigUpdateAns(Opaque::default()),
        vec![],
    );

    // --- Errors (6.3.3.1) ----------------------------------------------------------------
    let too_low = StoreAns {
        kind_responses: vec![StoreKindResponse {
            kind: KindId::SIP_REGISTRATION,
            generation_counter: 57,
            replicas: vec![],
        }],
    };
    b.add(
        "Error_Generation_Counter_Too_Low (StoreAns in error_info)",
        "Error",
        ans(0x2222_0000_0000_0001),
        Body::Error(ErrorResponse {
            error_code: ErrorCode::GENERATION_COUNTER_TOO_LOW,
            error_info: Opaque(enc(&too_low)),
        }),
        vec![
            show("reload.error_response.code", &[5]),
            span("reload.storeans", &[enc(&too_low)]),
            kinds(&[1]),
            gens(&[57]),
        ],
    );
    b.add(
        "Error_Unknown_Kind (KindId list in error_info)",
        "Error",
        ans(0x2222_0000_0000_0002),
        Body::Error(ErrorResponse::unknown_kinds(&[KindId(0xf000_0001), KindId::REDIR]).unwrap()),
        vec![
            show("reload.error_response.code", &[12]),
            show("reload.kindid", &[0xf000_0001u32, 104]),
        ],
    );
    b.add(
        "Error_Not_Found (text)",
        "Error",
        ans(0x5555_0000_0000_0002),
        Body::Error(ErrorResponse::new(ErrorCode::NOT_FOUND, "no such resource")),
        vec![
            show("reload.error_response.code", &[3]),
            show("reload.opaque.string", &["no such resource"]).under("reload.error_response_info"),
        ],
    );

    // RFC 7851 9.4 puts Error_Underlay_Destination_Unreachable at 21 (Wireshark uses 101).
    b.add_q(
        "Error_Underlay_Destination_Unreachable (RFC 7851 code 21, text)",
        "Error",
        ans(0xaaaa_0000_0000_0002),
        Body::Error(ErrorResponse::new(
            ErrorCode::UNDERLAY_DESTINATION_UNREACHABLE,
            "no route",
        )),
        vec![
            show("reload.error_response.code", &[21]),
            show("reload.opaque.string", &["no route"]).under("reload.error_response_info"),
        ],
        vec![Quirk::Rfc7851ErrorName(
            "Error_Underlay_Destination_Unreachable",
        )],
    );

    b.pkts
}
