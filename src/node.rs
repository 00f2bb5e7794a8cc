//! The running node: creates its data directory, starts the transports, and stops cleanly on
//! SIGINT or SIGTERM.

use crate::config::Loaded;
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
    /// A socket could not be bound or served.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs the node until SIGINT/SIGTERM.
pub async fn run(loaded: Loaded) -> Result<(), NodeError> {
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
    let (shutdown_tx, _shutdown_rx) = watch::channel(false);
    let signal = wait_for_signal().await?;
    tracing::info!("received {signal}, shutting down");
    let _ = shutdown_tx.send(true);
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
