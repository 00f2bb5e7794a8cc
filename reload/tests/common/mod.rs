//! Proptest strategies for every wire type, shared by the round-trip and malformed tests.
//! Sizes are kept small so the suites run in seconds.

#![allow(dead_code)]

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use reload::codec::Opaque;
use reload::wire::*;

pub fn opaque(max: usize) -> impl Strategy<Value = Opaque> + Clone {
    vec(any::<u8>(), 0..max).prop_map(Opaque)
}

pub fn node_id() -> impl Strategy<Value = NodeId> + Clone {
    prop_oneof![
        any::<u128>().prop_map(NodeId),
        (0u8..4).prop_map(|b| NodeId(b as u128))
    ]
}

pub fn resource_id() -> impl Strategy<Value = ResourceId> + Clone {
    vec(any::<u8>(), 0..20).prop_map(ResourceId)
}

pub fn destination() -> BoxedStrategy<Destination> {
    prop_oneof![
        node_id().prop_map(Destination::Node),
        resource_id().prop_map(Destination::Resource),
        opaque(6).prop_map(Destination::OpaqueId),
        (0x8000u16..=0xffff).prop_map(Destination::Compressed),
        (prop_oneof![Just(0u8), 4u8..0x80], opaque(5)).prop_map(|(t, data)| {
            Destination::Unknown {
                dest_type: DestinationType(t),
                data,
            }
        }),
    ]
    .boxed()
}

pub fn forwarding_option() -> impl Strategy<Value = ForwardingOption> {
    (any::<u8>(), any::<u8>(), opaque(6)).prop_map(|(t, flags, data)| ForwardingOption {
        option_type: ForwardingOptionType(t),
        flags,
        data,
    })
}

pub fn header() -> impl Strategy<Value = ForwardingHeader> {
    (
        (
            any::<u32>(),
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
            any::<u32>(),
        ),
        (any::<u64>(), any::<u32>()),
        vec(destination(), 0..3),
        vec(destination(), 0..3),
        vec(forwarding_option(), 0..2),
    )
        .prop_map(
            |((overlay, seq, version, ttl, fragment), (txid, mrl), via, dst, options)| {
                ForwardingHeader {
                    overlay,
                    configuration_sequence: seq,
                    version,
                    ttl,
                    fragment,
                    transaction_id: txid,
                    max_response_length: mrl,
                    via_list: via,
                    destination_list: dst,
                    options,
                }
            },
        )
}

pub fn extension() -> impl Strategy<Value = MessageExtension> {
    (any::<u16>(), any::<bool>(), opaque(6)).prop_map(|(t, critical, contents)| MessageExtension {
        ext_type: ExtensionType(t),
        critical,
        contents,
    })
}

pub fn signer_identity() -> impl Strategy<Value = SignerIdentity> {
    prop_oneof![
        (any::<u8>(), opaque(33)).prop_map(|(a, h)| SignerIdentity::CertHash {
            hash_alg: HashAlgorithm(a),
            certificate_hash: h
        }),
        (any::<u8>(), opaque(33)).prop_map(|(a, h)| SignerIdentity::CertHashNodeId {
            hash_alg: HashAlgorithm(a),
            certificate_node_id_hash: h
        }),
        Just(SignerIdentity::None),
        (prop_oneof![Just(0u8), 4u8..=255], opaque(5)).prop_map(|(t, identity)| {
            SignerIdentity::Unknown {
                identity_type: SignerIdentityType(t),
                identity,
            }
        }),
    ]
}

pub fn signature() -> impl Strategy<Value = Signature> {
    (any::<u8>(), any::<u8>(), signer_identity(), opaque(20)).prop_map(|(h, s, identity, value)| {
        Signature {
            algorithm: SignatureAndHashAlgorithm {
                hash: HashAlgorithm(h),
                signature: SignatureAlgorithm(s),
            },
            identity,
            value,
        }
    })
}

pub fn security_block() -> impl Strategy<Value = SecurityBlock> {
    (
        vec(
            (any::<u8>(), opaque(10)).prop_map(|(t, c)| GenericCertificate {
                cert_type: CertificateType(t),
                certificate: c,
            }),
            0..3,
        ),
        signature(),
    )
        .prop_map(|(certificates, signature)| SecurityBlock {
            certificates,
            signature,
        })
}

