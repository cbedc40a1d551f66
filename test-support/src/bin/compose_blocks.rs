//! Writes composed today-sized blocks as JSONL, one block object per line (see
//! `test_support::compose`), for `broadcaster --replay` or a fake node.
//!
//! ```text
//! compose-blocks --first 80000000 --count 1000 --encoding appbase --seed 1 --out blocks.jsonl
//! ```

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};
use test_support::compose::{Composer, Encoding};

/// Compose deterministic today-sized blocks from the recorded op bodies.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Number of the first block (1 to 4294967295)
    #[arg(long)]
    first: u64,
    /// How many consecutive blocks
    #[arg(long)]
    count: u64,
    /// Op encoding: legacy (condenser_api.get_block) or appbase (block_api.get_block_range)
    #[arg(long, value_enum)]
    encoding: EncodingArg,
    /// Seed: the same seed gives the same bytes
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output file, replaced atomically when complete (default: standard output)
    #[arg(long)]
    out: Option<PathBuf>,
    /// The data folder holding the recorded blocks (default: the repository's `data/`)
    #[arg(long)]
    data: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum EncodingArg {
    Legacy,
    Appbase,
}

fn main() -> Result<()> {
    let args = Args::parse();
    match run(&args) {
        // A closed standard output (`| head`) is a normal way to stop.
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
    })
}

fn run(args: &Args) -> Result<()> {
    let composer = match &args.data {
        Some(dir) => Composer::from_dir(dir, args.seed),
        None => Composer::new(args.seed),
    }
    .context("loading the recorded op bodies")?;
    let encoding = match args.encoding {
        EncodingArg::Legacy => Encoding::Legacy,
        EncodingArg::Appbase => Encoding::Appbase,
    };
    let blocks = composer.blocks(args.first, args.count, encoding)?;
    match &args.out {
        None => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            write_lines(&mut out, blocks).context("writing to standard output")
        }
        Some(path) => {
            write_file(path, blocks).with_context(|| format!("writing {}", path.display()))
        }
    }
}

fn write_lines(out: &mut impl Write, blocks: impl Iterator<Item = String>) -> std::io::Result<()> {
    for block in blocks {
        out.write_all(block.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Writes to a temporary file beside `path`, then renames it over `path`: a reader never sees
/// a half-written file, and a failure leaves nothing behind.
fn write_file(path: &Path, blocks: impl Iterator<Item = String>) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let mut out = BufWriter::new(tmp);
    write_lines(&mut out, blocks)?;
    let tmp = out.into_inner().map_err(|e| e.into_error())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
