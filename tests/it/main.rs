//! Integration tests: one test binary (kinder to a 2-core build) with a module per area.
//! They run the real `p2psip` binary and talk to it over loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod attacks;
mod calls;
mod decode;
mod diag;
mod harness;
mod join;
mod nat;
mod node_start;
mod overlay;
mod overlay_calls;
mod pki;
mod pstn;
mod redir;
mod registrar;
mod sip_options;
mod status_page;
mod wireshark_diag;
