//! permessage-deflate (RFC 7692): negotiation, and compressing and inflating whole messages.
//!
//! Both directions are negotiated *without context takeover* (`server_no_context_takeover;
//! client_no_context_takeover`): every message is compressed on its own. That costs some ratio
//! on streams of small similar messages, and saves what matters more here: no per-connection
//! compressor state (about 300 KB for a DEFLATE compressor, 40 KB for an inflater). One
//! compressor and one inflater per thread serve every connection, reset between messages.
//!
//! A peer may limit the window we compress with (`server_max_window_bits` from a client,
//! `client_max_window_bits` from a server) to fewer than 15 bits. The compressor always uses 15,
//! but a message no longer than the window cannot reach back further than it, so such a message
//! is still valid; longer ones go out uncompressed (RSV1 clear), which the protocol allows for any
//! message. Small messages, and messages that do not shrink, go out uncompressed too.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The extension's name in `Sec-WebSocket-Extensions`.
const NAME: &str = "permessage-deflate";
/// What a `ws://` client offers.
pub(crate) const CLIENT_OFFER: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
/// Messages shorter than this are sent as they are: they hardly shrink.
const MIN_COMPRESS: usize = 64;
/// The tail a sync flush leaves, removed before sending and put back before inflating (§7.2.1).
const SYNC_TAIL: [u8; 4] = [0, 0, 0xff, 0xff];
/// The last compressed message is kept for the next send of the same bytes (a broadcast
/// compresses once), when it is no larger than this.
const CACHE_LIMIT: usize = 64 * 1024;

/// What was agreed: the largest window (in bits, 8 to 15) our compressor may use.
pub(crate) type WindowBits = u8;

/// An extension's parameters: `name` and an optional value.
type Parameters<'a> = Vec<(&'a str, Option<&'a str>)>;

/// The extensions listed in an offer or answer: each one's name and parameters.
fn parse_extensions(header: &str) -> Vec<(&str, Parameters<'_>)> {
    header
        .split(',')
        .map(|extension| {
            let mut parts = extension.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let parameters = parts
                .filter(|part| !part.is_empty())
                .map(|part| match part.split_once('=') {
                    Some((key, value)) => (key.trim(), Some(value.trim().trim_matches('"'))),
                    None => (part, None),
                })
                .collect();
            (name, parameters)
        })
        .collect()
}

fn window_bits(value: Option<&str>) -> Option<u8> {
    let bits: u8 = value?.parse().ok()?;
    (8..=15).contains(&bits).then_some(bits)
}

/// The agreement with one permessage-deflate offer (or answer), or `None` if its parameters are
/// invalid: `(the window our side compresses with, the window it asked of the other side)`.
/// `we_are_server` names the parameters that limit our side.
fn agree(parameters: &[(&str, Option<&str>)], we_are_server: bool) -> Option<(u8, Option<u8>)> {
    let (ours, theirs) = if we_are_server {
        ("server_max_window_bits", "client_max_window_bits")
    } else {
        ("client_max_window_bits", "server_max_window_bits")
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut our_bits = 15;
    let mut their_bits = None;
    for &(key, value) in parameters {
        if seen.contains(&key) {
            return None;
        }
        seen.push(key);
        match key {
            "server_no_context_takeover" | "client_no_context_takeover" if value.is_none() => {}
            key if key == ours => our_bits = window_bits(value)?,
            // A client may offer `client_max_window_bits` without a value (it can be limited).
            key if key == theirs => {
                their_bits = match value {
                    None if we_are_server => None,
                    _ => Some(window_bits(value)?),
                }
            }
            _ => return None,
        }
    }
    Some((our_bits, their_bits))
}

/// Server: the first permessage-deflate offer in `Sec-WebSocket-Extensions` that can be
/// accepted, as (our compression window, the response header's value).
pub(crate) fn accept_offer(header: &str) -> Option<(WindowBits, String)> {
    parse_extensions(header)
        .into_iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(NAME))
        .find_map(|(_, parameters)| {
            let (our_bits, _) = agree(&parameters, true)?;
            let asked = parameters
                .iter()
                .any(|(key, _)| *key == "server_max_window_bits");
            let mut answer =
                format!("{NAME}; server_no_context_takeover; client_no_context_takeover");
            if asked {
                answer.push_str(&format!("; server_max_window_bits={our_bits}"));
            }
            Some((our_bits, answer))
        })
}

