//! The end of an HTTP response, as the write path sees it: the connection closes or waits for
//! its next request (now, or at the end of the turn), under the right timeout.

use super::TcpConnection;
use super::actions::Actions;
use super::session_save::is_dirty;
use super::table::Table;
use crate::protocols::http::Streaming;

/// A response is complete: close if it must, else the next request may go (now, or at the end
/// of this turn when it was answered from outside the read path), under the right timeout.
pub(crate) fn response_complete(
    table: &mut Table,
    handle: &TcpConnection,
    close_after: bool,
) -> Actions {
    let now = table.now;
    let Some(connection) = table.connection_mut(handle) else {
        return Actions::default();
    };
    let settings = connection.worker.http_settings.get();
    let save_session = connection.extras.is_some() && is_dirty(connection);
    let http = &mut connection.http;
    http.awaiting_response = false;
    let stream_ended = std::mem::take(&mut http.streaming) == Streaming::EventStream;
    http.range = None;
    if close_after {
        if stream_ended {
            table.metrics.sse_streams = table.metrics.sse_streams.saturating_sub(1);
        }
        return Actions {
            close: true,
            save_session,
            ..Actions::default()
        };
    }
    let buffered = !connection.recv_buffer.is_empty();
    let deadline = if buffered {
        connection.http.head_timer_running = true;
        now + settings.request_head_timeout
    } else {
        now + settings.keep_alive_timeout
    };
    let run_again = !connection.dispatching && (buffered || connection.read_pending);
    if stream_ended {
        table.metrics.sse_streams = table.metrics.sse_streams.saturating_sub(1);
    }
    table.set_deadline(handle.key(), Some(deadline));
    if run_again {
        table.ready.push_back((handle.key(), handle.id()));
    }
    Actions {
        save_session,
        ..Actions::default()
    }
}
