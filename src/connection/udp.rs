//! `udp://` workers: each datagram is a message, and a reply goes back to its sender.
//!
//! Every remote address that sends is a *peer*: an entry in the reactor's connection slab, like a
//! TCP connection but with no socket of its own ([`Stream::Datagram`]), so the [`TcpConnection`]
//! handle `on_message` gets works as everywhere else: `send` (a `sendto` on the worker's socket),
//! `close`, `status`, `remote_address`, a context, a reply from a timer. Datagrams from the same
//! address reuse its peer (an *association*) until it has been idle for the worker's keep-alive
//! timeout (60 s), until `close()`, or until it is the longest idle when a new address arrives
//! and the worker holds its limit of peers (`max_connections`, 10,000 by default for `udp://`).
//!
//! Nothing is buffered: a datagram is sent whole or refused. A datagram larger than the
//! package limit is dropped; a worker with a protocol (`text`, `frame`, a custom one, set with
//! `Worker::set_transport("udp")` or `Worker::with_protocol`) decodes the packages a datagram
//! holds and drops an incomplete rest, as Workerman does.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::io as connection_io;
use super::output;
use super::stream::{Listen, Stream};
use super::table::{READ_BUFFER_SIZE, Table, call_user, with};
use super::udp_listener::Peer;
use super::udp_peer::listener;
use super::{Connection, TcpConnection};
use crate::protocols::{Input, Message, ProtocolKind, frame, text};

/// The most datagrams one socket delivers in a row before other events get a turn.
const RECEIVE_BATCH: usize = 1024;
/// How many peers a `udp://` worker keeps when `max_connections` is not set.
pub(crate) const DEFAULT_PEER_LIMIT: usize = 10_000;
/// Idle timeouts are capped here, so a deadline always exists (`Instant` cannot hold centuries).
const LONGEST_TIMEOUT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// What one `recvfrom` brought.
enum Received {
    /// The socket is drained (or gone).
    Drained,
    /// Nothing to deliver: an error, a datagram over the size limit, or a peer that is closing.
    Dropped,
    /// A datagram of `length` bytes from a known peer.
    Known(TcpConnection, usize),
    /// A datagram from a new address; `evict` makes room for it first.
    New {
        from: SocketAddr,
        length: usize,
        evict: Option<TcpConnection>,
    },
}

/// The socket of listener `index` is readable: deliver datagrams until it would block, or until a
/// batch is done (then it gets another go this turn).
pub(crate) fn on_readable(index: usize) {
    let mut buffer = with(|table| std::mem::take(&mut table.read_buffer));
    if buffer.len() < READ_BUFFER_SIZE {
        buffer.resize(READ_BUFFER_SIZE, 0);
    }
    for _ in 0..RECEIVE_BATCH {
        let handle = match with(|table| receive(table, index, &mut buffer)) {
            Received::Drained => {
                with(|table| table.read_buffer = buffer);
                return;
            }
            Received::Dropped => continue,
            Received::Known(handle, length) => Some((handle, length)),
            Received::New {
                from,
                length,
                evict,
            } => {
                if let Some(victim) = evict {
                    log::debug!("udp peer {} evicted to make room", victim.id());
                    output::destroy(&victim);
                }
                match with(|table| associate(table, index, from, length)) {
                    Some(handle) => {
                        // on_connect, as for an accepted connection.
                        connection_io::on_accepted(&handle);
                        Some((handle, length))
                    }
                    None => None,
                }
            }
        };
        if let Some((handle, length)) = handle {
            dispatch(&handle, &buffer[..length]);
        }
    }
    with(|table| {
        table.read_buffer = buffer;
        table.accept_again = true;
    });
}

