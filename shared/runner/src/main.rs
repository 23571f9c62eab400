//! `puhui-local`: runs Puhui on this machine (embedded backend) until Ctrl-C.

use puhui_runner::{Runner, RunnerConfig, consumers};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    puhui_edge::observe::init_logging();
    let config = RunnerConfig::from_env()?;
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let runner = Runner::build(&config, &base_url)?;
    for c in runner.consumers {
        tokio::spawn(consumers::run_consumer(c));
    }
    for s in runner.schedules {
        tokio::spawn(consumers::run_schedule(s));
    }
    // The demo driver waits for this exact line on stdout.
    println!("PUHUI_READY {base_url}");
    eprintln!(
        "Puhui local runner listening on {base_url} (data in {}); Ctrl-C to stop",
        config.data_dir.display()
    );
    axum::serve(listener, runner.app)
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
