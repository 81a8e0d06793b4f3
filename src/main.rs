//! `jobgraph` — see `jobgraph --help`.

fn main() -> std::process::ExitCode {
    jobgraph::cli::main()
}
