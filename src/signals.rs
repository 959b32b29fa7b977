//! SIGINT and SIGTERM: how an operator (Ctrl-C) or a supervisor asks a
//! process to stop. This file only listens and counts; what each signal
//! does is the caller's: the daemon (`worker`) drains on the first and
//! interrupts on the next, `run-job` interrupts its run on the first and
//! stops it at once on the second. Either way the run is recorded.

use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// A signal that asks the process to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Interrupt,
    Terminate,
}

impl StopSignal {
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
        }
    }
}

/// The SIGINT and SIGTERM this process received since [`Signals::listen`].
/// Cheap to clone; clones see the same signals.
#[derive(Clone)]
pub struct Signals {
    count: watch::Receiver<u32>,
    first: Arc<OnceLock<StopSignal>>,
}

impl Signals {
    /// Installs the handlers: from now on SIGINT and SIGTERM no longer end
    /// the process, they are counted (and logged at info).
    pub fn listen() -> anyhow::Result<Signals> {
        let mut term =
            signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
        let mut int =
            signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
        let (count, counted) = watch::channel(0u32);
        let first = Arc::new(OnceLock::new());
        let seen = first.clone();
        tokio::spawn(async move {
            loop {
                let which = tokio::select! {
                    Some(()) = term.recv() => StopSignal::Terminate,
                    Some(()) = int.recv() => StopSignal::Interrupt,
                    else => return,
                };
                let _ = seen.set(which);
                tracing::info!("{} received", which.name());
                count.send_modify(|n| *n += 1);
            }
        });
        Ok(Signals {
            count: counted,
            first,
        })
    }

    /// Returns once `n` signals (SIGINT or SIGTERM, in any mix) have arrived.
    pub async fn received(&self, n: u32) {
        let mut count = self.count.clone();
        if count.wait_for(|c| *c >= n).await.is_err() {
            // The listener is gone (the runtime is shutting down): no
            // further signal will be counted.
            std::future::pending::<()>().await;
        }
    }

    /// The first signal received, if any.
    pub fn first(&self) -> Option<StopSignal> {
        self.first.get().copied()
    }
}
