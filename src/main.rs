//! `jobgraph` — see `jobgraph --help`.

/// mimalloc instead of glibc's allocator: on the cache-hit path glibc's
/// malloc/free (with its consolidation passes) took about an eighth of the
/// CPU in a profile; requests allocate many small, short-lived buffers.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    jobgraph::cli::main()
}
