//! A `udp://` worker's socket and its table of peers (each remote address that sends); how the
//! datagrams are read, dispatched and answered is in `udp.rs`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

/// A `udp://` worker's socket and its peers (the reactor's listener for it).
pub(crate) struct UdpListener {
    pub(crate) socket: mio::net::UdpSocket,
    /// Each remote address's peer.
    pub(crate) peers: HashMap<SocketAddr, Peer>,
    /// Peers in the order they were last heard from, oldest first: (address, the number of that
    /// hearing). An entry is current only while it is its peer's last hearing; stale entries are
    /// skipped, and dropped once they outnumber the peers.
    pub(crate) recency: VecDeque<(SocketAddr, u64)>,
    /// Hearings so far, numbering the entries of `recency`. A number, not a time: several
    /// datagrams handled in one turn share the turn's time but are still heard in order.
    pub(crate) hearings: u64,
}

/// A remote address's peer: its slab key, connection id and last hearing (see `recency`).
#[derive(Clone, Copy)]
pub(crate) struct Peer {
    pub(crate) key: usize,
    pub(crate) id: u64,
    pub(crate) last_heard: u64,
}

impl UdpListener {
    pub(crate) fn new(socket: mio::net::UdpSocket) -> UdpListener {
        UdpListener {
            socket,
            peers: HashMap::new(),
            recency: VecDeque::new(),
            hearings: 0,
        }
    }
}
