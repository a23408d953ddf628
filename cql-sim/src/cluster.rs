//! A simulated cluster: clients send statements through
//! `schemas::cql::CqlExecutor`; nothing is applied until the simulation
//! calls [`Cluster::step`], which picks one request in flight at random
//! (seeded) and delivers it, with the faults a real network and driver
//! produce:
//!
//! - **delayed and reordered**: requests in flight are delivered in a random
//!   order, concurrent ones from one client included;
//! - **failed**: not applied, the client gets an error;
//! - **timed out**: the client gets an error while the write is applied now
//!   or later (it stays in flight and lands after the client moved on) or
//!   never;
//! - **duplicated**: an idempotent statement the driver sent again lands a
//!   second time, later;
//! - **crashed clients**: [`Cluster::crash`] stops a client; what it had on
//!   the wire may still land.
//!
//! A statement the server would refuse (unknown column, wrong type, no
//! partition key) is an error for the client and is recorded in
//! [`Cluster::refusals`]: a simulation asserts there are none.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use schemas::cql::{Bound, CqlExecutor, CqlRow, ExecuteError, Execution};

use crate::parse::{Plan, TableDef, migration_tables, plan};
use crate::tables::Tables;

/// How often each fault happens, per delivered request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Not applied; the client gets an error.
    pub fail: f64,
    /// A write the client sees time out, applied now.
    pub timeout_applied: f64,
    /// A write the client sees time out, still in flight: it lands later.
    pub timeout_late: f64,
    /// Of the late writes, how many never land.
    pub lost: f64,
    /// An idempotent statement applied now and once more later.
    pub duplicate: f64,
    /// Of the steps, how many deliver a late write rather than a request
    /// whose client waits.
    pub late_share: f64,
}

impl Faults {
    /// A network that delivers everything once, in a random order.
    pub const NONE: Self = Self {
        fail: 0.0,
        timeout_applied: 0.0,
        timeout_late: 0.0,
        lost: 0.0,
        duplicate: 0.0,
        late_share: 0.0,
    };
}

/// A client's handle: one processor's connection to the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId(usize);

/// A request whose client waits for it.
#[derive(Debug)]
struct InFlight {
    id: u64,
    client: ClientId,
    bound: Bound,
    waker: Option<Waker>,
}

/// The cluster's state, behind one lock.
#[derive(Debug)]
struct State {
    tables: Tables,
    /// The coordinator's clock: the write timestamp of a plain write.
    clock: i64,
    rng: StdRng,
    faults: Faults,
    next_request: u64,
    clients: usize,
    crashed: Vec<ClientId>,
    waiting: Vec<InFlight>,
    /// Writes whose client no longer waits for them, still to land.
    late: Vec<Bound>,
    answered: HashMap<u64, Result<Vec<CqlRow>, ExecuteError>>,
    refusals: Vec<String>,
    delivered: u64,
    /// Treat `USING TIMESTAMP` as absent (shows what a protocol without
    /// it loses).
    ignore_write_timestamps: bool,
    /// Apply each request when it is sent, with no faults: a cluster that
    /// real services use from their own tasks (no schedule steps it).
    immediate: bool,
}

/// A simulated cluster. Cheap to clone; clones share the tables.
#[derive(Debug, Clone)]
pub struct Cluster {
    state: Arc<Mutex<State>>,
}

impl Cluster {
    /// A cluster whose tables are the migrations' (empty), with the
    /// schedule drawn from `seed`.
    ///
    /// # Panics
    ///
    /// If a migration does not parse: the simulation cannot run without it.
    pub fn new(seed: u64, faults: Faults) -> Self {
        static DEFS: OnceLock<Vec<TableDef>> = OnceLock::new();
        let defs = DEFS
            .get_or_init(|| {
                migration_tables(schemas::cql::MIGRATIONS)
                    .unwrap_or_else(|err| panic!("the migrations do not parse: {err}"))
            })
            .clone();
        Self {
            state: Arc::new(Mutex::new(State {
                tables: Tables::new(defs),
                clock: 1_000_000,
                rng: StdRng::seed_from_u64(seed),
                faults,
                next_request: 0,
                clients: 0,
                crashed: Vec::new(),
                waiting: Vec::new(),
                late: Vec::new(),
                answered: HashMap::new(),
                refusals: Vec::new(),
                delivered: 0,
                ignore_write_timestamps: false,
                immediate: false,
            })),
        }
    }

