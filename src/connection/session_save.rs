//! A connection's session saved when it changed: after `on_message` returned, and again when
//! its response completed (the rest of the session's I/O is in `session.rs`).

use super::table::try_with;
use super::{Connection, TcpConnection};
use crate::protocols::http::session::{SessionDone, encode, random_bytes};

pub(crate) fn is_dirty(connection: &Connection) -> bool {
    (connection.extras.as_ref())
        .and_then(|extras| extras.session.as_ref())
        .is_some_and(|state| state.dirty && !state.unreadable)
}

/// Saves the connection's session if it changed: writes it (destroys it when empty), removes
/// retired ids, and now and then collects garbage. Handler errors are logged.
pub(crate) fn save(handle: &TcpConnection) {
    let work = try_with(|table| {
        let connection = table.connection_mut(handle)?;
        if !is_dirty(connection) {
            return None;
        }
        let state = connection.extras.as_mut()?.session.as_deref_mut()?;
        state.dirty = false;
        let data = (!state.data.is_empty()).then(|| encode(&state.data));
        Some((
            state.config.clone(),
            state.id.clone(),
            data,
            std::mem::take(&mut state.retired),
        ))
    })
    .flatten();
    let Some((config, id, data, retired)) = work else {
        return;
    };
    let handler = &config.handler;
    for old in retired {
        handler.destroy(&old, report("destroy", old.clone()));
    }
    match data {
        Some(data) => handler.write(&id, data, config.lifetime, report("write", id.clone())),
        None => handler.destroy(&id, report("destroy", id.clone())),
    }
    let (numerator, denominator) = config.gc_probability;
    let mut roll = [0u8; 4];
    if numerator > 0
        && random_bytes(&mut roll).is_ok()
        && u32::from_le_bytes(roll) % denominator < numerator
    {
        handler.gc(config.lifetime);
    }
}

fn report(operation: &'static str, id: String) -> SessionDone<()> {
    Box::new(move |result| {
        if let Err(error) = result {
            log::warn!("session {id}: {operation} failed: {error}");
        }
    })
}
