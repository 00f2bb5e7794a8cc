//! The running node: creates its data directory, starts the transports, and stops cleanly on
//! SIGINT or SIGTERM.

use crate::config::Loaded;
use crate::sip_transport::{self, SipTransportConfig};
use tokio::sync::watch;

/// Why the node could not run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Listening sockets could not be bound.
    #[error("cannot bind {what}: {source}")]
    Bind {
        /// Which listeners.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// A part of the node stopped on its own.
    #[error("{what} stopped unexpectedly: {why}")]
    Stopped {
        /// Which part.
        what: &'static str,
        /// What it returned.
        why: String,
    },
    /// The node's certificate and keys could not be created or loaded.
    #[error("node identity: {0}")]
    Identity(String),
    /// Signal handling failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs the node until SIGINT/SIGTERM.
pub async fn run(loaded: Loaded) -> Result<(), NodeError> {
    // Install the handlers first, so that a signal during start-up still stops us cleanly.
    let signals = Signals::new()?;
    let data_dir = loaded.data_dir();
    std::fs::create_dir_all(&data_dir).map_err(|source| NodeError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    tracing::info!(
        "p2psip {} starting: configuration {}, data directory {}",
        env!("CARGO_PKG_VERSION"),
        loaded.source,
        data_dir.display()
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // The overlay links (TLS/DTLS with these certificates) use it once they run in the node.
    let _identity = crate::pki::local::ensure_local_identity(
        &data_dir,
        &loaded.config.overlay.instance_name,
        &loaded.config.overlay.node_user,
        now,
    )
    .map_err(|e| NodeError::Identity(e.to_string()))?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let sip = sip_transport::bind(SipTransportConfig {
        udp: loaded.sip_udp.clone(),
        tcp: loaded.sip_tcp.clone(),
        server_name: loaded.config.sip.server_name.clone(),
    })
    .await
    .map_err(|e| NodeError::Bind {
        what: "SIP listeners",
        source: e,
    })?;
    let mut sip_task = tokio::spawn(sip.serve(shutdown_rx));
    tracing::info!("node is up");
    let outcome = tokio::select! {
        signal = signals.wait() => {
            tracing::info!("received {signal}, shutting down");
            Ok(())
        }
        res = &mut sip_task => Err(NodeError::Stopped { what: "SIP transport", why: format!("{res:?}") }),
    };
    let _ = shutdown_tx.send(true);
    if outcome.is_ok() {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), sip_task).await;
    }
    tracing::info!("stopped");
    outcome
}

/// SIGTERM and SIGINT, installed once.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