    /// A cluster that applies every request as it is sent, without faults,
    /// for services running on their own (the shared query scenarios).
    pub fn immediate() -> Self {
        let cluster = Self::new(0, Faults::NONE);
        cluster.lock().immediate = true;
        cluster
    }

    /// A client as a store location both services can open.
    pub fn location(&self) -> schemas::store::StoreLocation {
        schemas::store::StoreLocation::Cql(schemas::store::SharedExecutor(self.client().1))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a test failure already.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new client (a processor's session).
    pub fn client(&self) -> (ClientId, Arc<dyn CqlExecutor>) {
        let mut state = self.lock();
        let id = ClientId(state.clients);
        state.clients += 1;
        (
            id,
            Arc::new(Client {
                cluster: self.clone(),
                id,
            }),
        )
    }

    /// Whether anything is in flight.
    pub fn busy(&self) -> bool {
        let state = self.lock();
        !state.waiting.is_empty() || !state.late.is_empty()
    }

    /// How many requests of `client` wait for an answer.
    pub fn waiting_for(&self, client: ClientId) -> usize {
        self.lock()
            .waiting
            .iter()
            .filter(|r| r.client == client)
            .count()
    }

    /// Delivers one request in flight (a waited-for one or a late write),
    /// chosen by the schedule. Returns false when nothing is in flight.
    pub fn step(&self) -> bool {
        let mut state = self.lock();
        let late_share = state.faults.late_share;
        let take_late = !state.late.is_empty()
            && (state.waiting.is_empty() || state.rng.random_bool(late_share));
        if take_late {
            let len = state.late.len();
            let at = state.rng.random_range(0..len);
            let bound = state.late.swap_remove(at);
            let _ = state.apply(&bound);
            return true;
        }
        if state.waiting.is_empty() {
            return false;
        }
        let len = state.waiting.len();
        let at = state.rng.random_range(0..len);
        let request = state.waiting.remove(at);
        let answer = state.deliver(&request.bound);
        state.answered.insert(request.id, answer);
        if let Some(waker) = request.waker {
            waker.wake();
        }
        true
    }

    /// Stops a client: it sends nothing more, and each request it had in
    /// flight either lands later or never.
    pub fn crash(&self, client: ClientId) {
        let mut state = self.lock();
        state.crashed.push(client);
        let (mine, others): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut state.waiting)
            .into_iter()
            .partition(|r| r.client == client);
        state.waiting = others;
        for request in mine {
            if !request.bound.statement.is_read() && state.rng.random_bool(0.5) {
                state.late.push(request.bound);
            }
        }
    }

    /// Lands every late write (in a random order): what is still on the
    /// wire when the simulation ends must not change what it checks.
    pub fn settle(&self) {
        let mut state = self.lock();
        while !state.late.is_empty() {
            let len = state.late.len();
            let at = state.rng.random_range(0..len);
            let bound = state.late.swap_remove(at);
            let _ = state.apply(&bound);
        }
    }

    /// Applies every write at the coordinator's clock, as if no statement
    /// said `USING TIMESTAMP`: what the protocol lost before it did.
    pub fn ignore_write_timestamps(&self, ignore: bool) {
        self.lock().ignore_write_timestamps = ignore;
    }

    /// Every statement the server refused, with its reason.
    pub fn refusals(&self) -> Vec<String> {
        self.lock().refusals.clone()
    }

    /// How many statements were applied.
    pub fn delivered(&self) -> u64 {
        self.lock().delivered
    }

    /// A draw from the cluster's schedule, for the simulation's own choices.
    pub fn chance(&self, probability: f64) -> bool {
        self.lock().rng.random_bool(probability)
    }

    /// A number in `0..below` from the cluster's schedule.
    pub fn pick(&self, below: usize) -> usize {
        self.lock().rng.random_range(0..below.max(1))
    }

    /// The live rows of a table.
    pub fn rows(&self, table: &str) -> Vec<HashMap<String, scylla::value::CqlValue>> {
        self.lock().tables.dump(table)
    }

    /// Runs one statement now, without faults (to read or seed tables).
    ///
    /// # Errors
    ///
    /// [`ExecuteError`] if the server refuses it.
    pub fn run_now(&self, bound: &Bound) -> Result<Vec<CqlRow>, ExecuteError> {
        self.lock().apply(bound)
    }
}

impl State {
    /// A waited-for request's answer, with the faults drawn for it.
    fn deliver(&mut self, bound: &Bound) -> Result<Vec<CqlRow>, ExecuteError> {
        let name = bound.statement.name;
        let error = |reason: &str| {
            Err(ExecuteError {
                statement: name,
                reason: format!("simulated {reason}"),
            })
        };
        let faults = self.faults;
        let roll: f64 = self.rng.random();
        if roll < faults.fail {
            return error("unavailable: not applied");
        }
        let is_write = !bound.statement.is_read();
        if is_write && roll < faults.fail + faults.timeout_applied {
            let _ = self.apply(bound);
            return error("write timeout: applied");
        }
        if is_write && roll < faults.fail + faults.timeout_applied + faults.timeout_late {
            if !self.rng.random_bool(faults.lost) {
                self.late.push(bound.clone());
            }
            return error("write timeout: still in flight");
        }
        let answer = self.apply(bound);
        if is_write && bound.statement.is_idempotent() && self.rng.random_bool(faults.duplicate) {
            self.late.push(bound.clone());
        }
        answer
    }

