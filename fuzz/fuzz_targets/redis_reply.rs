//! The Redis client's reply path (framing, then redis-protocol's decoder) on arbitrary bytes, in
//! RESP2 and RESP3: it never panics or overflows the stack, frames stay inside the buffer and the
//! limit, and a command the client writes is one whole frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use workerman::fuzzing::{redis_command, redis_replies};

fuzz_target!(|data: &[u8]| {
    let max = 16 + data.first().copied().unwrap_or(0) as usize * 1024;
    for resp3 in [false, true] {
        redis_replies(data, max, resp3);
        redis_replies(data, 512 << 20, resp3);
    }
    // The bytes as the arguments of a command: the client's encoding frames as one reply.
    let arguments: Vec<&[u8]> = data.split(|&byte| byte == b' ').collect();
    let command = redis_command(&arguments);
    assert_eq!(redis_replies(&command, usize::MAX / 4, false), (1, None));
});