/// Client: checks the server's answer to [`CLIENT_OFFER`]: `Ok(None)` when it declined,
/// `Ok(Some(window))` when it accepted, `Err` when the answer is not one the offer allows.
pub(crate) fn check_answer(header: Option<&str>) -> Result<Option<WindowBits>, String> {
    let Some(header) = header.filter(|header| !header.trim().is_empty()) else {
        return Ok(None);
    };
    let extensions = parse_extensions(header);
    let [(name, parameters)] = extensions.as_slice() else {
        return Err(format!(
            "the server answered extensions we did not offer: {header}"
        ));
    };
    if !name.eq_ignore_ascii_case(NAME) {
        return Err(format!(
            "the server answered an extension we did not offer: {header}"
        ));
    }
    if !parameters
        .iter()
        .any(|(key, _)| *key == "server_no_context_takeover")
    {
        return Err(
            "the server's permessage-deflate answer lacks server_no_context_takeover".into(),
        );
    }
    match agree(parameters, false) {
        Some((our_bits, _)) => Ok(Some(our_bits)),
        None => Err(format!("invalid permessage-deflate parameters: {header}")),
    }
}

/// Why a compressed message could not be inflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// It inflates to more than the message size limit.
    TooBig,
    /// It is not valid DEFLATE data.
    Corrupt,
}

#[derive(Default)]
struct Shared {
    compress: Option<Compress>,
    decompress: Option<Decompress>,
    /// The last message compressed: (window bits, input, output).
    last: Option<(u8, Vec<u8>, Vec<u8>)>,
}

thread_local! {
    static SHARED: RefCell<Shared> = RefCell::default();
}

/// The message compressed for a frame with RSV1 set, or `None` to send it as it is (too small,
/// too long for the agreed window, or not shrinking).
pub(crate) fn compress(payload: &[u8], window: WindowBits) -> Option<Vec<u8>> {
    if payload.len() < MIN_COMPRESS || (window < 15 && payload.len() > 1 << window) {
        return None;
    }
    SHARED.with(|shared| {
        let mut shared = shared.borrow_mut();
        if let Some((bits, input, output)) = &shared.last {
            if *bits == window && input.as_slice() == payload {
                return Some(output.clone());
            }
        }
        let compressor = shared
            .compress
            .get_or_insert_with(|| Compress::new(Compression::fast(), false));
        compressor.reset();
        let mut output = Vec::with_capacity(payload.len() / 2 + 64);
        let start = compressor.total_in();
        loop {
            let consumed = (compressor.total_in() - start) as usize;
            if output.len() == output.capacity() {
                output.reserve(output.capacity().max(64));
            }
            let status = compressor
                .compress_vec(&payload[consumed..], &mut output, FlushCompress::Sync)
                .ok()?;
            let consumed = (compressor.total_in() - start) as usize;
            // Done once all input is in and the flush fit (room was left over).
            if consumed == payload.len() && output.len() < output.capacity() {
                break;
            }
            if status == Status::BufError && output.len() < output.capacity() {
                return None;
            }
        }
        if !output.ends_with(&SYNC_TAIL) {
            return None;
        }
        output.truncate(output.len() - SYNC_TAIL.len());
        if output.len() >= payload.len() {
            return None;
        }
        if payload.len() <= CACHE_LIMIT {
            shared.last = Some((window, payload.to_vec(), output.clone()));
        }
        Some(output)
    })
}