    /// Applies a statement at the coordinator's clock.
    fn apply(&mut self, bound: &Bound) -> Result<Vec<CqlRow>, ExecuteError> {
        let statement = bound.statement;
        self.clock += 1;
        let result = planned(statement.cql).and_then(|plan| {
            let plan = if self.ignore_write_timestamps {
                let mut plan = (*plan).clone();
                plan.drop_write_timestamp();
                Arc::new(plan)
            } else {
                plan
            };
            self.tables
                .apply(&plan, &bound.values, self.clock)
                .map_err(|err| err.to_string())
        });
        match result {
            Ok(rows) => {
                self.delivered += 1;
                Ok(rows)
            }
            Err(reason) => {
                self.refusals.push(format!("{}: {reason}", statement.name));
                Err(ExecuteError {
                    statement: statement.name,
                    reason: format!("refused: {reason}"),
                })
            }
        }
    }
}

/// A statement's plan, parsed once per process.
fn planned(cql: &'static str) -> Result<Arc<Plan>, String> {
    type Plans = HashMap<&'static str, Result<Arc<Plan>, String>>;
    static PLANS: OnceLock<Mutex<Plans>> = OnceLock::new();
    let mut plans = PLANS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    plans
        .entry(cql)
        .or_insert_with(|| plan(cql).map(Arc::new).map_err(|err| err.to_string()))
        .clone()
}

/// One client of the cluster.
#[derive(Debug)]
struct Client {
    cluster: Cluster,
    id: ClientId,
}

impl CqlExecutor for Client {
    fn execute(&self, bound: Bound) -> Execution<'_> {
        Box::pin(Request {
            cluster: self.cluster.clone(),
            client: self.id,
            state: Sending::NotSent(Some(bound)),
        })
    }
}

/// A request is sent when first polled, as a driver sends it.
#[derive(Debug)]
enum Sending {
    NotSent(Option<Bound>),
    Sent(u64),
}

#[derive(Debug)]
struct Request {
    cluster: Cluster,
    client: ClientId,
    state: Sending,
}

impl Future for Request {
    type Output = Result<Vec<CqlRow>, ExecuteError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let cluster = self.cluster.clone();
        let mut state = cluster.lock();
        match &mut self.state {
            Sending::NotSent(bound) => {
                let Some(bound) = bound.take() else {
                    return Poll::Pending;
                };
                if state.immediate {
                    return Poll::Ready(state.apply(&bound));
                }
                if state.crashed.contains(&self.client) {
                    // A crashed process sends nothing; it is never polled
                    // again by a correct simulation.
                    return Poll::Pending;
                }
                let id = state.next_request;
                state.next_request += 1;
                state.waiting.push(InFlight {
                    id,
                    client: self.client,
                    bound,
                    waker: Some(cx.waker().clone()),
                });
                drop(state);
                self.state = Sending::Sent(id);
                Poll::Pending
            }
            Sending::Sent(id) => {
                let id = *id;
                if let Some(answer) = state.answered.remove(&id) {
                    return Poll::Ready(answer);
                }
                if let Some(request) = state.waiting.iter_mut().find(|r| r.id == id) {
                    request.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}
