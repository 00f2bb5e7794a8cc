//! Configuration sequence handling and ConfigUpdate (RFC 6940 6.3.2.1, 6.5.4): a request
//! whose configuration_sequence differs from ours gets Error_Config_Too_Old/Too_New (compared
//! modulo 2^16 as in TCP); when it is older and we hold the signed configuration document we
//! push it with a ConfigUpdate (sent with sequence 65535 so that the older peer accepts it).
//! A received `config` ConfigUpdate is handed to the driver ([`Node::take_config_update`]),
//! which checks the document's signature and sequence and reconfigures; `kind` updates are
//! refused with Error_Forbidden (we accept no kind-signer).

use super::msg::{Dest, Header};
use super::{Node, Pending, Purpose, Time, Timer, glue, msg};
use crate::codec::{Codec, Opaque};
use crate::wire::{ConfigUpdateReq, NodeId};
use rand::RngExt;

/// ConfigUpdate request code (RFC 6940 14.8).
pub(super) const CONFIG_UPDATE_REQ: u16 = 33;
/// ConfigUpdate answer code.
pub(super) const CONFIG_UPDATE_ANS: u16 = 34;
/// The configuration_sequence that any node accepts on a ConfigUpdate (6.3.2.1).
pub const ANY_SEQUENCE: u16 = 0xffff;

/// How `theirs` compares with `ours` modulo 2^16 (RFC 6940 6.3.2.1, "as in TCP").
#[must_use]
pub fn sequence_cmp(theirs: u16, ours: u16) -> std::cmp::Ordering {
    (theirs.wrapping_sub(ours) as i16).cmp(&0)
}

impl Node {
    /// Checks a request's configuration_sequence; answers the error (and pushes our document
    /// to an older peer) and returns false when it must not be processed.
    pub(super) fn check_config_sequence(
        &mut self,
        now: Time,
        header: &Header,
        from: Option<NodeId>,
        code: u16,
    ) -> bool {
        let seq = header.configuration_sequence;
        if seq == self.cfg.config_sequence || (seq == ANY_SEQUENCE && code == CONFIG_UPDATE_REQ) {
            return true;
        }
        let older = sequence_cmp(seq, self.cfg.config_sequence) == std::cmp::Ordering::Less;
        let c = if older {
            msg::error_code::CONFIG_TOO_OLD
        } else {
            msg::error_code::CONFIG_TOO_NEW
        };
        self.reply_error(now, header, from, c, b"");
        if older {
            let origin = match header.via_list.first() {
                Some(Dest::Node(n)) => Some(*n),
                Some(_) => None,
                None => from,
            };
            if let (Some(o), Some(doc)) = (origin, self.cfg.config_document.clone()) {
                self.send_config_update(now, o, doc);
            }
        }
        false
    }

    /// Sends our configuration document to `to` (ConfigUpdate type `config`).
    fn send_config_update(&mut self, now: Time, to: NodeId, doc: Vec<u8>) {
        let body = ConfigUpdateReq::Config(Opaque(doc))
            .to_bytes()
            .unwrap_or_default();
        let contents = glue::encode_contents(CONFIG_UPDATE_REQ, &body);
        let txid: u64 = self.rng.random();
        let rest = self.sign_contents(txid, contents, &[]);
        let header = Header {
            overlay: self.overlay,
            configuration_sequence: ANY_SEQUENCE,
            ttl: self.cfg.initial_ttl,
            transaction_id: txid,
            destination_list: vec![Dest::Node(to)],
            ..Header::default()
        };
        let next = now.plus_ms(self.cfg.reliability_timer_ms);
        self.pending.insert(
            txid,
            Pending {
                purpose: Purpose::ConfigPush,
                header: header.clone(),
                rest: rest.clone(),
                sends: 1,
                next,
                target: Some(to),
                via_link: None,
            },
        );
        self.stats.config_updates_sent += 1;
        self.arm(next, Timer::Retransmit(txid));
        self.route(now, header, rest, None, None);
    }

    /// Answers a ConfigUpdate request body.
    pub(super) fn answer_config_update(
        &mut self,
        now: Time,
        header: &Header,
        from: Option<NodeId>,
        body: &[u8],
    ) {
        let code = match ConfigUpdateReq::from_bytes(body) {
            Ok(ConfigUpdateReq::Config(doc)) => {
                // The driver verifies signature and sequence (RFC 6940 6.5.4) before using it.
                self.config_update = Some(doc.0);
                None
            }
            Ok(ConfigUpdateReq::Kinds(_)) => Some(msg::error_code::FORBIDDEN),
            _ => Some(msg::error_code::INVALID_MESSAGE),
        };
        match code {
            Some(c) => self.reply_error(now, header, from, c, b""),
            None => {
                let contents = glue::encode_contents(CONFIG_UPDATE_ANS, &[]);
                self.remember_answer(
                    now,
                    header.transaction_id,
                    CONFIG_UPDATE_ANS,
                    Vec::new(),
                    &[],
                );
                self.send_answer_contents(now, header, from, contents, &[]);
            }
        }
    }

    /// A configuration document received in a ConfigUpdate, for the driver to verify (its
    /// signature and a sequence newer than ours) and apply.
    pub fn take_config_update(&mut self) -> Option<Vec<u8>> {
        self.config_update.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn sequence_comparison_wraps() {
        assert_eq!(sequence_cmp(1, 2), Ordering::Less);
        assert_eq!(sequence_cmp(3, 2), Ordering::Greater);
        assert_eq!(sequence_cmp(0, 65534), Ordering::Greater);
        assert_eq!(sequence_cmp(65534, 0), Ordering::Less);
    }
}
