//! The figures of every slot as a Prometheus text exposition (format 0.0.4), written by the
//! `prometheus-client` crate: totals over all worker processes under `workerman_*`, and each
//! process's own under `workerman_process_*` with the labels `worker`, `id` and `pid`.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::slots::{CountersSnapshot, PROTOCOLS, Region, SlotSnapshot, TURN_BUCKETS};

/// The `Content-Type` of [`render`]'s text.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Who runs slot `n`: the worker's name and the process's id among its `count`.
#[derive(Debug, Clone)]
pub(crate) struct SlotLabel {
    pub(crate) worker: String,
    pub(crate) id: usize,
}

/// One scrape: a copy of each slot that a process has taken (the others are left out).
#[derive(Debug)]
struct Scrape {
    processes: Vec<(SlotLabel, SlotSnapshot)>,
}

type Labels = Vec<(&'static str, String)>;

/// The text for one scrape of `region`, whose slot `n` is run by `labels[n]`.
pub(crate) fn render(region: &Region, labels: &[SlotLabel]) -> String {
    let processes = (0..region.len())
        .filter_map(|index| Some((labels.get(index)?.clone(), region.slot(index)?.snapshot())))
        .filter(|(_, snapshot)| snapshot.pid != 0)
        .collect();
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape { processes }));
    let mut text = String::new();
    if let Err(error) = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
        log::error!("encoding the metrics: {error}");
    }
    text
}

impl Scrape {
    fn process_labels(label: &SlotLabel, snapshot: &SlotSnapshot) -> Labels {
        vec![
            ("worker", label.worker.clone()),
            ("id", label.id.to_string()),
            ("pid", snapshot.pid.to_string()),
        ]
    }

    /// Counters over all processes, the retired ones included.
    fn totals(&self) -> CountersSnapshot {
        let mut total = CountersSnapshot::default();
        for (_, snapshot) in &self.processes {
            total.add(&snapshot.counters);
            total.add(&snapshot.retired);
        }
        total
    }

    /// A gauge as a total (unless `summed` is false) and per process.
    fn gauge(
        &self,
        encoder: &mut DescriptorEncoder,
        (name, summed): (&str, bool),
        help: &str,
        value: impl Fn(&SlotSnapshot) -> u64,
    ) -> fmt::Result {
        if summed {
            let total: u64 = self.processes.iter().map(|(_, s)| value(s)).sum();
            encoder
                .encode_descriptor(&format!("workerman_{name}"), help, None, MetricType::Gauge)?
                .encode_gauge(&total)?;
        }
        let process_name = format!("workerman_process_{name}");
        let mut metric = encoder.encode_descriptor(&process_name, help, None, MetricType::Gauge)?;
        for (label, snapshot) in &self.processes {
            metric
                .encode_family(&Self::process_labels(label, snapshot))?
                .encode_gauge(&value(snapshot))?;
        }
        Ok(())
    }

    /// A counter as a total (retired processes included) and per live process.
    fn counter(
        &self,
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        value: impl Fn(&CountersSnapshot) -> u64,
    ) -> fmt::Result {
        let total = value(&self.totals());
        encoder
            .encode_descriptor(
                &format!("workerman_{name}"),
                help,
                None,
                MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, _, u64>(&total, None)?;
        let process_name = format!("workerman_process_{name}");
        let mut metric =
            encoder.encode_descriptor(&process_name, help, None, MetricType::Counter)?;
        for (label, snapshot) in &self.processes {
            metric
                .encode_family(&Self::process_labels(label, snapshot))?
                .encode_counter::<NoLabelSet, _, u64>(&value(&snapshot.counters), None)?;
        }
        Ok(())
    }

    fn histogram(metric: &mut MetricEncoder, counters: &CountersSnapshot) -> fmt::Result {
        let buckets: Vec<(f64, u64)> = TURN_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(counters.turn_buckets)
            .collect();
        metric.encode_histogram::<NoLabelSet>(
            counters.turn_nanos as f64 / 1e9,
            counters.turns(),
            &buckets,
            None,
        )
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let help = "Worker processes running (each has the workerman_process_* series).";
        encoder
            .encode_descriptor("workerman_processes", help, None, MetricType::Gauge)?
            .encode_gauge(&(self.processes.len() as u64))?;

        let help = "Connections open now, by protocol (raw bytes: by transport).";
        let mut metric =
            encoder.encode_descriptor("workerman_connections", help, None, MetricType::Gauge)?;
        for (index, protocol) in PROTOCOLS.iter().enumerate() {
            let total: u64 = self
                .processes
                .iter()
                .map(|(_, s)| s.connections[index])
                .sum();
            metric
                .encode_family(&vec![("protocol", (*protocol).to_owned())])?
                .encode_gauge(&total)?;
        }
        let mut metric = encoder.encode_descriptor(
            "workerman_process_connections",
            help,
            None,
            MetricType::Gauge,
        )?;
        for (label, snapshot) in &self.processes {
            for (index, protocol) in PROTOCOLS.iter().enumerate() {
                let mut labels = Self::process_labels(label, snapshot);
                labels.push(("protocol", (*protocol).to_owned()));
                metric
                    .encode_family(&labels)?
                    .encode_gauge(&snapshot.connections[index])?;
            }
        }

        self.counter(
            &mut encoder,
            "requests",
            "Messages delivered to on_message (HTTP requests, lines, frames, datagrams).",
            |c| c.requests,
        )?;
        self.counter(
            &mut encoder,
            "send_failures",
            "Sends refused or failed: the peer was gone or the send buffer full.",
            |c| c.send_fail,
        )?;
        self.counter(
            &mut encoder,
            "panics",
            "Panics caught in callbacks and timers.",
            |c| c.panics,
        )?;
        self.counter(
            &mut encoder,
            "read_bytes",
            "Bytes read from sockets.",
            |c| c.bytes_read,
        )?;
        self.counter(
            &mut encoder,
            "written_bytes",
            "Bytes written to sockets.",
            |c| c.bytes_written,
        )?;
        self.gauge(&mut encoder, ("timers", true), "Timers pending.", |s| {
            s.timers
        })?;
        self.gauge(
            &mut encoder,
            ("send_buffer_bytes", true),
            "Bytes accepted by send and not yet taken by the kernel.",
            |s| s.send_buffer_bytes,
        )?;
        self.gauge(
            &mut encoder,
            ("sse_streams", true),
            "HTTP responses that are open Server-Sent Events streams.",
            |s| s.sse_streams,
        )?;
        self.gauge(
            &mut encoder,
            ("start_time_seconds", false),
            "When the process started, in seconds since the Unix epoch.",
            |s| s.started_at,
        )?;

        let help = "Time per reactor turn: handling events and timers, the wait excluded.";
        Self::histogram(
            &mut encoder.encode_descriptor(
                "workerman_reactor_turn_seconds",
                help,
                None,
                MetricType::Histogram,
            )?,
            &self.totals(),
        )?;
        let mut metric = encoder.encode_descriptor(
            "workerman_process_reactor_turn_seconds",
            help,
            None,
            MetricType::Histogram,
        )?;
        for (label, snapshot) in &self.processes {
            Self::histogram(
                &mut metric.encode_family(&Self::process_labels(label, snapshot))?,
                &snapshot.counters,
            )?;
        }
        Ok(())
    }
}
