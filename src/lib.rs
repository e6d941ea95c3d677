//! # workerman
//!
//! Workerman, the PHP event-loop framework, rebuilt in Rust.
#![warn(missing_docs)]

pub mod connection;
pub mod protocols;
mod reactor;
mod timer;
mod worker;

pub use connection::{SendResult, TcpConnection};
pub use reactor::Statistics;
pub use timer::{Timer, TimerId};
pub use worker::{RunningWorker, Worker};
