//! `workerman::channel` over Redis: two `examples/channel_demo` nodes (`COUNT=2` each) sharing
//! one real `redis-server`.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::channel_node::{Node, one_order};
use support::redis::RedisServer;

#[test]
fn two_nodes_see_every_publish_once_in_the_streams_order_and_replay_on_either() {
    let redis = RedisServer::start();
    let url = redis.url();
    let nodes = [
        Arc::new(Node::start("channel-redis-a", 2, &[("REDIS_URL", &url)])),
        Arc::new(Node::start("channel-redis-b", 2, &[("REDIS_URL", &url)])),
    ];
    // Two clients per node publish at once: 100 events from both nodes, interleaved.
    let publishers: Vec<_> = (0..4)
        .map(|client| {
            let node = nodes[client % 2].clone();
            std::thread::spawn(move || {
                for n in 0..25 {
                    node.publish(&format!("c{client}-{n}")).expect("published");
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.join().unwrap();
    }
    for node in &nodes {
        node.wait_for(
            Duration::from_secs(10),
            "100 events in each process",
            || node.seen().values().all(|lines| lines.len() >= 100),
        );
    }
    let mut everywhere = nodes[0].seen();
    everywhere.extend(nodes[1].seen());
    assert_eq!(everywhere.len(), 4);
    let order = one_order(&everywhere, 100);
    // The live order is the stream's order.
    let stream = redis.cli(&["XRANGE", "workerman:channel:demo", "-", "+"]);
    let stream_ids: Vec<&str> = stream
        .lines()
        .filter(|line| line.contains('-') && line.chars().all(|c| c.is_ascii_digit() || c == '-'))
        .collect();
    let live_ids: Vec<&str> = order
        .iter()
        .map(|line| line.split(' ').next().unwrap())
        .collect();
    assert_eq!(live_ids, stream_ids);
    // The newest kept id, from either node, is the stream's last entry.
    for node in &nodes {
        assert_eq!(node.last_id(), live_ids[99]);
    }
    // A subscriber that read up to the 40th event on node A replays the rest from node B.
    let after = live_ids[39];
    assert_eq!(nodes[1].history(after, 1000), order[40..].to_vec());
    assert_eq!(nodes[0].history(after, 7), order[40..47].to_vec());
}

#[test]
fn a_trimmed_id_is_a_gap_and_a_recent_one_replays() {
    let redis = RedisServer::start();
    let url = redis.url();
    let node = Node::start(
        "channel-redis-trim",
        1,
        &[("REDIS_URL", &url), ("HISTORY_SIZE", "10")],
    );
    let ids: Vec<String> = (0..300)
        .map(|n| node.publish(&format!("m{n}")).expect("published").0)
        .collect();
    // MAXLEN ~ 10 trims whole stream nodes: the oldest entries are gone, the newest kept.
    assert_eq!(node.history(&ids[0], 10), ["gap"]);
    let recent = node.history(&ids[294], 10);
    assert_eq!(
        recent,
        (295..300)
            .map(|n| format!("{} m{n}", ids[n]))
            .collect::<Vec<_>>()
    );
    // An id from the future, or one that is not an id, is not replayable either.
    assert_eq!(node.history("99999999999999-0", 10), ["gap"]);
    let (a, _) = ids[299].split_once('-').unwrap();
    assert_eq!(
        node.history(&format!("{a}-999999"), 10),
        Vec::<String>::new()
    );
}

#[test]
fn redis_killed_publishes_fail_promptly_and_subscribers_resume_after_its_restart() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let node = Node::start("channel-redis-kill", 2, &[("REDIS_URL", &url)]);
    node.publish("before").expect("published");
    node.wait_for(
        Duration::from_secs(10),
        "the first event everywhere",
        || node.seen().values().all(|lines| lines.len() == 1),
    );
    redis.kill9();
    let started = Instant::now();
    let failure = node
        .publish("while down")
        .expect_err("a publish with Redis down fails");
    assert_eq!(failure.0, 503, "{failure:?}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "the failure took {:?}",
        started.elapsed()
    );
    redis.restart();
    // Subscribers re-subscribe on reconnect: a publish made once Redis is back reaches all.
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
    let seen = node.seen();
    for lines in seen.values() {
        assert!(
            !lines.iter().any(|line| line.ends_with(" while down")),
            "{lines:?}"
        );
    }
}