pub fn contents() -> impl Strategy<Value = MessageContents> {
    (any::<u16>(), opaque(20), vec(extension(), 0..2)).prop_map(|(c, body, extensions)| {
        MessageContents {
            code: MessageCode(c),
            body,
            extensions,
        }
    })
}

pub fn message() -> impl Strategy<Value = Message> {
    (header(), contents(), security_block()).prop_map(|(header, contents, security)| Message {
        header,
        contents,
        security,
    })
}

pub fn ip_address_port() -> impl Strategy<Value = IpAddressPort> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, port)| IpAddressPort::V4 {
            addr: a.into(),
            port
        }),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(a, port)| IpAddressPort::V6 {
            addr: a.into(),
            port
        }),
        (prop_oneof![Just(0u8), 3u8..=255], opaque(5)).prop_map(|(t, data)| {
            IpAddressPort::Unknown {
                addr_type: AddressType(t),
                data,
            }
        }),
    ]
}

pub fn ice_candidate() -> impl Strategy<Value = IceCandidate> {
    (
        ip_address_port(),
        any::<u8>(),
        opaque(8),
        any::<u32>(),
        prop_oneof![Just(1u8), Just(2), Just(3), Just(4)],
        ip_address_port(),
        vec(
            (opaque(5), opaque(5)).prop_map(|(name, value)| IceExtension { name, value }),
            0..2,
        ),
    )
        .prop_map(
            |(addr_port, link, foundation, priority, t, rel, extensions)| {
                let cand_type = CandType(t);
                IceCandidate {
                    addr_port,
                    overlay_link: OverlayLinkType(link),
                    foundation,
                    priority,
                    cand_type,
                    rel_addr_port: (t != 1).then_some(rel),
                    extensions,
                }
            },
        )
}

pub fn attach() -> impl Strategy<Value = AttachReqAns> {
    (
        opaque(6),
        opaque(6),
        opaque(8),
        vec(ice_candidate(), 0..3),
        any::<bool>(),
    )
        .prop_map(
            |(ufrag, password, role, candidates, send_update)| AttachReqAns {
                ufrag,
                password,
                role,
                candidates,
                send_update,
            },
        )
}

pub fn app_attach() -> impl Strategy<Value = AppAttachReqAns> {
    (
        opaque(6),
        opaque(6),
        any::<u16>(),
        opaque(8),
        vec(ice_candidate(), 0..3),
    )
        .prop_map(
            |(ufrag, password, application, role, candidates)| AppAttachReqAns {
                ufrag,
                password,
                application,
                role,
                candidates,
            },
        )
}

pub fn data_value() -> impl Strategy<Value = DataValue> {
    (any::<bool>(), opaque(12)).prop_map(|(exists, value)| DataValue { exists, value })
}

pub fn stored_data_value(model: DataModel) -> BoxedStrategy<StoredDataValue> {
    match model {
        DataModel::Single => data_value().prop_map(StoredDataValue::Single).boxed(),
        DataModel::Array => (any::<u32>(), data_value())
            .prop_map(|(index, value)| StoredDataValue::Array(ArrayEntry { index, value }))
            .boxed(),
        DataModel::Dictionary => (opaque(17), data_value())
            .prop_map(|(key, value)| StoredDataValue::Dictionary(DictionaryEntry { key, value }))
            .boxed(),
    }
}

pub fn stored_data(model: DataModel) -> impl Strategy<Value = StoredData> {
    (
        any::<u64>(),
        any::<u32>(),
        stored_data_value(model),
        signature(),
    )
        .prop_map(|(storage_time, lifetime, value, signature)| StoredData {
            storage_time,
            lifetime,
            value,
            signature,
        })
}

pub fn model() -> impl Strategy<Value = DataModel> {
    prop_oneof![
        Just(DataModel::Single),
        Just(DataModel::Array),
        Just(DataModel::Dictionary)
    ]
}

/// A Kind-ID with its model under [`BuiltinKinds`] (None = unknown Kind).
pub fn kind_and_model() -> impl Strategy<Value = (KindId, Option<DataModel>)> {
    prop_oneof![
        Just(KindId::SIP_REGISTRATION),
        Just(KindId::TURN_SERVICE),
        Just(KindId::CERTIFICATE_BY_NODE),
        Just(KindId::CERTIFICATE_BY_USER),
        Just(KindId::REDIR),
        (200u32..).prop_map(KindId),
    ]
    .prop_map(|k| (k, BuiltinKinds::model_of(k)))
}

