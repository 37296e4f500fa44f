//! `kill -9` while KV snapshots are being written, and the start after it: with the real 0.5B,
//! `inkling complete` warms a repo-context prefix (and saves its snapshot) and is killed at many
//! points of that work. After every kill, each snapshot entry on disk must pass its checksum (a
//! write is a rename of a finished file, so no partial entry can exist); the next start must
//! complete, also when an entry was cut short or replaced by a FIFO by hand.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use inkling::engine::kv::store::verify;

fn workspace(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("inkling-kill-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    // A prefix of several hundred tokens: long enough that it is saved and loaded (a prefix
    // within one prompt chunk is cheaper to evaluate than to load).
    let mut geometry = String::new();
    let mut uses = String::new();
    for i in 0..16 {
        geometry += &format!(
            "def area_{i}(width, height):\n    \"\"\"Area of rectangle number {i}, scaled.\"\"\"\n    scale = {i} + 1\n    return width * height * scale\n\n\n"
        );
        uses += &format!("print(area_{i}({i}, 2))\n");
    }
    std::fs::write(dir.join("geometry.py"), geometry).unwrap();
    std::fs::write(
        dir.join("main.py"),
        format!("from geometry import *\n\n{uses}x = \n"),
    )
    .unwrap();
    dir
}

fn complete(dir: &Path, kv: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_inkling"));
    c.arg("complete")
        .arg(dir.join("main.py"))
        .args(["--line", "18", "--column", "4", "--max-tokens", "4"])
        .args(["--speculation", "off", "--context-tokens", "1024"])
        .arg("--model")
        .arg(common::test_model())
        .arg("--kv-dir")
        .arg(kv)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Every finished entry in `kv` passes its checksum; returns how many there are.
fn entries_are_sound(kv: &Path) -> usize {
    let Ok(dir) = std::fs::read_dir(kv) else {
        return 0;
    };
    let mut n = 0;
    for e in dir.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "kv") {
            verify(&p).unwrap_or_else(|err| panic!("{} is not sound: {err}", p.display()));
            n += 1;
        }
    }
    n
}

/// Runs to the end (with a generous limit); the output and stderr.
fn run_to_end(mut c: Command) -> (bool, String) {
    let mut child = c.spawn().expect("starts");
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (
                status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "no end in 300 s (a hang?)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn kill_9_while_snapshots_are_written_never_leaves_a_partial_entry() {
    let dir = workspace("kills");
    let kv = dir.join("kv");
    for ms in [1000, 2500, 3500, 4300, 4600, 4900, 5300, 6500, 8000] {
        let mut child = complete(&dir, &kv).spawn().expect("starts");
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let sound = entries_are_sound(&kv);
        // Leftovers of a write cut short (swept by eviction later); never loaded.
        let unfinished = std::fs::read_dir(&kv).map_or(0, |d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
                .count()
        });
        eprintln!("killed after {ms} ms: {sound} sound entries, {unfinished} unfinished writes");
    }
    // The next start completes, from a snapshot when one was saved before a kill.
    let (ok, stderr) = run_to_end(complete(&dir, &kv));
    assert!(ok, "{stderr}");
    assert!(stderr.contains("repo context:"), "{stderr}");
    let saved = entries_are_sound(&kv);
    assert!(saved >= 1, "a full run saves the prefix: {stderr}");
    let (ok, stderr) = run_to_end(complete(&dir, &kv));
    assert!(ok, "{stderr}");
    assert!(
        !stderr.contains("(0 from disk"),
        "the second start loads the prefix from disk: {stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_cut_or_replaced_entry_is_refused_not_loaded() {
    let dir = workspace("cut");
    let kv = dir.join("kv");
    let (ok, stderr) = run_to_end(complete(&dir, &kv));
    assert!(ok, "{stderr}");
    let entry = std::fs::read_dir(&kv)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "kv"))
        .expect("a saved entry");
    // Cut in half, as a crash in the middle of a write without the rename would leave it.
    let bytes = std::fs::read(&entry).unwrap();
    std::fs::write(&entry, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, stderr) = run_to_end(complete(&dir, &kv));
    assert!(ok, "{stderr}");
    assert!(stderr.contains("(0 from disk"), "not loaded: {stderr}");
    // It was deleted and written anew, whole.
    assert_eq!(entries_are_sound(&kv), 1);
    // A FIFO in its place: nothing blocks.
    std::fs::remove_file(&entry).unwrap();
    let made = Command::new("mkfifo").arg(&entry).status().unwrap();
    assert!(made.success());
    let (ok, stderr) = run_to_end(complete(&dir, &kv));
    assert!(ok, "{stderr}");
    assert!(stderr.contains("(0 from disk"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
