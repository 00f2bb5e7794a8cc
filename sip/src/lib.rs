//! SIP (RFC 3261) handling, sans-IO: message parsing and printing, stream framing,
//! response building, transactions and an endpoint that ties them together.
//! Nothing in this crate reads a clock, sleeps or touches a socket.
//!
//! The driver's loop, in outline (the real one is `src/sip_transport/` in the binary):
//!
//! ```
//! use sip::{Endpoint, EndpointConfig, Event, Input, Output, Transport};
//! use std::time::{Duration, Instant};
//!
//! # #[allow(clippy::disallowed_methods)]
//! let now = Instant::now(); // the driver owns the clock
//! let mut ep = Endpoint::new(EndpointConfig { seed: 42, ..EndpointConfig::default() });
//! let options = "OPTIONS sip:node.example.com SIP/2.0\r\n\
//!     Via: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK1;rport\r\n\
//!     To: <sip:node.example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\n\
//!     Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
//! ep.handle_input(now, Input::Received {
//!     transport: Transport::Udp,
//!     local: "192.0.2.1:5060".parse().unwrap(),
//!     remote: "192.0.2.7:40000".parse().unwrap(),
//!     conn: None,
//!     bytes: options.as_bytes().to_vec(),
//! });
//! while let Some(out) = ep.poll_output() {
//!     match out {
//!         Output::Transmit { remote, bytes, .. } => {
//!             assert_eq!(remote.port(), 40000); // rport: back to the source port
//!             assert!(bytes.starts_with(b"SIP/2.0 200 OK\r\n"));
//!         }
//!         Output::Event(Event::Request { key, .. }) => {
//!             // The application decides: ep.reply(now, &key, 200, "OK"), ...
//!             let _ = key;
//!         }
//!         Output::Event(_) => {}
//!     }
//! }
//! // Sleep until ep.poll_timeout(), then: ep.handle_input(deadline, Input::Timeout).
//! if let Some(deadline) = ep.poll_timeout() {
//!     assert!(deadline <= now + Duration::from_secs(32)); // Timer J
//!     ep.handle_input(deadline, Input::Timeout);
//! }
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod auth;
pub mod b2bua;
pub mod endpoint;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod message;
pub mod proxy;
pub mod registrar;
pub mod response;
pub mod transaction;

pub use endpoint::{
    ConnId, Destination, Endpoint, EndpointConfig, EndpointError, Event, Input, Output, Source,
    Transport,
};
