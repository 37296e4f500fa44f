//! Tests of the snapshot store: round trips, corruption, eviction, concurrent writers.
use super::*;

/// A fresh directory under the system temp dir, deleted on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("inkling-kvstore-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    fn store(&self, cap_bytes: u64) -> KvStore {
        KvStore::new(self.0.clone(), cap_bytes)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn header(n_tokens: u32) -> EntryHeader {
    EntryHeader {
        model_fp: 0x1234_5678_9abc_def0,
        n_tokens,
    }
}

fn payload(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn set_mtime(path: &Path, t: SystemTime) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn fnv64_known_values() {
    assert_eq!(Fnv64::new().finish(), 0xcbf2_9ce4_8422_2325);
    let mut h = Fnv64::default();
    h.write(b"a");
    assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
    // Streaming in pieces equals hashing at once.
    let mut a = Fnv64::new();
    a.write(b"foobar");
    let mut b = Fnv64::new();
    b.write(b"foo");
    b.write(b"bar");
    assert_eq!(a.finish(), b.finish());
    assert_eq!(a.finish(), 0x8594_4171_f739_67e8);
}

#[test]
fn round_trip() {
    let tmp = TempDir::new("round_trip");
    let store = tmp.store(u64::MAX);
    let data = payload(7, 5000);
    let written = store.save(42, &header(100), &data).unwrap();
    assert_eq!(written, (HEADER_LEN + data.len()) as u64);
    assert_eq!(store.path_of(42), tmp.0.join("000000000000002a.kv"));
    assert_eq!(store.total_bytes(), written);
    assert_eq!(store.load(42, &header(100)).unwrap(), Some(data));
    // No temporary file is left behind.
    assert_eq!(fs::read_dir(&tmp.0).unwrap().count(), 1);
    // An empty payload is a valid entry too.
    store.save(43, &header(0), &[]).unwrap();
    assert_eq!(store.load(43, &header(0)).unwrap(), Some(Vec::new()));
    store.remove(43);
    store.remove(43);
    assert_eq!(store.load(43, &header(0)).unwrap(), None);
}

#[test]
fn missing_is_none() {
    let tmp = TempDir::new("missing_is_none");
    let store = tmp.store(u64::MAX);
    // Neither the directory nor the entry exists.
    assert_eq!(store.load(1, &header(1)).unwrap(), None);
    assert_eq!(store.total_bytes(), 0);
    assert!(
        !tmp.0.exists(),
        "new and load must not create the directory"
    );
}

#[test]
fn flipped_payload_byte_is_invalid_and_deleted() {
    let tmp = TempDir::new("flipped_payload_byte");
    let store = tmp.store(u64::MAX);
    store.save(5, &header(10), &payload(1, 300)).unwrap();
    let path = store.path_of(5);
    let mut bytes = fs::read(&path).unwrap();
    bytes[HEADER_LEN + 150] ^= 0x01;
    fs::write(&path, bytes).unwrap();
    let err = store.load(5, &header(10)).unwrap_err();
    assert!(
        matches!(&err, KvStoreError::Invalid(r) if r.contains("checksum")),
        "{err}"
    );
    assert!(!path.exists());
    assert_eq!(store.load(5, &header(10)).unwrap(), None);
}

#[test]
fn a_flipped_header_field_fails_the_checksum_too() {
    // Found by the fuzzer: the token count flipped from 5 to exactly the 0 a caller asked for.
    let tmp = TempDir::new("flipped_header");
    let store = tmp.store(u64::MAX);
    store.save(6, &header(5), &[]).unwrap();
    let path = store.path_of(6);
    let mut bytes = fs::read(&path).unwrap();
    let n_tokens_at = 8 + 4 + 8;
    bytes[n_tokens_at] ^= 5;
    fs::write(&path, bytes).unwrap();
    let err = store.load(6, &header(0)).unwrap_err();
    assert!(
        matches!(&err, KvStoreError::Invalid(r) if r.contains("checksum")),
        "{err}"
    );
    assert!(!path.exists());
}

#[test]
fn truncated_is_invalid_and_deleted() {
    let tmp = TempDir::new("truncated");
    let store = tmp.store(u64::MAX);
    let path = store.path_of(6);
    // Cut inside the payload, then inside the header.
    for cut in [HEADER_LEN + 100, 10] {
        store.save(6, &header(10), &payload(2, 300)).unwrap();
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..cut]).unwrap();
        let err = store.load(6, &header(10)).unwrap_err();
        assert!(matches!(err, KvStoreError::Invalid(_)), "{err}");
        assert!(!path.exists());
    }
    // Trailing garbage is just as wrong.
    store.save(6, &header(10), &payload(2, 300)).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    bytes.push(0);
    fs::write(&path, bytes).unwrap();
    assert!(matches!(
        store.load(6, &header(10)),
        Err(KvStoreError::Invalid(_))
    ));
    assert!(!path.exists());
}

