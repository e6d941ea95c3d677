//! `workerman::channel` across the processes of one `run_all` server with no broker (the
//! embedded relay): `examples/channel_demo` with `COUNT=4`.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use support::channel_node::{Node, one_order};
use support::process::{alive, kill_hard};

#[test]
fn count_4_every_publish_reaches_every_process_once_in_one_order_and_history_works() {
    let node = Arc::new(Node::start("channel-relay-order", 4, &[]));
    // Four clients publish at once; the shared listener hands their connections to any
    // process.
    let publishers: Vec<_> = (0..4)
        .map(|client| {
            let node = node.clone();
            std::thread::spawn(move || {
                (0..25)
                    .map(|n| node.publish(&format!("c{client}-{n}")).expect("published"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let published: Vec<(String, i32)> = publishers
        .into_iter()
        .flat_map(|thread| thread.join().unwrap())
        .collect();
    let publisher_pids: HashSet<i32> = published.iter().map(|(_, pid)| *pid).collect();
    assert!(
        publisher_pids.len() >= 2,
        "publishes came from one process only"
    );
    node.wait_for(Duration::from_secs(10), "100 events everywhere", || {
        node.seen().values().all(|lines| lines.len() >= 100)
    });
    let order = one_order(&node.seen(), 100);
    let ids: HashSet<&str> = order
        .iter()
        .map(|line| line.split(' ').next().unwrap())
        .collect();
    for (id, _) in &published {
        assert!(
            ids.contains(id.as_str()),
            "{id} was acknowledged but not delivered"
        );
    }
    // The newest kept id, asked of any process, is the last event of the one order.
    let newest = order[99].split(' ').next().unwrap();
    for _ in 0..4 {
        assert_eq!(node.last_id(), newest);
    }
    // History from any process: what came after the 60th event, in the same order.
    for _ in 0..4 {
        let after = order[59].split(' ').next().unwrap();
        assert_eq!(node.history(after, 1000), order[60..].to_vec());
        assert_eq!(node.history(after, 5), order[60..65].to_vec());
    }
}

#[test]
fn a_killed_relay_is_restarted_workers_reattach_and_old_ids_are_a_gap() {
    let node = Node::start("channel-relay-kill", 4, &[]);
    let (before, _) = node.publish("before").expect("published");
    node.wait_for(
        Duration::from_secs(10),
        "the first event everywhere",
        || node.seen().values().all(|lines| lines.len() == 1),
    );
    assert_eq!(node.history("1-1", 10), ["gap"], "an id of no epoch");
    // 0-0 is the start: every kept event.
    assert_eq!(node.history("0-0", 10), [format!("{before} before")]);
    let workers: HashSet<i32> = node.ready_pids().into_iter().collect();
    let relay: Vec<i32> = node
        .dir
        .processes()
        .into_iter()
        .filter(|pid| *pid != node.master() && !workers.contains(pid))
        .collect();
    assert_eq!(
        relay.len(),
        1,
        "one relay process besides the master and workers: {relay:?}"
    );
    kill_hard(relay[0]);
    node.wait_for(Duration::from_secs(5), "the relay gone", || {
        !alive(relay[0])
    });
    // Publishes fail (never vanish) until the relay is back; then every process gets them.
    let mut attempt = 0;
    node.wait_for(
        Duration::from_secs(20),
        "delivery to every process again",
        || {
            attempt += 1;
            let _ = node.publish(&format!("after-{attempt}"));
            node.seen()
                .values()
                .all(|lines| lines.iter().any(|line| line.contains(" after-")))
        },
    );
    // Each process was told of the outage and of the recovery (to replay what it missed).
    node.wait_for(
        Duration::from_secs(5),
        "on_connection_state false then true",
        || node.every_process_saw_down_then_up(),
    );
    let restarted: Vec<i32> = node
        .dir
        .processes()
        .into_iter()
        .filter(|pid| *pid != node.master() && !workers.contains(pid))
        .collect();
    assert_eq!(restarted.len(), 1, "a new relay: {restarted:?}");
    assert_ne!(restarted[0], relay[0]);
    // The workers are the same processes: they re-attached.
    assert_eq!(
        node.ready_pids().into_iter().collect::<HashSet<_>>(),
        workers
    );
    let (last, _) = node.publish("last").expect("published after the restart");
    node.wait_for(Duration::from_secs(10), "the last event everywhere", || {
        node.seen()
            .values()
            .all(|lines| lines.last().is_some_and(|line| line.ends_with(" last")))
    });
    // An id from the relay's previous life is unknown now; a new one is not.
    assert_eq!(node.history(&before, 10), ["gap"]);
    assert_eq!(node.history(&last, 10), Vec::<String>::new());
    let epoch = |id: &str| id.split('-').next().unwrap().parse::<u64>().unwrap();
    assert!(epoch(&last) > epoch(&before), "{before} then {last}");
}

#[test]
fn the_relay_closes_a_link_that_sends_garbage_and_carries_on() {
    use std::io::{Read, Write};
    let node = Node::start("channel-relay-garbage", 2, &[]);
    let socket = node.dir.join("demo.channel.sock");
    for garbage in [
        b"\x00\x00\x00\x09Zjunk".as_slice(),
        b"\xff\xff\xff\xff".as_slice(),
        b"\x00\x00\x00\x06P\x01".as_slice(),
    ] {
        let mut stream =
            std::os::unix::net::UnixStream::connect(&socket).expect("the relay's socket");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(garbage).unwrap();
        let mut buffer = [0u8; 64];
        assert_eq!(stream.read(&mut buffer).expect("closed, not timed out"), 0);
    }
    node.publish("still fine").expect("published");
    node.wait_for(Duration::from_secs(10), "the event everywhere", || {
        node.seen().values().all(|lines| lines.len() == 1)
    });
}
