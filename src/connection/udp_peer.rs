//! What the write path does on a `udp://` peer: a send is one `sendto` on its worker's socket,
//! and a destroyed peer is forgotten by its listener (receiving is in `udp.rs`).

use std::io;

use super::SendResult;
use super::TcpConnection;
use super::actions::Actions;
use super::stream::Listen;
use super::table::Table;
use super::udp_listener::UdpListener;

/// The `udp://` listener at `index`, if it is still there.
pub(crate) fn listener(table: &mut Table, index: usize) -> Option<&mut UdpListener> {
    match &mut table.listeners.get_mut(index)?.socket {
        Listen::Udp(udp) => Some(udp),
        _ => None,
    }
}

/// `send` on a peer: one `sendto` on its worker's socket. Nothing is queued: a datagram the
/// kernel will not take now (or at all) is refused and counted in `send_fail`.
pub(crate) fn send_to(
    table: &mut Table,
    handle: &TcpConnection,
    index: usize,
    bytes: &[u8],
) -> (SendResult, Actions) {
    let Some(connection) = table.connection(handle) else {
        return (SendResult::Refused, Actions::default());
    };
    let to = connection.remote_address;
    let worker = connection.worker.clone();
    let socket_of_worker = table
        .listeners
        .get(index)
        .is_some_and(|listener| std::rc::Rc::ptr_eq(&listener.worker, &worker));
    let result = match listener(table, index).filter(|_| socket_of_worker) {
        None => Err(io::Error::other("the worker no longer listens")),
        Some(udp) => loop {
            match udp.socket.send_to(bytes, to) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        },
    };
    match result {
        Ok(sent) if sent == bytes.len() => {
            if let Some(connection) = table.connection_mut(handle) {
                connection.bytes_written += sent as u64;
            }
            table.metrics.bytes_written += sent as u64;
            (SendResult::Written, Actions::default())
        }
        Ok(sent) => {
            log::debug!(
                "udp peer {}: sent {sent} of {} bytes",
                handle.id(),
                bytes.len()
            );
            table.statistics.send_fail += 1;
            (SendResult::Refused, Actions::default())
        }
        Err(error) => {
            log::debug!("sendto udp peer {} ({to}): {error}", handle.id());
            table.statistics.send_fail += 1;
            (SendResult::Refused, Actions::default())
        }
    }
}

/// A peer was destroyed: forget its address, so the next datagram from it starts a new peer.
pub(crate) fn forget(table: &mut Table, index: usize, key: usize) {
    let Some(address) = table.connections.get(key).map(|c| c.remote_address) else {
        return;
    };
    if let Some(udp) = listener(table, index) {
        if udp.peers.get(&address).is_some_and(|peer| peer.key == key) {
            udp.peers.remove(&address);
        }
    }
}
