//! SIP (RFC 3261) handling, sans-IO: message parsing and printing, stream framing,
//! response building, transactions and an endpoint that ties them together.
//! Nothing in this crate reads a clock, sleeps or touches a socket.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod endpoint;
pub mod message;
pub mod response;
pub mod transaction;

pub use endpoint::{
    ConnId, Destination, Endpoint, EndpointConfig, EndpointError, Event, Input, Output, Source,
    Transport,
};
pub mod auth;
