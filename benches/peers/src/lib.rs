//! Shared bits of the peer servers.