#[test]
fn header_mismatch_is_invalid_and_deleted() {
    let tmp = TempDir::new("header_mismatch");
    let store = tmp.store(u64::MAX);
    let path = store.path_of(7);
    let other_model = EntryHeader {
        model_fp: 99,
        ..header(10)
    };
    for wrong in [other_model, header(11)] {
        store.save(7, &header(10), &payload(3, 64)).unwrap();
        let err = store.load(7, &wrong).unwrap_err();
        assert!(matches!(err, KvStoreError::Invalid(_)), "{err}");
        assert!(!path.exists());
    }
}

#[test]
fn wrong_magic_or_version_is_invalid() {
    let tmp = TempDir::new("wrong_magic");
    let store = tmp.store(u64::MAX);
    let path = store.path_of(8);
    // Byte 0 is in the magic; byte 8 is in the format version.
    for at in [0, 8] {
        store.save(8, &header(10), &payload(4, 64)).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        bytes[at] ^= 0xff;
        fs::write(&path, bytes).unwrap();
        let err = store.load(8, &header(10)).unwrap_err();
        assert!(matches!(err, KvStoreError::Invalid(_)), "{err}");
        assert!(!path.exists());
    }
}

#[test]
fn lru_eviction_keeps_recently_used_and_new() {
    let tmp = TempDir::new("lru_eviction");
    let entry_len = (HEADER_LEN + 1000) as u64;
    let cap = entry_len * 5 / 2;
    // The first three are written without a cap, so all of them exist before the touch.
    let setup = tmp.store(u64::MAX);
    let now = SystemTime::now();
    for (key, age) in [(1u64, 300u64), (2, 200), (3, 100)] {
        setup
            .save(key, &header(10), &payload(key as u8, 1000))
            .unwrap();
        set_mtime(&setup.path_of(key), now - Duration::from_secs(age));
    }
    // Loading the oldest makes it the most recently used.
    assert!(setup.load(1, &header(10)).unwrap().is_some());

    let store = tmp.store(cap);
    store.save(4, &header(10), &payload(4, 1000)).unwrap();
    assert!(store.path_of(1).exists(), "touched entry was evicted");
    assert!(
        !store.path_of(2).exists(),
        "least recently used entry survived"
    );
    assert!(
        !store.path_of(3).exists(),
        "second least recently used entry survived"
    );
    assert!(
        store.path_of(4).exists(),
        "the entry just written was evicted"
    );
    assert!(store.total_bytes() <= cap);
    assert_eq!(store.total_bytes(), 2 * entry_len);
}

#[test]
fn new_entry_survives_even_over_cap() {
    let tmp = TempDir::new("over_cap");
    let store = tmp.store(10);
    store.save(1, &header(1), &payload(1, 100)).unwrap();
    store.save(2, &header(1), &payload(2, 100)).unwrap();
    assert!(!store.path_of(1).exists());
    assert_eq!(store.load(2, &header(1)).unwrap(), Some(payload(2, 100)));
}

#[test]
fn stale_tmp_files_are_swept() {
    let tmp = TempDir::new("stale_tmp");
    let store = tmp.store(u64::MAX);
    fs::create_dir_all(&tmp.0).unwrap();
    let stale = store.scratch_path();
    let fresh = store.scratch_path();
    assert_ne!(stale, fresh);
    fs::write(&stale, b"old").unwrap();
    fs::write(&fresh, b"new").unwrap();
    set_mtime(&stale, SystemTime::now() - Duration::from_secs(2 * 60 * 60));
    store.save(1, &header(1), b"x").unwrap();
    assert!(!stale.exists());
    assert!(fresh.exists());
    // Scratch files never count as entries.
    assert_eq!(store.total_bytes(), HEADER_LEN as u64 + 1);
}

#[test]
fn fingerprint_sees_the_tail_and_is_stable() {
    let tmp = TempDir::new("fingerprint");
    fs::create_dir_all(&tmp.0).unwrap();
    let mut bytes = payload(9, 9 * 1024 * 1024 + 17);
    let a = tmp.0.join("a.gguf");
    let a_copy = tmp.0.join("a-copy.gguf");
    let b = tmp.0.join("b.gguf");
    fs::write(&a, &bytes).unwrap();
    fs::write(&a_copy, &bytes).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    fs::write(&b, &bytes).unwrap();
    let fa = model_fingerprint(&a).unwrap();
    assert_eq!(fa, model_fingerprint(&a_copy).unwrap());
    assert_ne!(fa, model_fingerprint(&b).unwrap());
    // Small files are hashed whole.
    fs::write(&a, b"small model").unwrap();
    fs::write(&b, b"small modem").unwrap();
    assert_ne!(
        model_fingerprint(&a).unwrap(),
        model_fingerprint(&b).unwrap()
    );
    assert!(model_fingerprint(&tmp.0.join("missing.gguf")).is_err());
}

#[test]
fn prefix_key_depends_on_every_token_and_the_model() {
    let tokens = [1, 2, 3, 4, 5];
    let base = prefix_key(11, &tokens);
    assert_eq!(base, prefix_key(11, &tokens));
    assert_ne!(base, prefix_key(11, &[1, 2, 3, 4, 6]));
    assert_ne!(base, prefix_key(11, &[1, 2, 3, 4]));
    assert_ne!(base, prefix_key(12, &tokens));
}