/// Inflates one compressed message, allowing at most `limit` bytes out.
pub(crate) fn inflate(payload: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    SHARED.with(|shared| {
        let mut shared = shared.borrow_mut();
        let inflater = shared
            .decompress
            .get_or_insert_with(|| Decompress::new(false));
        inflater.reset(false);
        let mut output =
            Vec::with_capacity((payload.len() * 3).min(limit.saturating_add(1)).max(64));
        for input in [payload, &SYNC_TAIL[..]] {
            let first = inflater.total_in();
            loop {
                let consumed = (inflater.total_in() - first) as usize;
                if output.len() == output.capacity() {
                    if output.len() > limit {
                        return Err(InflateError::TooBig);
                    }
                    let room = output.capacity().min(limit + 1 - output.len()).max(64);
                    output.reserve(room);
                }
                let before = (inflater.total_in(), output.len());
                let status = inflater
                    .decompress_vec(&input[consumed..], &mut output, FlushDecompress::Sync)
                    .map_err(|_| InflateError::Corrupt)?;
                if output.len() > limit {
                    return Err(InflateError::TooBig);
                }
                let consumed = (inflater.total_in() - first) as usize;
                let progressed = (inflater.total_in(), output.len()) != before;
                if status == Status::StreamEnd {
                    // A final block inside a message: nothing may follow it.
                    if consumed < input.len() {
                        return Err(InflateError::Corrupt);
                    }
                    break;
                }
                if consumed == input.len() && output.len() < output.capacity() {
                    break;
                }
                if !progressed && output.len() < output.capacity() {
                    return Err(InflateError::Corrupt);
                }
            }
        }
        Ok(output)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_accepts_the_first_valid_offer() {
        let chrome = "permessage-deflate; client_max_window_bits";
        let (bits, answer) = accept_offer(chrome).unwrap();
        assert_eq!(bits, 15);
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        let limited = "permessage-deflate; server_max_window_bits=10";
        let (bits, answer) = accept_offer(limited).unwrap();
        assert_eq!(bits, 10);
        assert!(answer.ends_with("; server_max_window_bits=10"));
        // Invalid offers are skipped; the next one is taken.
        let offers = "permessage-deflate; server_max_window_bits=7, \
                      permessage-deflate; unknown, permessage-deflate; server_no_context_takeover";
        assert_eq!(accept_offer(offers).unwrap().0, 15);
        assert!(accept_offer("permessage-deflate; client_no_context_takeover=1").is_none());
        assert!(
            accept_offer(
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover"
            )
            .is_none()
        );
        assert!(accept_offer("x-webkit-deflate-frame").is_none());
        assert!(accept_offer("").is_none());
    }

    #[test]
    fn client_checks_the_answer() {
        assert_eq!(check_answer(None), Ok(None));
        assert_eq!(
            check_answer(Some("permessage-deflate; server_no_context_takeover")),
            Ok(Some(15))
        );
        assert_eq!(
            check_answer(Some(
                "permessage-deflate; server_no_context_takeover; client_max_window_bits=9"
            )),
            Ok(Some(9))
        );
        assert!(check_answer(Some("permessage-deflate")).is_err());
        assert!(check_answer(Some("foo")).is_err());
        assert!(
            check_answer(Some(
                "permessage-deflate; server_no_context_takeover, permessage-deflate"
            ))
            .is_err()
        );
        assert!(
            check_answer(Some(
                "permessage-deflate; server_no_context_takeover; client_max_window_bits"
            ))
            .is_err()
        );
    }

    #[test]
    fn round_trips_and_limits() {
        let text = "the quick brown fox jumps over the lazy dog; ".repeat(100);
        let compressed = compress(text.as_bytes(), 15).unwrap();
        assert!(compressed.len() < text.len() / 5);
        assert_eq!(inflate(&compressed, text.len()).unwrap(), text.as_bytes());
        // The same bytes again come from the cache, identical.
        assert_eq!(compress(text.as_bytes(), 15).unwrap(), compressed);
        assert_eq!(
            inflate(&compressed, text.len() - 1),
            Err(InflateError::TooBig)
        );
        // Too short, too long for a small window, incompressible: sent as they are.
        assert!(compress(b"short", 15).is_none());
        assert!(compress(text.as_bytes(), 9).is_none());
        assert!(compress(&text.as_bytes()[..500], 9).is_some());
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        assert!(compress(&noise, 15).is_none());
        assert_eq!(
            inflate(&[0xff, 0xff, 0xff], 1000),
            Err(InflateError::Corrupt)
        );
        // An empty compressed message (RFC 7692 §7.2.3.6 allows 0x00) inflates to nothing.
        assert_eq!(inflate(&[0x00], 10).unwrap(), b"");
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 10 << 20];
        let compressed = compress(&zeros, 15).unwrap();
        assert!(compressed.len() < 100_000, "{}", compressed.len());
        assert_eq!(inflate(&compressed, 1 << 20), Err(InflateError::TooBig));
        assert_eq!(inflate(&compressed, 10 << 20).unwrap().len(), 10 << 20);
    }

    #[test]
    fn rfc_7692_example() {
        // §7.2.3.1: "Hello" compressed.
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inflate(&hello, 100).unwrap(), b"Hello");
    }
}
