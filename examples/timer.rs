//! Timers: a repeating timer that deletes itself, a one-shot timer, and a per-connection timer
//! that stops when its connection closes.
//!
//! ```text
//! cargo run --example timer
//! nc 127.0.0.1 8083     # receives a countdown, one line a second
//! ```

use std::cell::Cell;
use std::rc::Rc;

use workerman::{TcpConnection, Timer, Worker};

fn main() {
    let mut worker = Worker::new("text://0.0.0.0:8083");
    worker.on_worker_start(|_worker| {
        let ticks = Rc::new(Cell::new(0));
        Timer::add(1.0, move |timer_id| {
            ticks.set(ticks.get() + 1);
            println!("tick {} of timer {timer_id}", ticks.get());
            if ticks.get() == 5 {
                println!("timer {timer_id} deletes itself");
                Timer::del(timer_id);
            }
        });
        Timer::once(2.5, || println!("a one-shot timer, 2.5 s after start"));
    });
    worker.on_connect(|connection: &TcpConnection| {
        let connection = connection.clone();
        let remaining = Cell::new(10);
        Timer::add(1.0, move |timer_id| {
            if connection.status() != TcpConnection::STATUS_ESTABLISHED || remaining.get() == 0 {
                Timer::del(timer_id);
                connection.close_with("liftoff");
                return;
            }
            connection.send(remaining.get().to_string());
            remaining.set(remaining.get() - 1);
        });
    });
    Worker::run_all();
}
