//! The command-line interface: argument parsing, logging setup, and one module per command.

mod bench;
mod compile;
mod cost_eval;
mod db;
mod derive;
mod engine;
mod explain;
mod inspect;
mod plot;
mod run;
mod select;
mod tune;
mod tuning_db;

use clap::{Parser, Subcommand};

/// Kiln: a tensor-program compiler and autotuner.
#[derive(Parser, Debug)]
#[command(name = "kiln", version, about)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show a model's inputs, outputs, opsets, op histogram and parameters.
    Inspect(inspect::Args),
    /// Compile a model and report kernels, fusion, fallbacks, memory and time.
    Compile(compile::Args),
    /// Run the rewrite stage and report rewrites, op histograms, costs, e-graph size.
    Explain(explain::Args),
    /// Run a model on .npy inputs and write its outputs as .npy files.
    Run(run::Args),
    /// Measure a model's latency (median/min/max ms) on given or random inputs.
    Bench(bench::Args),
    /// Tune a model: measure each workload's knob settings and keep the faster ones.
    Tune(tune::Args),
    /// Measurement worker of `kiln tune` (one job on stdin).
    #[command(hide = true)]
    TuneWorker,
    /// Inspect and maintain the tuning database (stats, list, export, import, gc, verify).
    Db(db::Args),
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

/// Runs the CLI; returns the process exit code. Errors print as one paragraph, never a backtrace.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    init_logging(cli.verbose, cli.quiet);
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if msg.starts_with("failed printing to stdout") {
            // The reader went away (`kiln ... | head`): stop quietly, as a
            // SIGPIPE-killed process would.
            std::process::exit(141);
        }
        eprintln!("internal error (a bug in Kiln, please report it): {msg}{at}");
    }));
    let result = match cli.command {
        Command::Inspect(a) => inspect::run(a),
        Command::Compile(a) => compile::run(a),
        Command::Explain(a) => explain::run(a),
        Command::Run(a) => run::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Tune(a) => tune::run(a),
        Command::TuneWorker => tune::worker_main(),
        Command::Db(a) => db::run(a),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}
