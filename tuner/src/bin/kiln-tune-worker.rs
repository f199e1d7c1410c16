//! A measurement worker (the same as `kiln tune-worker`), for the tuner's
//! own tests and for hosts that run workers without the CLI.

fn main() {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    if let Err(e) = kiln_tuner::worker::serve(stdin.lock(), stdout.lock()) {
        eprintln!("kiln-tune-worker: {e}");
        std::process::exit(1);
    }
}
