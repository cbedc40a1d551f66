//! Connecting to NATS and finding one's way in the stream.

use crate::Error;
use crate::wire::{Msg, WireError};
use async_nats::jetstream::{self, stream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing::{info, warn};

/// First and longest wait between connection attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(10));

/// Doubling waits with a quarter of jitter, from 250 ms up to 10 s.
#[derive(Debug)]
pub struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff(BACKOFF.0)
    }
}

impl Backoff {
    /// The next wait: the current one plus up to a quarter of jitter; doubles the next.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.0 + self.0.mul_f64(fastrand::f64() / 4.0);
        self.0 = (self.0 * 2).min(BACKOFF.1);
        wait
    }

    /// Start over from the shortest wait (after a success).
    pub fn reset(&mut self) {
        self.0 = BACKOFF.0;
    }
}

/// Sleep for `wait`, waking early when `stop` is raised. Returns `false` if it was.
pub async fn nap(wait: Duration, stop: &AtomicBool) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    // Relaxed: a flag with no data attached.
    while !stop.load(Ordering::Relaxed) {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return true;
        }
        tokio::time::sleep((deadline - now).min(Duration::from_millis(100))).await;
    }
    false
}

/// Connect to `url`, retrying with backoff (and saying so) until it answers or `stop` is
/// raised (`Ok(None)`). Once connected, the client reconnects by itself; losing and regaining
/// the connection is logged.
pub async fn connect(
    url: &str,
    name: &str,
    stop: &Arc<AtomicBool>,
) -> Result<Option<async_nats::Client>, Error> {
    let mut backoff = Backoff::default();
    let mut attempt = 1u32;
    loop {
        let url_for_log = url.to_string();
        let options = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(Duration::from_secs(3))
            .max_reconnects(None)
            .event_callback(move |event| {
                let url = url_for_log.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            info!(%url, "NATS connection (re)established")
                        }
                        async_nats::Event::Disconnected => {
                            warn!(%url, "NATS connection lost; reconnecting")
                        }
                        other => warn!(%url, event = %other, "NATS event"),
                    }
                }
            });
        match options.connect(url).await {
            Ok(client) => {
                info!(%url, attempt, "connected to NATS");
                return Ok(Some(client));
            }
            Err(e) => {
                if let async_nats::ConnectErrorKind::ServerParse = e.kind() {
                    return Err(Error::Config(format!("bad NATS address {url:?}: {e}")));
                }
                let wait = backoff.next_wait();
                warn!(%url, attempt, error = %e, retry_in = ?wait, "NATS unreachable; retrying");
                attempt += 1;
                if !nap(wait, stop).await {
                    return Ok(None);
                }
            }
        }
    }
}

/// The stream `name`, or `None` if it does not exist.
pub async fn get_stream(
    js: &jetstream::Context,
    name: &str,
) -> Result<Option<stream::Stream>, Error> {
    match js.get_stream(name).await {
        Ok(s) => Ok(Some(s)),
        Err(e) => match e.kind() {
            jetstream::context::GetStreamErrorKind::JetStream(j)
                if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                Ok(None)
            }
            jetstream::context::GetStreamErrorKind::EmptyName
            | jetstream::context::GetStreamErrorKind::InvalidStreamName => {
                Err(Error::Config(format!("invalid stream name {name:?}: {e}")))
            }
            _ => Err(Error::nats("looking up the stream", e)),
        },
    }
}

/// The subject prefix of a stream made by `ring-to-nats`: its one subject is `PREFIX.>`.
pub fn stream_prefix(info: &stream::Info) -> Result<String, Error> {
    match info.config.subjects.as_slice() {
        [one] if one.ends_with(".>") => Ok(one.trim_end_matches(".>").to_string()),
        other => Err(Error::Config(format!(
            "stream {} has subjects {other:?}; a stream of ring-to-nats has exactly one, PREFIX.>",
            info.config.name
        ))),
    }
}

/// Message `seq` of the stream; `Ok(None)` if it is not (or no longer) there.
pub async fn message_at(
    stream: &stream::Stream,
    seq: u64,
) -> Result<Option<async_nats::jetstream::message::StreamMessage>, Error> {
    match stream.get_raw_message(seq).await {
        Ok(m) => Ok(Some(m)),
        Err(e) => match e.kind() {
            stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            stream::LastRawMessageErrorKind::JetStream(j)
                if j.error_code() == jetstream::ErrorCode::NO_MESSAGE_FOUND =>
            {
                Ok(None)
            }
            _ => Err(Error::nats("reading a message of the stream", e)),
        },
    }
}

/// Decode a message read from the stream.
pub fn decode(
    prefix: &str,
    m: async_nats::jetstream::message::StreamMessage,
) -> Result<Msg, WireError> {
    Msg::decode(prefix, m.subject.as_str(), &m.headers, m.payload)
}

/// The last message on `subject`, decoded; `Ok(None)` if there is none.
pub async fn last_on_subject(
    stream: &stream::Stream,
    prefix: &str,
    subject: &str,
) -> Result<Option<Result<Msg, WireError>>, Error> {
    match stream.get_last_raw_message_by_subject(subject).await {
        Ok(m) => Ok(Some(decode(prefix, m))),
        Err(e) => match e.kind() {
            stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            stream::LastRawMessageErrorKind::JetStream(j)
                if j.error_code() == jetstream::ErrorCode::NO_MESSAGE_FOUND =>
            {
                Ok(None)
            }
            _ => Err(Error::nats("reading the last block end of the stream", e)),
        },
    }
}

/// The branch (see [`crate::wire::H_BRANCH`]) of message `seq`; `Ok(None)` if it vanished.
pub async fn branch_at_end(stream: &stream::Stream, seq: u64) -> Result<Option<u64>, Error> {
    let Some(msg) = message_at(stream, seq).await? else {
        return Ok(None);
    };
    crate::wire::branch_of(&msg.headers).map(Some).map_err(|v| {
        Error::Stream(format!(
            "message {seq} ({}) has an invalid {} header {v:?}",
            msg.subject,
            crate::wire::H_BRANCH
        ))
    })
}

/// The first sequence of the stream whose message's (branch, block) key exceeds `after` (the
/// stream's next sequence if none does), found by bisection: keys never decrease along the
/// stream. `Ok(None)`: messages vanished (retention) during the search; search again.
pub async fn first_after(
    stream: &stream::Stream,
    first: u64,
    last: u64,
    after: (u64, u64),
) -> Result<Option<u64>, Error> {
    let (mut lo, mut hi) = (first, last + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let Some(msg) = message_at(stream, mid).await? else {
            return Ok(None);
        };
        // Only the `Branch` and `Block` headers matter here; a message broken otherwise is
        // dealt with when it is read in order.
        let block = msg
            .headers
            .get(crate::wire::H_BLOCK)
            .and_then(|v| v.as_str().parse::<u64>().ok());
        let branch = crate::wire::branch_of(&msg.headers).ok();
        let key = branch.zip(block).ok_or_else(|| {
            Error::Stream(format!(
                "message {mid} ({}) has no valid {} and {} headers",
                msg.subject,
                crate::wire::H_BRANCH,
                crate::wire::H_BLOCK
            ))
        })?;
        if key > after {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(Some(lo))
}
