//! Publishes stamped broadcasts through the REST trigger at a set rate, on a thread and
//! runtime of its own, so that the pacing is not held up by the thousands of socket tasks of
//! the load generator. Several requests may be in flight, so a slow trigger answer does not
//! lower the offered rate until that many are waiting.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use crate::fleet::Fleet;
use crate::stamp::Stamp;

/// What one publishing step did.
#[derive(Debug, Clone, Default)]
pub struct PublishReport {
    /// Broadcasts the trigger accepted.
    pub published: u64,
    /// Trigger requests that failed.
    pub errors: u64,
    /// Time from the first request to the last answer, seconds.
    pub secs: f64,
    /// The first error, if any.
    pub first_error: Option<String>,
}

/// The publishing side of the load generator.
#[derive(Clone)]
pub struct Publisher {
    handle: Handle,
    client: reqwest::Client,
    trigger: Arc<str>,
    /// The JSON string of each path; broadcasts go round-robin over them.
    paths_json: Arc<[String]>,
    pad: usize,
    /// `"p"` holds records (see [`Stamp::to_json_records`]) instead of `x` repeated.
    records: bool,
    fleet: Arc<Fleet>,
    seq: Arc<AtomicU64>,
    /// Broadcasts accepted in the current step, for progress output.
    pub accepted: Arc<AtomicU64>,
    /// Broadcasts accepted in the current step, per path.
    pub accepted_per_path: Arc<[AtomicU64]>,
}

impl Publisher {
    /// Starts the publisher thread. `paths` are the broadcast paths (each broadcast goes to
    /// the next one, round-robin), `pad` the padding bytes, `records`: JSON records pad
    /// instead of `x` repeated.
    pub fn start(
        fleet: Arc<Fleet>,
        trigger: &str,
        paths: &[String],
        pad: usize,
        records: bool,
    ) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("publisher".into())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
        Ok(Self {
            handle,
            client: reqwest::Client::new(),
            trigger: trigger.into(),
            paths_json: paths
                .iter()
                .map(|p| serde_json::Value::from(p.as_str()).to_string())
                .collect(),
            pad,
            records,
            fleet,
            seq: Arc::default(),
            accepted: Arc::default(),
            accepted_per_path: paths.iter().map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Publishes `rate` broadcasts per second per path for `secs`, stamped with `step`, with
    /// at most `in_flight` requests outstanding.
    pub async fn run(&self, step: u32, rate: f64, secs: f64, in_flight: usize) -> PublishReport {
        let this = self.clone();
        let job = self.handle.spawn(async move {
            this.accepted.store(0, Ordering::Relaxed);
            for a in this.accepted_per_path.iter() {
                a.store(0, Ordering::Relaxed);
            }
            let paths = this.paths_json.len();
            let rate = rate * paths as f64;
            let errors = Arc::new(AtomicU64::new(0));
            let first_error = Arc::new(std::sync::Mutex::new(None));
            let gate = Arc::new(Semaphore::new(in_flight.max(1)));
            let total = (rate * secs).round().max(1.0) as u64;
            let interval = Duration::from_secs_f64(1.0 / rate);
            let t0 = Instant::now();
            for i in 0..total {
                tokio::time::sleep_until((t0 + interval.mul_f64(i as f64)).into()).await;
                let Ok(permit) = gate.clone().acquire_owned().await else {
                    break;
                };
                let seq = this.seq.fetch_add(1, Ordering::Relaxed) + 1;
                let k = (i % paths as u64) as usize;
                let stamp = Stamp {
                    step,
                    seq,
                    micros: this.fleet.now_us(),
                    path: k as u32,
                };
                let body = format!(
                    r#"{{"path":{},"data":{}}}"#,
                    this.paths_json[k],
                    if this.records {
                        stamp.to_json_records(this.pad)
                    } else {
                        stamp.to_json(this.pad)
                    }
                );
                let request = this
                    .client
                    .post(&*this.trigger)
                    .header("content-type", "application/json")
                    .body(body);
                let (accepted, per_path, errors, first_error) = (
                    this.accepted.clone(),
                    this.accepted_per_path.clone(),
                    errors.clone(),
                    first_error.clone(),
                );
                tokio::spawn(async move {
                    let outcome = match request.send().await {
                        Ok(r) if r.status().is_success() => Ok(()),
                        Ok(r) => Err(format!("trigger answered {}", r.status())),
                        Err(e) => Err(e.to_string()),
                    };
                    match outcome {
                        Ok(()) => {
                            per_path[k].fetch_add(1, Ordering::Relaxed);
                            accepted.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(e) => {
                            first_error
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(e);
                            errors.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    drop(permit);
                });
            }
            let _ = gate.acquire_many(in_flight.max(1) as u32).await;
            let first_error = first_error.lock().unwrap_or_else(|e| e.into_inner()).take();
            PublishReport {
                published: this.accepted.load(Ordering::Relaxed),
                errors: errors.load(Ordering::Relaxed),
                secs: t0.elapsed().as_secs_f64(),
                first_error,
            }
        });
        job.await.unwrap_or_default()
    }
}