/// Takes one datagram off listener `index`'s socket and finds (or plans) its peer.
fn receive(table: &mut Table, index: usize, buffer: &mut [u8]) -> Received {
    let Some(listener_entry) = table.listeners.get(index) else {
        return Received::Drained;
    };
    let worker = listener_entry.worker.clone();
    let Some(udp) = listener(table, index) else {
        return Received::Drained;
    };
    let (length, from) = match udp.socket.recv_from(buffer) {
        Ok(received) => received,
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Received::Drained,
        Err(error) if error.kind() == io::ErrorKind::Interrupted => return Received::Dropped,
        Err(error) => {
            log::debug!("recvfrom on {}: {error}", worker.address);
            return Received::Dropped;
        }
    };
    if length > worker.max_package_size.get() {
        log::debug!("udp datagram of {length} bytes from {from} over max_package_size: dropped");
        return Received::Dropped;
    }
    let known = udp.peers.get(&from).copied();
    table.metrics.bytes_read += length as u64;
    if let Some(Peer { key, id, .. }) = known {
        let handle = TcpConnection::new(key, id);
        let Some(connection) = table.connection_mut(&handle) else {
            // Cannot happen (destroy forgets the peer); recover by starting afresh.
            if let Some(udp) = listener(table, index) {
                udp.peers.remove(&from);
            }
            return plan_new(table, index, from, length);
        };
        if connection.status != TcpConnection::STATUS_ESTABLISHED {
            return Received::Dropped;
        }
        connection.bytes_read += length as u64;
        touch(table, index, &handle);
        return Received::Known(handle, length);
    }
    plan_new(table, index, from, length)
}

/// A datagram from a new address: at the peer limit, the longest-idle peer must go first.
fn plan_new(table: &mut Table, index: usize, from: SocketAddr, length: usize) -> Received {
    let Some(limit) = table
        .listeners
        .get(index)
        .map(|listener| peer_limit(listener.worker.max_connections.get()))
    else {
        return Received::Drained;
    };
    let Table {
        listeners,
        connections,
        ..
    } = table;
    let Some(Listen::Udp(udp)) = listeners
        .get_mut(index)
        .map(|listener| &mut listener.socket)
    else {
        return Received::Drained;
    };
    if udp.peers.len() < limit {
        return Received::New {
            from,
            length,
            evict: None,
        };
    }
    // The longest idle: the oldest current entry of the recency queue.
    while let Some((address, hearing)) = udp.recency.pop_front() {
        let Some(&Peer {
            key,
            id,
            last_heard,
        }) = udp.peers.get(&address)
        else {
            continue;
        };
        let current = last_heard == hearing
            && connections.get(key).is_some_and(|connection| {
                connection.id == id && connection.status == TcpConnection::STATUS_ESTABLISHED
            });
        if current {
            return Received::New {
                from,
                length,
                evict: Some(TcpConnection::new(key, id)),
            };
        }
    }
    log::debug!("udp datagram from {from}: the peer limit ({limit}) is reached; dropped");
    Received::Dropped
}

/// `max_connections` as a peer limit: a `udp://` worker always has one.
fn peer_limit(max_connections: usize) -> usize {
    if max_connections == usize::MAX {
        DEFAULT_PEER_LIMIT
    } else {
        max_connections
    }
}

/// Creates the peer for `from` in the connection slab.
fn associate(
    table: &mut Table,
    index: usize,
    from: SocketAddr,
    length: usize,
) -> Option<TcpConnection> {
    let worker = table.listeners.get(index)?.worker.clone();
    let limit = peer_limit(worker.max_connections.get());
    let udp = listener(table, index)?;
    if udp.peers.len() >= limit {
        return None;
    }
    let entry = table.connections.vacant_entry();
    let key = entry.key();
    table.next_connection_id += 1;
    let id = table.next_connection_id;
    worker
        .connection_count
        .set(worker.connection_count.get() + 1);
    let protocol =
        crate::metrics::protocol_index(&worker.protocol.borrow(), worker.transport.get());
    let mut connection = Connection::new(id, Stream::Datagram(index as u32), from, worker);
    connection.bytes_read = length as u64;
    entry.insert(connection);
    table.statistics.connection_count += 1;
    table.metrics.opened(protocol);
    let peer = Peer {
        key,
        id,
        last_heard: 0,
    };
    listener(table, index)?.peers.insert(from, peer);
    let handle = TcpConnection::new(key, id);
    touch(table, index, &handle);
    Some(handle)
}

