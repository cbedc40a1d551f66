use std::process::{Command, Stdio};
use test_support::compose::{Composer, Encoding};

fn compose_blocks() -> Command {
    Command::new(env!("CARGO_BIN_EXE_compose-blocks"))
}

fn expected(seed: u64, first: u64, count: u64, encoding: Encoding) -> String {
    let composer = Composer::new(seed).unwrap();
    let mut text = String::new();
    for block in composer.blocks(first, count, encoding).unwrap() {
        text.push_str(&block);
        text.push('\n');
    }
    text
}

#[test]
fn writes_the_composed_blocks_to_a_file_and_to_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("blocks.jsonl");
    let status = compose_blocks()
        .args([
            "--first",
            "70000000",
            "--count",
            "12",
            "--encoding",
            "appbase",
        ])
        .args(["--seed", "9", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let file = std::fs::read_to_string(&out).unwrap();
    assert_eq!(file, expected(9, 70_000_000, 12, Encoding::Appbase));
    assert_eq!(file.lines().count(), 12);
    // Only the output file is left (the temporary file was renamed over it).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let output = compose_blocks()
        .args(["--first", "5", "--count", "3", "--encoding", "legacy"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        expected(1, 5, 3, Encoding::Legacy),
        "the default seed is 1"
    );
}

#[test]
fn bad_arguments_fail_with_a_message_and_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("blocks.jsonl");
    for (args, says) in [
        (
            &["--first", "1", "--count", "1", "--encoding", "json"][..],
            "json",
        ),
        (
            &["--first", "0", "--count", "1", "--encoding", "legacy"][..],
            "blocks 0 to",
        ),
        (
            &[
                "--first",
                "4294967295",
                "--count",
                "2",
                "--encoding",
                "legacy",
            ][..],
            "4294967295",
        ),
    ] {
        let output = compose_blocks()
            .args(args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!out.exists());
    }
    let missing = dir.path().join("no/such/dir/blocks.jsonl");
    let output = compose_blocks()
        .args([
            "--first",
            "1",
            "--count",
            "1",
            "--encoding",
            "legacy",
            "--out",
        ])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no/such/dir"), "{stderr}");

    let output = compose_blocks()
        .args([
            "--first",
            "1",
            "--count",
            "1",
            "--encoding",
            "legacy",
            "--data",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("recent/steem"), "{stderr}");
}

#[test]
fn a_closed_standard_output_is_a_clean_stop() {
    let mut child = compose_blocks()
        .args(["--first", "1", "--count", "100000", "--encoding", "legacy"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
