//! `moleculer-ws-server`: the reference gateway as a program.

mod cli;

use std::process::ExitCode;

use cli::Cli;
use moleculer_ws_server::{Broker, Cluster, ClusterHandle, Gateway};
use tracing_subscriber::EnvFilter;

/// Which signal asked the program to stop.
enum Stop {
    /// SIGINT (Ctrl-C): the operator stops the gateway; sockets get 1001.
    Interrupt,
    /// SIGTERM: an orchestrator restarts it; sockets get 1012 and reconnect elsewhere.
    Terminate,
}

async fn shutdown_signal() -> Stop {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => Stop::Interrupt,
        _ = term => Stop::Terminate,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::from_args();
    let mut builder = Gateway::builder().config(cli.config());
    match (&cli.node_id, &cli.transporter) {
        (Some(id), _) => builder = builder.broker(Broker::new(id.clone())),
        (None, Some(_)) => builder = builder.broker(Broker::new(Cluster::default_node_id())),
        (None, None) => {}
    }
    let gateway = match builder.build() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("moleculer-ws-server: {e}");
            return ExitCode::from(2);
        }
    };
    // The cluster first: a shared recovery history is read before the first client comes.
    let cluster = match join_cluster(&cli, gateway.broker()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("moleculer-ws-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let running = match gateway.bind(&cli.listen).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("moleculer-ws-server: cannot listen on {}: {e}", cli.listen);
            if let Some(cluster) = cluster {
                cluster.shutdown().await;
            }
            return ExitCode::FAILURE;
        }
    };
    println!("moleculer-ws gateway on {}", running.url());
    match shutdown_signal().await {
        Stop::Interrupt => {
            tracing::info!("SIGINT: shutting down (1001 going away)");
            running.shutdown().await;
        }
        Stop::Terminate => {
            tracing::info!("SIGTERM: shutting down (1012 service restart)");
            running.shutdown_for_restart().await;
        }
    }
    if let Some(cluster) = cluster {
        cluster.shutdown().await;
    }
    ExitCode::SUCCESS
}

/// Joins the cluster when `--transporter` is given.
async fn join_cluster(
    cli: &Cli,
    broker: &Broker,
) -> Result<Option<ClusterHandle>, moleculer_ws_server::ClusterError> {
    let Some(url) = &cli.transporter else {
        return Ok(None);
    };
    Cluster::builder()
        .transporter(url.clone())
        .config(cli.cluster.clone())
        .start(broker)
        .await
        .map(Some)
}