/// The peer was heard from: it goes to the back of the eviction order, and its idle deadline
/// moves to now + the keep-alive timeout.
fn touch(table: &mut Table, index: usize, handle: &TcpConnection) {
    let now = table.now;
    let Some(connection) = table.connection(handle) else {
        return;
    };
    let address = connection.remote_address;
    // A timeout of years means never; capped, it still ends an idle peer some day.
    let timeout = (connection.worker.http_settings.get().keep_alive_timeout).min(LONGEST_TIMEOUT);
    let deadline = now.checked_add(timeout);
    if connection.deadline != deadline {
        table.set_deadline(handle.key(), deadline);
    }
    let Some(udp) = listener(table, index) else {
        return;
    };
    let Some(peer) = udp.peers.get_mut(&address) else {
        return;
    };
    udp.hearings += 1;
    peer.last_heard = udp.hearings;
    udp.recency.push_back((address, udp.hearings));
    if udp.recency.len() > 2 * udp.peers.len() + 64 {
        let peers = &udp.peers;
        udp.recency.retain(|(address, hearing)| {
            peers
                .get(address)
                .is_some_and(|peer| peer.last_heard == *hearing)
        });
    }
}

/// Delivers the packages of one datagram to `on_message`: the whole datagram for a raw `udp://`
/// worker (an empty one too, as Workerman), else each package the protocol finds in it.
fn dispatch(handle: &TcpConnection, datagram: &[u8]) {
    let Some((protocol, wants_bytes, max_package_size)) = with(|table| {
        let connection = table.connection(handle)?;
        Some((
            connection.worker.protocol.borrow().clone(),
            connection.worker.text_as_bytes.get(),
            connection.max_package_size,
        ))
    }) else {
        return;
    };
    let mut position = 0;
    loop {
        let established = with(|table| {
            table
                .connection(handle)
                .is_some_and(|connection| connection.status == TcpConnection::STATUS_ESTABLISHED)
        });
        if !established {
            return;
        }
        let rest = &datagram[position..];
        if rest.is_empty() && (position > 0 || !matches!(protocol, ProtocolKind::Raw)) {
            return;
        }
        let input = match &protocol {
            ProtocolKind::Raw => Input::Package(rest.len()),
            ProtocolKind::Text => text::input(rest, max_package_size),
            ProtocolKind::Frame => frame::input(rest, max_package_size),
            ProtocolKind::Custom(custom) => {
                match call_user(
                    &|| output::describe(handle, "a custom protocol's input"),
                    || custom.input(rest, handle),
                ) {
                    Some(input) => input,
                    None => Input::Invalid,
                }
            }
            // Refused when the worker was configured.
            ProtocolKind::Http | ProtocolKind::WebSocket => Input::Invalid,
        };
        let length = match input {
            Input::Package(length)
                if length <= rest.len()
                    && (length > 0 || matches!(protocol, ProtocolKind::Raw)) =>
            {
                length
            }
            // An incomplete or invalid rest of a datagram is dropped (more will not arrive).
            _ => {
                log::debug!(
                    "udp peer {}: {} bytes hold no whole package, dropped",
                    handle.id(),
                    rest.len()
                );
                return;
            }
        };
        let package = &rest[..length];
        let message = match &protocol {
            ProtocolKind::Raw => Message::Bytes(package.to_vec()),
            ProtocolKind::Text if wants_bytes => Message::Bytes(text::decode_bytes(package)),
            ProtocolKind::Text => Message::Text(text::decode(package)),
            ProtocolKind::Frame => Message::Bytes(frame::decode(package)),
            ProtocolKind::Custom(custom) => {
                match call_user(
                    &|| output::describe(handle, "a custom protocol's decode"),
                    || custom.decode(package, handle),
                ) {
                    Some(message) => Message::Custom(message),
                    None => {
                        output::destroy(handle);
                        return;
                    }
                }
            }
            ProtocolKind::Http | ProtocolKind::WebSocket => return,
        };
        position += length;
        with(|table| table.statistics.total_request += 1);
        // A panic in on_message closes this peer (on_close runs), as it closes a connection.
        output::deliver(handle, message);
        if matches!(protocol, ProtocolKind::Raw) {
            return;
        }
    }
}

/// The workers stopped listening: their peers end at once (in the next turn, with `on_close`),
/// so a graceful stop does not wait for them to go idle.
pub(crate) fn end_all_peers(table: &mut Table) {
    let now = table.now;
    let peers: Vec<usize> = table
        .connections
        .iter()
        .filter(|(_, connection)| matches!(connection.stream, Some(Stream::Datagram(_))))
        .map(|(key, _)| key)
        .collect();
    for key in peers {
        table.set_deadline(key, Some(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_limit_defaults_when_max_connections_is_unset() {
        assert_eq!(peer_limit(usize::MAX), DEFAULT_PEER_LIMIT);
        assert_eq!(peer_limit(3), 3);
    }
}