pub fn kind_values(model: Option<DataModel>) -> BoxedStrategy<KindValues> {
    match model {
        Some(m) => vec(stored_data(m), 0..3)
            .prop_map(KindValues::Decoded)
            .boxed(),
        None => opaque(20).prop_map(KindValues::Opaque).boxed(),
    }
}

pub fn store_kind_data() -> impl Strategy<Value = StoreKindData> {
    kind_and_model().prop_flat_map(|(kind, m)| {
        (any::<u64>(), kind_values(m)).prop_map(move |(generation_counter, values)| StoreKindData {
            kind,
            generation_counter,
            values,
        })
    })
}

pub fn store_req() -> impl Strategy<Value = StoreReq> {
    (resource_id(), any::<u8>(), vec(store_kind_data(), 0..3)).prop_map(
        |(resource, replica_number, kind_data)| StoreReq {
            resource,
            replica_number,
            kind_data,
        },
    )
}

pub fn store_ans() -> impl Strategy<Value = StoreAns> {
    vec(
        (any::<u32>(), any::<u64>(), vec(node_id(), 0..3)).prop_map(|(k, g, replicas)| {
            StoreKindResponse {
                kind: KindId(k),
                generation_counter: g,
                replicas,
            }
        }),
        0..3,
    )
    .prop_map(|kind_responses| StoreAns { kind_responses })
}

pub fn specifier() -> impl Strategy<Value = StoredDataSpecifier> {
    kind_and_model().prop_flat_map(|(kind, m)| {
        let spec: BoxedStrategy<ModelSpecifier> = match m {
            Some(DataModel::Single) => Just(ModelSpecifier::Single).boxed(),
            Some(DataModel::Array) => vec(
                (any::<u32>(), any::<u32>()).prop_map(|(first, last)| ArrayRange { first, last }),
                0..3,
            )
            .prop_map(ModelSpecifier::Array)
            .boxed(),
            Some(DataModel::Dictionary) => vec(opaque(6), 0..3)
                .prop_map(ModelSpecifier::Dictionary)
                .boxed(),
            None => opaque(8).prop_map(ModelSpecifier::Opaque).boxed(),
        };
        (any::<u64>(), spec).prop_map(move |(generation, model_specifier)| StoredDataSpecifier {
            kind,
            generation,
            model_specifier,
        })
    })
}

pub fn fetch_req() -> impl Strategy<Value = FetchReq> {
    (resource_id(), vec(specifier(), 0..4)).prop_map(|(resource, specifiers)| FetchReq {
        resource,
        specifiers,
    })
}

pub fn fetch_ans() -> impl Strategy<Value = FetchAns> {
    vec(
        kind_and_model().prop_flat_map(|(kind, m)| {
            (any::<u64>(), kind_values(m)).prop_map(move |(generation, values)| FetchKindResponse {
                kind,
                generation,
                values,
            })
        }),
        0..3,
    )
    .prop_map(|kind_responses| FetchAns { kind_responses })
}

pub fn meta_data() -> impl Strategy<Value = MetaData> {
    (any::<bool>(), any::<u32>(), any::<u8>(), opaque(21)).prop_map(|(exists, l, h, hv)| MetaData {
        exists,
        value_length: l,
        hash_algorithm: HashAlgorithm(h),
        hash_value: hv,
    })
}

pub fn stat_ans() -> impl Strategy<Value = StatAns> {
    let meta_value = |m: DataModel| -> BoxedStrategy<MetaDataValue> {
        match m {
            DataModel::Single => meta_data().prop_map(MetaDataValue::Single).boxed(),
            DataModel::Array => (any::<u32>(), meta_data())
                .prop_map(|(index, value)| MetaDataValue::Array { index, value })
                .boxed(),
            DataModel::Dictionary => (opaque(6), meta_data())
                .prop_map(|(key, value)| MetaDataValue::Dictionary { key, value })
                .boxed(),
        }
    };
    vec(
        kind_and_model().prop_flat_map(move |(kind, m)| {
            let values: BoxedStrategy<KindMetaValues> = match m {
                Some(m) => vec(
                    (any::<u64>(), any::<u32>(), meta_value(m)).prop_map(|(s, l, metadata)| {
                        StoredMetaData {
                            storage_time: s,
                            lifetime: l,
                            metadata,
                        }
                    }),
                    0..3,
                )
                .prop_map(KindMetaValues::Decoded)
                .boxed(),
                None => opaque(10).prop_map(KindMetaValues::Opaque).boxed(),
            };
            (any::<u64>(), values).prop_map(move |(generation, values)| StatKindResponse {
                kind,
                generation,
                values,
            })
        }),
        0..3,
    )
    .prop_map(|kind_responses| StatAns { kind_responses })
}

