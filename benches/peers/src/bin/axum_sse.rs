//! axum's Server-Sent Events with the seed's pattern: every stream gets its own 2 s interval
//! (`event: message`, `id: 1`, `data: hello`), on a current-thread tokio runtime.
//!
//! ```text
//! axum_sse [--port 18191] [--interval 2] [--count 1]      (env PORT, INTERVAL, COUNT)
//! ```

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::response::sse::{Event, Sse};
use axum::routing::get;
use futures_util::stream::{self, Stream};
use workerman_bench_peers::{arg, listen, raise_nofile, run_processes};

fn serve(port: u16, interval: Duration) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let app = Router::new().fallback(get(move || events(interval)));
        let listener = tokio::net::TcpListener::from_std(listen(port)).expect("listener");
        axum::serve(listener, app).await.expect("serve");
    });
}

async fn events(interval: Duration) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // The first event one interval after connecting, as the seed's timer does.
    let ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    Sse::new(stream::unfold(ticker, |mut ticker| async move {
        ticker.tick().await;
        let event = Event::default().event("message").id("1").data("hello");
        Some((Ok(event), ticker))
    }))
}

fn main() {
    raise_nofile();
    let port: u16 = arg("port", "PORT", "18191").parse().expect("port");
    let interval: f64 = arg("interval", "INTERVAL", "2").parse().expect("interval");
    let count: usize = arg("count", "COUNT", "1").parse().expect("count");
    eprintln!(
        "axum_sse: listening on 0.0.0.0:{port}, an event every {interval} s per stream \
         ({count} process(es))"
    );
    run_processes(count, || serve(port, Duration::from_secs_f64(interval)));
}
