//! The KV snapshot reader on corrupted files: a saved entry with bytes flipped, cut or appended
//! is either read back exactly or refused (and deleted), never trusted half-way.
#![no_main]

use arbitrary::Arbitrary;
use inkling::engine::kv::store::{EntryHeader, KvStore};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    payload: Vec<u8>,
    flips: Vec<(u16, u8)>,
    cut: Option<u16>,
    append: Vec<u8>,
    claimed_tokens: u32,
}

fuzz_target!(|input: Input| {
    let dir = std::env::temp_dir().join(format!("inkling-fuzz-kv-{}", std::process::id()));
    let store = KvStore::new(dir.clone(), 1 << 30);
    let header = EntryHeader {
        model_fp: 7,
        n_tokens: 5,
    };
    store.save(1, &header, &input.payload).expect("save");
    let path = store.path_of(1);
    let mut bytes = std::fs::read(&path).expect("read");
    for (at, x) in &input.flips {
        if !bytes.is_empty() {
            let i = *at as usize % bytes.len();
            bytes[i] ^= x;
        }
    }
    if let Some(c) = input.cut {
        bytes.truncate(c as usize % (bytes.len() + 1));
    }
    bytes.extend_from_slice(&input.append);
    std::fs::write(&path, &bytes).expect("write");
    let expect = EntryHeader {
        model_fp: 7,
        n_tokens: if input.claimed_tokens % 4 == 0 {
            input.claimed_tokens
        } else {
            5
        },
    };
    match store.load(1, &expect) {
        Ok(Some(p)) => {
            assert_eq!(p, input.payload, "a changed payload was trusted");
            assert_eq!(expect, header);
        }
        Ok(None) => panic!("the entry vanished without being refused"),
        Err(_) => assert!(!path.exists(), "a refused entry stays on disk"),
    }
    let _ = std::fs::remove_dir_all(dir);
});
