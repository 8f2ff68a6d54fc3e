//! The discrete-event loop: clients pacing with their controllers, one shared server.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use super::rng::Rng;
use super::schedule::{Demand, Schedule};
use super::server::{Feedback, Server, ServerKind, Verdict};
use crate::controller::Controller;
use crate::Outcome;

const NS: f64 = 1e9;
/// The server's limit is re-read this often (ramps move in steps this small).
const TICK_NS: u64 = 100_000_000;

/// Everything one simulated run needs, apart from the controllers.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// The server's algorithm.
    pub server: ServerKind,
    /// Which headers the server sends.
    pub feedback: Feedback,
    /// Clients pause until Retry-After (as the layer's shared limiter does).
    pub honour_retry_after: bool,
    /// Clients sharing the server's one limit, each with its own controller.
    pub clients: usize,
    /// The limit and demand over time.
    pub schedule: Schedule,
    /// Mean round-trip time.
    pub rtt: Duration,
    /// Relative jitter of the round trip: uniform in `rtt · (1 ± jitter)`.
    pub jitter: f64,
    /// Seed of every random draw.
    pub seed: u64,
}

/// Raw counts of a run, in 1-second bins from the start.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// Accepted requests per client per second (by the server's decision time).
    pub accepted: Vec<Vec<u64>>,
    /// Refused requests (all clients) per second.
    pub refused: Vec<u64>,
    /// Integral of the server's enforced limit over each second.
    pub limit: Vec<f64>,
    /// Demand arrivals per second (Poisson demand only).
    pub arrivals: Vec<u64>,
    /// `(second, wait)` of every accepted request: time from the request being ready
    /// (its arrival, or its first attempt under a backlog) to the accepted attempt.
    pub waits: Vec<(u32, f32)>,
    /// Requests rejected locally by a client-side throttle.
    pub local_rejects: u64,
    /// The first client's controller rate at the end of each second (0 when unset).
    pub rate: Vec<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Tick,
    Arrival {
        client: usize,
    },
    Send {
        client: usize,
        gen: u64,
    },
    Reach {
        client: usize,
        ready: u64,
        sent: u64,
        rtt: u64,
    },
    Respond {
        client: usize,
        ready: u64,
        sent: u64,
        slot: usize,
    },
    LocalDone {
        client: usize,
        ready: u64,
    },
}

struct Client {
    ctrl: Box<dyn Controller>,
    tat: u64,
    queue: VecDeque<u64>,
    in_flight: usize,
    hold_until: u64,
    gen: u64,
}

struct Sim<'a> {
    cfg: &'a SimConfig,
    now: u64,
    seq: u64,
    heap: BinaryHeap<Reverse<(u64, u64, Event)>>,
    clients: Vec<Client>,
    server: Server,
    rng: Rng,
    /// One stream per client for its demand's arrivals, apart from `rng`: the same
    /// seed then gives every controller the same arrivals, whatever it sends (drawn
    /// from `rng`, they moved with the jitter of the controller's own requests).
    arrivals: Vec<Rng>,
    verdicts: Vec<Option<Verdict>>,
    free: Vec<usize>,
    trace: Trace,
    worker_cap: usize,
    backlog: bool,
}

fn dur(ns: u64) -> Duration {
    Duration::from_nanos(ns)
}