pub fn node_list() -> impl Strategy<Value = Vec<NodeId>> {
    vec(node_id(), 0..3)
}

pub fn chord_update() -> impl Strategy<Value = ChordUpdate> {
    let data = prop_oneof![
        Just(ChordUpdateData::PeerReady),
        (node_list(), node_list()).prop_map(|(predecessors, successors)| {
            ChordUpdateData::Neighbors {
                predecessors,
                successors,
            }
        }),
        (node_list(), node_list(), node_list()).prop_map(|(predecessors, successors, fingers)| {
            ChordUpdateData::Full {
                predecessors,
                successors,
                fingers,
            }
        }),
        (prop_oneof![Just(0u8), 4u8..=255], opaque(6)).prop_map(|(t, data)| {
            ChordUpdateData::Unknown {
                update_type: ChordUpdateType(t),
                data,
            }
        }),
    ];
    (any::<u32>(), data).prop_map(|(uptime, data)| ChordUpdate { uptime, data })
}

pub fn chord_leave() -> impl Strategy<Value = ChordLeaveData> {
    prop_oneof![
        node_list().prop_map(ChordLeaveData::FromSucc),
        node_list().prop_map(ChordLeaveData::FromPred),
        (prop_oneof![Just(0u8), 3u8..=255], opaque(6)).prop_map(|(t, data)| {
            ChordLeaveData::Unknown {
                leave_type: ChordLeaveType(t),
                data,
            }
        }),
    ]
}

pub fn config_update() -> impl Strategy<Value = ConfigUpdateReq> {
    prop_oneof![
        opaque(20).prop_map(ConfigUpdateReq::Config),
        vec(opaque(8), 0..3).prop_map(ConfigUpdateReq::Kinds),
        (prop_oneof![Just(0u8), 3u8..=255], opaque(6)).prop_map(|(t, data)| {
            ConfigUpdateReq::Unknown {
                update_type: ConfigUpdateType(t),
                data,
            }
        }),
    ]
}

pub fn error_response() -> impl Strategy<Value = ErrorResponse> {
    (any::<u16>(), opaque(10)).prop_map(|(c, error_info)| ErrorResponse {
        error_code: ErrorCode(c),
        error_info,
    })
}

pub fn sip_registration() -> impl Strategy<Value = SipRegistration> {
    let non_compressed = destination().prop_filter("at least 3 bytes", |d| {
        reload::codec::Codec::to_bytes(d).unwrap().len() >= 3
    });
    prop_oneof![
        opaque(30).prop_map(SipRegistration::Uri),
        (
            opaque(20),
            vec(non_compressed, 1..3),
            vec(destination(), 0..2)
        )
            .prop_map(|(contact_prefs, mut destination_list, more)| {
                destination_list.extend(more);
                SipRegistration::Route {
                    contact_prefs,
                    destination_list,
                }
            }),
        (prop_oneof![Just(0u8), 3u8..=255], opaque(6)).prop_map(|(t, data)| {
            SipRegistration::Unknown {
                reg_type: SipRegistrationType(t),
                data,
            }
        }),
    ]
}

pub fn turn_server() -> impl Strategy<Value = TurnServer> {
    (any::<u8>(), ip_address_port()).prop_map(|(iteration, server_address)| TurnServer {
        iteration,
        server_address,
    })
}

pub fn framed() -> impl Strategy<Value = FramedMessage> {
    prop_oneof![
        (any::<u32>(), opaque(20))
            .prop_map(|(sequence, message)| FramedMessage::Data { sequence, message }),
        (any::<u32>(), any::<u32>()).prop_map(|(ack_sequence, received)| FramedMessage::Ack {
            ack_sequence,
            received
        }),
    ]
}

pub fn probe_info() -> impl Strategy<Value = ProbeInformation> {
    prop_oneof![
        any::<u32>().prop_map(ProbeInformation::ResponsibleSet),
        any::<u32>().prop_map(ProbeInformation::NumResources),
        any::<u32>().prop_map(ProbeInformation::Uptime),
        (prop_oneof![Just(0u8), 4u8..=255], opaque(6)).prop_map(|(t, value)| {
            ProbeInformation::Unknown {
                info_type: ProbeInformationType(t),
                value,
            }
        }),
    ]
}

