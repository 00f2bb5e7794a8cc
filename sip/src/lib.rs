//! SIP (RFC 3261) handling, sans-IO.
