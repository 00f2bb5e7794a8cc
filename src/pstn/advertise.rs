//! What the PSTN bridge puts in the overlay (SIP-REGISTRATION, Kind 1, RFC 7904):
//!
//! * every DID as an AOR-to-AOR entry (`sip_registration_uri`): Resource-ID
//!   H(`+494012345@domain`), dictionary key this node's Node-ID, value `1001@domain`;
//! * on a node with trunks, a route entry naming this node at H(`pstn-gateway@domain`), so
//!   that other nodes find a gateway by fetching that AOR (a stand-in for the service
//!   discovery / ReDiR usage until it exists).
//!
//! Entries are stored with a one-hour lifetime and re-stored every half hour; a SIGHUP
//! stores the new DID list at once. As for phones' registrations, the node may store these
//! entries for other user names because its certificate carries the registrar role
//! (docs/CALLS.md).

use crate::gateway::publish::{resource_of, route_value};
use crate::overlay::OverlayHandle;
use reload::codec::{Codec, Opaque};
use reload::storage::{DataValue, KIND_SIP_REGISTRATION, ValueKey};
use reload::wire::sip::SipRegistration;
use std::time::Duration;

/// Lifetime of the entries, seconds.
const LIFETIME: u32 = 3600;

/// The encoded `sip_registration_uri` value pointing at `aor`.
pub fn uri_value(aor: &str) -> Vec<u8> {
    SipRegistration::Uri(Opaque::from(aor.as_bytes().to_vec()))
        .to_bytes()
        .unwrap_or_default()
}

/// Stores the entries now (in a task).
pub fn store_all(
    overlay: OverlayHandle,
    domain: String,
    dids: Vec<(String, String)>,
    gateway: bool,
) {
    tokio::spawn(async move {
        let mut entries: Vec<(String, Vec<u8>)> = dids
            .into_iter()
            .map(|(n, u)| (format!("{n}@{domain}"), uri_value(&format!("{u}@{domain}"))))
            .collect();
        if gateway {
            entries.push((
                format!("{}@{domain}", super::GATEWAY_USER),
                route_value(overlay.node_id),
            ));
        }
        for (name, value) in entries {
            let resource = resource_of(&name);
            let r = overlay
                .store(
                    resource,
                    KIND_SIP_REGISTRATION,
                    vec![(
                        ValueKey::Key(overlay.node_id.to_array().to_vec()),
                        DataValue {
                            exists: true,
                            value,
                        },
                        LIFETIME,
                    )],
                )
                .await;
            match r {
                Ok(_) => tracing::info!("stored {name} in the overlay (PSTN bridge)"),
                Err(e) => tracing::warn!("could not store {name} in the overlay: {e}"),
            }
        }
    });
}

/// Re-stores the entries every half hour with the plan current at that time.
pub fn spawn_refresh(
    overlay: OverlayHandle,
    domain: String,
    plan: super::SharedPlan,
    gateway: bool,
) {
    tokio::spawn(async move {
        loop {
            let dids: Vec<(String, String)> = plan
                .lock()
                .map(|p| p.dids.iter().map(|(a, b)| (a.clone(), b.clone())).collect())
                .unwrap_or_default();
            if !dids.is_empty() || gateway {
                store_all(overlay.clone(), domain.clone(), dids, gateway);
            }
            tokio::time::sleep(Duration::from_secs(u64::from(LIFETIME / 2))).await;
        }
    });
}
