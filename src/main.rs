//! The `kiln` command-line tool.

fn main() {
    std::process::exit(kiln::cli::main());
}
