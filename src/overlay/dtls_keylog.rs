//! `SSLKEYLOGFILE` for DTLS links, so Wireshark can decrypt them as it does the TLS links.
//!
//! dimpl has no key-log callback, but its crypto provider is pluggable. DTLS 1.2 derives the
//! record keys with `PRF(master_secret, "key expansion", server_random || client_random)`
//! (RFC 5246 6.3), and the PRF's first HMAC has exactly the master secret as its key and
//! `"key expansion" || server_random || client_random` as its data. [`provider`] is dimpl's
//! default provider with an HMAC that notices that call and appends the NSS key-log line
//! `CLIENT_RANDOM <client_random> <master_secret>` to the file; everything else is unchanged.
//! Used only when `SSLKEYLOGFILE` is set (the node warns about it at start).

use dimpl::CryptoError;
use dimpl::crypto::{HashAlgorithm, HmacProvider};
use std::io::Write;
use std::sync::{Mutex, OnceLock};

const LABEL: &[u8] = b"key expansion";
/// TLS 1.2 master secret length (RFC 5246 8.1).
const MASTER_LEN: usize = 48;
const RANDOM_LEN: usize = 32;

/// dimpl's default HMAC, and the open key-log file.
struct State {
    inner: &'static dyn HmacProvider,
    file: Option<Mutex<std::fs::File>>,
}

static STATE: OnceLock<State> = OnceLock::new();
static KEYLOG_HMAC: KeyLogHmac = KeyLogHmac;

fn state() -> &'static State {
    STATE.get_or_init(|| State {
        inner: dimpl::crypto::aws_lc_rs::default_provider().hmac_provider,
        file: std::env::var_os("SSLKEYLOGFILE").and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(|e| {
                    tracing::warn!(
                        "cannot open SSLKEYLOGFILE {} for DTLS keys: {e}",
                        std::path::Path::new(&p).display()
                    );
                })
                .ok()
                .map(Mutex::new)
        }),
    })
}

/// The key-log line for an HMAC call, if it is the first HMAC of the key expansion.
fn keylog_line(key: &[u8], data: &[u8]) -> Option<String> {
    let rest = data.strip_prefix(LABEL)?;
    if key.len() != MASTER_LEN || rest.len() != 2 * RANDOM_LEN {
        return None;
    }
    let client_random = rest.get(RANDOM_LEN..)?;
    Some(format!(
        "CLIENT_RANDOM {} {}\n",
        hex::encode(client_random),
        hex::encode(key)
    ))
}

/// dimpl's HMAC that writes the master secret to the key log as a side effect.
#[derive(Debug)]
struct KeyLogHmac;

impl HmacProvider for KeyLogHmac {
    fn hmac(
        &self,
        hash: HashAlgorithm,
        key: &[u8],
        data: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        let s = state();
        if let (Some(file), Some(line)) = (&s.file, keylog_line(key, data))
            && let Ok(mut f) = file.lock()
        {
            let _ = f.write_all(line.as_bytes());
        }
        s.inner.hmac(hash, key, data, out)
    }
}

/// dimpl's default crypto provider, writing DTLS 1.2 session keys to `SSLKEYLOGFILE`.
pub fn provider() -> dimpl::crypto::CryptoProvider {
    let mut p = dimpl::crypto::aws_lc_rs::default_provider();
    p.hmac_provider = &KEYLOG_HMAC;
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_key_expansion_call_is_logged() {
        let master = [7u8; 48];
        let mut data = LABEL.to_vec();
        data.extend_from_slice(&[1u8; 32]); // server random
        data.extend_from_slice(&[2u8; 32]); // client random
        let line = keylog_line(&master, &data).unwrap();
        assert_eq!(
            line,
            format!("CLIENT_RANDOM {} {}\n", "02".repeat(32), "07".repeat(48))
        );
        // Later HMACs of the same PRF (A(i) || label || seed) and other labels are not.
        let mut later = vec![0u8; 32];
        later.extend_from_slice(&data);
        assert!(keylog_line(&master, &later).is_none());
        assert!(keylog_line(&master, b"master secret").is_none());
        assert!(keylog_line(&[7u8; 32], &data).is_none());
    }

    #[test]
    fn hmac_is_unchanged() {
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        let n = KEYLOG_HMAC
            .hmac(HashAlgorithm::SHA256, b"k", b"data", &mut a)
            .unwrap();
        let m = state()
            .inner
            .hmac(HashAlgorithm::SHA256, b"k", b"data", &mut b)
            .unwrap();
        assert_eq!((n, a), (m, b));
    }
}
