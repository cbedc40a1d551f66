//! `cargo bench --bench fanout`: the ring against its peers across processes; see
//! `benches::fanout` and BENCHMARKS.md. Under `cargo test --benches` (no `--bench` flag) it
//! does a short smoke run instead. The same binary, started with `--role NAME`, is each
//! writer and reader process of a cell.

use std::process::ExitCode;

/// Every writer and reader process counts its heap allocations (reported per record).
#[global_allocator]
static ALLOC: benches::alloc::Counting = benches::alloc::Counting;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = if let Some(at) = args.iter().position(|a| a == "--role") {
        benches::fanout::run_role(&args[at + 1..])
    } else if args.iter().any(|a| a == "--list") {
        // `cargo test -- --list`: this harness has no individual tests to list.
        Ok(())
    } else {
        let smoke = !args.iter().any(|a| a == "--bench");
        benches::fanout::Config::from_env(smoke).and_then(|cfg| benches::fanout::run(&cfg))
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fanout: {e:#}");
            ExitCode::FAILURE
        }
    }
}