impl Sim<'_> {
    fn push(&mut self, at: u64, e: Event) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, e)));
    }

    fn bin(&self, t: u64) -> usize {
        ((t / 1_000_000_000) as usize).min(self.trace.refused.len().saturating_sub(1))
    }

    fn wake(&mut self, c: usize) {
        self.clients[c].gen += 1;
        let gen = self.clients[c].gen;
        self.push(self.now, Event::Send { client: c, gen });
    }

    fn sample_rtt(&mut self) -> u64 {
        let base = self.cfg.rtt.as_nanos() as f64;
        let j = self.cfg.jitter.clamp(0.0, 0.99);
        (base * (1.0 + j * (2.0 * self.rng.uniform() - 1.0))).max(1.0) as u64
    }

    fn send(&mut self, c: usize) {
        loop {
            let now = self.now;
            let cl = &self.clients[c];
            if now < cl.hold_until {
                let (at, gen) = (cl.hold_until, cl.gen);
                self.push(at, Event::Send { client: c, gen });
                return;
            }
            let cap = cl
                .ctrl
                .concurrency()
                .unwrap_or(usize::MAX)
                .min(self.worker_cap);
            if cl.in_flight >= cap || (cl.queue.is_empty() && !self.backlog) {
                return;
            }
            let cl = &mut self.clients[c];
            if let Some(r) = cl.ctrl.rate() {
                let t = ((NS / r.max(1e-9)).min(1e15) as u64).max(1);
                let tau = t.saturating_mul(cl.ctrl.burst().max(1) - 1);
                let earliest = cl.tat.saturating_sub(tau);
                if now < earliest {
                    let gen = cl.gen;
                    self.push(earliest, Event::Send { client: c, gen });
                    return;
                }
                cl.tat = cl.tat.max(now) + t;
            }
            let ready = cl.queue.pop_front().unwrap_or(now);
            let u = self.rng.uniform();
            let cl = &mut self.clients[c];
            cl.in_flight += 1;
            if cl.ctrl.admit(dur(now), u) {
                let rtt = self.sample_rtt();
                self.push(
                    now + rtt / 2,
                    Event::Reach {
                        client: c,
                        ready,
                        sent: now,
                        rtt,
                    },
                );
            } else {
                self.trace.local_rejects += 1;
                let back = self.cfg.rtt.as_nanos() as u64;
                self.push(now + back, Event::LocalDone { client: c, ready });
            }
        }
    }

    fn handle(&mut self, e: Event) {
        match e {
            Event::Tick => {
                let t = self.now as f64 / NS;
                let l = self.cfg.schedule.limit_at(t);
                self.server.set_limit(t, l);
                let b = self.bin(self.now);
                self.trace.limit[b] += self.server.effective_limit() * (TICK_NS as f64 / NS);
                self.trace.rate[b] = self.clients[0].ctrl.rate().unwrap_or(0.0);
                self.push(self.now + TICK_NS, Event::Tick);
            }
            Event::Arrival { client } => {
                self.clients[client].queue.push_back(self.now);
                let b = self.bin(self.now);
                self.trace.arrivals[b] += 1;
                if let Demand::Poisson(total) = self.cfg.schedule.demand {
                    let per = total / self.clients.len() as f64;
                    let gap = (self.arrivals[client].exponential(1.0 / per.max(1e-9)) * NS)
                        .min(1e15) as u64;
                    self.push(self.now + gap.max(1), Event::Arrival { client });
                }
                self.wake(client);
            }
            Event::Send { client, gen } => {
                if self.clients[client].gen == gen {
                    self.send(client);
                }
            }
            Event::Reach {
                client,
                ready,
                sent,
                rtt,
            } => {
                let v = self.server.decide(self.now as f64 / NS);
                let b = self.bin(self.now);
                if v.accepted {
                    self.trace.accepted[client][b] += 1;
                    self.trace
                        .waits
                        .push((b as u32, ((sent - ready) as f64 / NS) as f32));
                } else {
                    self.trace.refused[b] += 1;
                }
                let slot = match self.free.pop() {
                    Some(s) => {
                        self.verdicts[s] = Some(v);
                        s
                    }
                    None => {
                        self.verdicts.push(Some(v));
                        self.verdicts.len() - 1
                    }
                };
                self.push(
                    sent + rtt,
                    Event::Respond {
                        client,
                        ready,
                        sent,
                        slot,
                    },
                );
            }
            Event::Respond {
                client,
                ready,
                sent,
                slot,
            } => {
                let v = self.verdicts[slot].take().expect("verdict stored at reach");
                self.free.push(slot);
                let latency = dur(self.now - sent);
                let outcome = if v.accepted {
                    Outcome::Success {
                        latency,
                        hints: v.hints,
                    }
                } else {
                    // As the layer: a controller is told the hold it is held for, none
                    // when holds are ignored (`Slot::observe`).
                    Outcome::Throttled {
                        latency,
                        retry_after: v.retry_after.filter(|_| self.cfg.honour_retry_after),
                        hints: v.hints,
                    }
                };
                let now = self.now;
                let honour = self.cfg.honour_retry_after;
                let cl = &mut self.clients[client];
                cl.in_flight -= 1;
                cl.ctrl.observe(dur(now), &outcome);
                if !v.accepted {
                    cl.queue.push_front(ready);
                    if let (true, Some(ra)) = (honour, v.retry_after) {
                        cl.hold_until = cl.hold_until.max(now + ra.as_nanos() as u64);
                    }
                }
                self.wake(client);
            }
            Event::LocalDone { client, ready } => {
                let cl = &mut self.clients[client];
                cl.in_flight -= 1;
                cl.queue.push_front(ready);
                self.wake(client);
            }
        }
    }
}

/// Runs one simulation; `make` builds each client's controller.
pub fn simulate(cfg: &SimConfig, make: &dyn Fn() -> Box<dyn Controller>) -> Trace {
    let secs = cfg.schedule.duration().as_secs_f64().ceil().max(1.0) as usize;
    let n = cfg.clients.max(1);
    let max_rtt = cfg.rtt.as_secs_f64() * (1.0 + cfg.jitter.clamp(0.0, 0.99));
    // A bulk job's worker pool: enough to send at four times the highest limit.
    let worker_cap = (4.0 * cfg.schedule.max_limit() * max_rtt / n as f64).ceil() as usize + 8;
    let l0 = cfg.schedule.limit_at(0.0);
    let mut sim = Sim {
        cfg,
        now: 0,
        seq: 0,
        heap: BinaryHeap::new(),
        clients: (0..n)
            .map(|_| Client {
                ctrl: make(),
                tat: 0,
                queue: VecDeque::new(),
                in_flight: 0,
                hold_until: 0,
                gen: 0,
            })
            .collect(),
        server: Server::new(cfg.server, cfg.feedback, l0),
        rng: Rng::new(cfg.seed),
        arrivals: (0..n as u64)
            .map(|c| Rng::new(cfg.seed ^ (c + 1).wrapping_mul(0xD1B5_4A32_D192_ED03)))
            .collect(),
        verdicts: Vec::new(),
        free: Vec::new(),
        trace: Trace {
            accepted: vec![vec![0; secs]; n],
            refused: vec![0; secs],
            limit: vec![0.0; secs],
            arrivals: vec![0; secs],
            waits: Vec::new(),
            local_rejects: 0,
            rate: vec![0.0; secs],
        },
        worker_cap,
        backlog: cfg.schedule.demand == Demand::Backlog,
    };
    sim.push(0, Event::Tick);
    for c in 0..n {
        // Clients start a little apart, as real processes do.
        let offset = (sim.rng.uniform() * 0.05 * NS) as u64;
        match cfg.schedule.demand {
            Demand::Backlog => sim.push(offset, Event::Send { client: c, gen: 0 }),
            Demand::Poisson(_) => sim.push(offset, Event::Arrival { client: c }),
        }
    }
    let end = (secs as u64) * 1_000_000_000;
    while let Some(Reverse((at, _, e))) = sim.heap.pop() {
        if at >= end {
            break;
        }
        sim.now = at;
        sim.handle(e);
    }
    sim.trace
}