/// Every typed body.
pub fn body() -> impl Strategy<Value = Body> {
    let arms: Vec<BoxedStrategy<Body>> = vec![
        vec(any::<u8>().prop_map(ProbeInformationType), 0..4)
            .prop_map(|requested_info| Body::ProbeReq(ProbeReq { requested_info }))
            .boxed(),
        vec(probe_info(), 0..3)
            .prop_map(|probe_info| Body::ProbeAns(ProbeAns { probe_info }))
            .boxed(),
        attach().prop_map(Body::AttachReq).boxed(),
        attach().prop_map(Body::AttachAns).boxed(),
        store_req().prop_map(Body::StoreReq).boxed(),
        store_ans().prop_map(Body::StoreAns).boxed(),
        fetch_req().prop_map(Body::FetchReq).boxed(),
        fetch_ans().prop_map(Body::FetchAns).boxed(),
        (resource_id(), vec(any::<u32>().prop_map(KindId), 0..4))
            .prop_map(|(resource, kinds)| Body::FindReq(FindReq { resource, kinds }))
            .boxed(),
        vec(
            (any::<u32>(), resource_id()).prop_map(|(k, closest)| FindKindData {
                kind: KindId(k),
                closest,
            }),
            0..3,
        )
        .prop_map(|results| Body::FindAns(FindAns { results }))
        .boxed(),
        (node_id(), opaque(6))
            .prop_map(|(joining_peer_id, d)| {
                Body::JoinReq(JoinReq {
                    joining_peer_id,
                    overlay_specific_data: d,
                })
            })
            .boxed(),
        opaque(6)
            .prop_map(|d| {
                Body::JoinAns(JoinAns {
                    overlay_specific_data: d,
                })
            })
            .boxed(),
        (node_id(), opaque(6))
            .prop_map(|(leaving_peer_id, d)| {
                Body::LeaveReq(LeaveReq {
                    leaving_peer_id,
                    overlay_specific_data: d,
                })
            })
            .boxed(),
        opaque(4).prop_map(Body::LeaveAns).boxed(),
        chord_update().prop_map(Body::UpdateReq).boxed(),
        opaque(4).prop_map(Body::UpdateAns).boxed(),
        (any::<bool>(), destination(), opaque(6))
            .prop_map(|(send_update, destination, d)| {
                Body::RouteQueryReq(RouteQueryReq {
                    send_update,
                    destination,
                    overlay_specific_data: d,
                })
            })
            .boxed(),
        node_id()
            .prop_map(|next_peer| Body::RouteQueryAns(ChordRouteQueryAns { next_peer }))
            .boxed(),
        opaque(20)
            .prop_map(|padding| Body::PingReq(PingReq { padding }))
            .boxed(),
        (any::<u64>(), any::<u64>())
            .prop_map(|(response_id, time)| Body::PingAns(PingAns { response_id, time }))
            .boxed(),
        fetch_req().prop_map(Body::StatReq).boxed(),
        stat_ans().prop_map(Body::StatAns).boxed(),
        app_attach().prop_map(Body::AppAttachReq).boxed(),
        app_attach().prop_map(Body::AppAttachAns).boxed(),
        config_update().prop_map(Body::ConfigUpdateReq).boxed(),
        opaque(4).prop_map(Body::ConfigUpdateAns).boxed(),
        error_response().prop_map(Body::Error).boxed(),
        (
            prop_oneof![
                Just(0u16),
                5u16..7,
                11u16..13,
                27u16..29,
                31u16..33,
                35u16..0x100
            ],
            opaque(10),
        )
            .prop_map(|(c, body)| Body::Unknown {
                code: MessageCode(c),
                body,
            })
            .boxed(),
    ];
    Union::new(arms)
}

/// A whole message whose body is a typed [`Body`].
pub fn typed_message() -> impl Strategy<Value = (Message, Body)> {
    (header(), body(), vec(extension(), 0..2), security_block()).prop_map(
        |(header, body, extensions, security)| {
            let mut contents = MessageContents::from_body(&body).unwrap();
            contents.extensions = extensions;
            (
                Message {
                    header,
                    contents,
                    security,
                },
                body,
            )
        },
    )
}
