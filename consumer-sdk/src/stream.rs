//! An async [`Stream`] of ops (feature `tokio`).
//!
//! Reading a ring means waiting on a futex, which would block a runtime worker. So a stream
//! owns a small thread of its own that waits for the writer and hands ops over through a
//! bounded channel: awaiting the stream parks only the task, never a worker thread, on any
//! runtime (multi-thread or current-thread). Dropping the stream ends the thread within a
//! fraction of a second.

use crate::error::RecvError;
use crate::subscriber::{Op, Subscriber};
use futures_core::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// Ops received and not yet taken by the stream's consumer. When it is full the reading thread
/// waits, and may be lapped by the writer (reported as `Lagged`).
const BUFFER: usize = 1024;
/// How often the reading thread looks whether the stream was dropped while no op arrives.
const CLOSE_CHECK: Duration = Duration::from_millis(100);

/// Ops of a [`Subscriber`] as a [`Stream`]; from [`Subscriber::into_stream`].
///
/// Reading a ring means waiting on a futex, which would block a runtime worker. So a stream
/// owns a small thread of its own that waits for the writer and hands ops over through a
/// bounded channel (1024 ops): awaiting the stream parks only the task, never a worker thread,
/// on any runtime (multi-thread or current-thread). Dropping the stream ends the thread within
/// a fraction of a second.
///
/// Items are like [`crate::Iter`]'s: `Ok(op)`, or `Err` for a lag, gap or fork report (the stream
/// goes on after it) or a corrupt ring (the stream ends after it). The stream ends when the
/// subscriber's stop flag is raised.
#[derive(Debug)]
pub struct OpStream {
    rx: mpsc::Receiver<Result<Op, RecvError>>,
}

impl Subscriber {
    /// This subscriber's ops as an async [`Stream`], read on a thread of its own so that
    /// waiting never blocks the runtime (see [`OpStream`]).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let ring = dir.path().join("hive.ring");
    /// # let ring = ring.to_str().unwrap();
    /// # consumer_sdk::doc_support::demo_ring(ring)?;
    /// use consumer_sdk::{Start, Subscriber, ops::Transfer};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let sub = Subscriber::open(ring)?.topics(["transfer"]).start(Start::Earliest)?;
    /// let mut ops = sub.into_stream()?;
    /// let op = ops.next().await.expect("an op")?;
    /// let t: Transfer = op.view()?;
    /// assert_eq!(t.amount.to_string(), "1.500 HIVE");
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    /// Fails only if the operating system refuses a new thread.
    pub fn into_stream(mut self) -> std::io::Result<OpStream> {
        let (tx, rx) = mpsc::channel(BUFFER);
        let spawned = std::thread::Builder::new()
            .name("ring-reader".into())
            .spawn(move || {
                while !tx.is_closed() {
                    let item = match self.recv_timeout(CLOSE_CHECK) {
                        Ok(Some(crate::Event::Op(op))) => Ok(op),
                        Ok(Some(crate::Event::BlockEnd(_)) | None) => continue,
                        Ok(Some(crate::Event::Fork(fork))) => Err(fork.into()),
                        Err(RecvError::Stopped) => return,
                        Err(e) => Err(e),
                    };
                    let fatal = matches!(
                        item,
                        Err(RecvError::Corrupt { .. } | RecvError::Overrun { .. })
                    );
                    if tx.blocking_send(item).is_err() || fatal {
                        return;
                    }
                }
            });
        spawned?;
        Ok(OpStream { rx })
    }
}

impl OpStream {
    /// The next item, or `None` once the stream has ended (the same as `StreamExt::next`).
    pub async fn next(&mut self) -> Option<Result<Op, RecvError>> {
        self.rx.recv().await
    }
}

impl Stream for OpStream {
    type Item = Result<Op, RecvError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}
