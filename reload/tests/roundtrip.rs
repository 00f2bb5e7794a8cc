//! Property tests: decode(encode(x)) == x for every wire type, and decoding is canonical
//! (bytes that decode re-encode to themselves).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use proptest::prelude::*;
use reload::codec::Codec;
use reload::wire::*;

fn rt<T: Codec + PartialEq + std::fmt::Debug>(v: &T) -> Result<(), TestCaseError> {
    let b = v.to_bytes().unwrap();
    prop_assert_eq!(&T::from_bytes(&b).unwrap(), v);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn destination_rt(d in destination()) { rt(&d)?; }

    #[test]
    fn forwarding_option_rt(o in forwarding_option()) { rt(&o)?; }

    #[test]
    fn extension_rt(e in extension()) { rt(&e)?; }

    #[test]
    fn contents_rt(c in contents()) { rt(&c)?; }

    #[test]
    fn signer_identity_rt(s in signer_identity()) { rt(&s)?; }

    #[test]
    fn security_block_rt(s in security_block()) { rt(&s)?; }

    #[test]
    fn error_response_rt(e in error_response()) { rt(&e)?; }

    #[test]
    fn ip_address_port_rt(a in ip_address_port()) { rt(&a)?; }

    #[test]
    fn ice_candidate_rt(c in ice_candidate()) { rt(&c)?; }

    #[test]
    fn sip_registration_rt(s in sip_registration()) { rt(&s)?; }

    #[test]
    fn turn_server_rt(t in turn_server()) { rt(&t)?; }

    #[test]
    fn framed_rt(f in framed()) { rt(&f)?; }

    #[test]
    fn chord_leave_rt(l in chord_leave()) { rt(&l)?; }

    #[test]
    fn chord_update_rt(u in chord_update()) { rt(&u)?; }

    #[test]
    fn config_update_rt(c in config_update()) { rt(&c)?; }

    #[test]
    fn stored_data_rt((m, d) in model().prop_flat_map(|m| (Just(m), stored_data(m)))) {
        let b = d.to_bytes().unwrap();
        prop_assert_eq!(StoredData::from_bytes(&b, m).unwrap(), d);
    }

    #[test]
    fn message_rt(m in message()) {
        let b = m.encode().unwrap();
        prop_assert_eq!(u32::from_be_bytes([b[16], b[17], b[18], b[19]]) as usize, b.len());
        let (d, contents) = Message::decode_with_contents(&b).unwrap();
        prop_assert_eq!(&d, &m);
        prop_assert_eq!(contents, &m.contents.to_bytes().unwrap()[..]);
        let raw = RawMessage::decode(&b).unwrap();
        prop_assert_eq!(&raw.header, &m.header);
        prop_assert_eq!(raw.encode().unwrap(), b);
    }

    #[test]
    fn body_rt(b in body()) {
        let bytes = b.to_bytes().unwrap();
        prop_assert_eq!(Body::decode(b.code(), &bytes, &BuiltinKinds).unwrap(), b);
    }

    #[test]
    fn typed_message_rt((m, body) in typed_message()) {
        let b = m.encode().unwrap();
        let d = Message::decode(&b).unwrap();
        prop_assert_eq!(d.contents.decode_body(&BuiltinKinds).unwrap(), body);
        prop_assert_eq!(d, m);
    }

    /// With no Kind known, model-dependent bodies stay opaque and still re-encode exactly.
    #[test]
    fn unknown_kinds_survive(b in body()) {
        let bytes = b.to_bytes().unwrap();
        let opaque = Body::decode(b.code(), &bytes, &NoKinds).unwrap();
        prop_assert_eq!(opaque.to_bytes().unwrap(), bytes);
    }
}
