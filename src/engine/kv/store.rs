//! An on-disk store of KV-cache snapshots for prompt prefixes.
//!
//! Re-reading a long shared prefix (a big file, the repository context) costs seconds on a CPU.
//! Saving llama.cpp's state for such a prefix lets a restarted server skip that work. Each entry
//! is one file named after a key over the model and the tokens, so lookups need no index.
//!
//! Entries are a cache: every read checks a header and a checksum, and a bad file is deleted and
//! reported as a miss-like error, never trusted. Writes go to a temporary file and are renamed into
//! place, so readers see either the old entry or the whole new one. The directory is kept under a
//! byte cap by deleting the least recently used entries; a load refreshes an entry's mtime, so the
//! mtime is the use time.
//!
//! File format (little endian): magic `INKLKV01`, format version u32, model fingerprint u64,
//! token count u32, payload length u64, checksum u64 (FNV-1a 64 over the version, fingerprint, token
//! count, length and payload: a flipped header field fails it too), then the payload.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Version of the file layout; bump it when the layout or the payload's meaning changes.
/// Version 2: the checksum covers the header fields too (the fuzzer found a flipped token count
/// that matched what the caller asked for passing the checks).
pub const FORMAT_VERSION: u32 = 2;

/// First bytes of every entry.
const MAGIC: &[u8; 8] = b"INKLKV01";

/// Bytes before the payload: magic, version, model_fp, n_tokens, payload_len, checksum.
const HEADER_LEN: usize = 8 + 4 + 8 + 4 + 8 + 8;

/// Extension of finished entries; only these count towards the cap.
const ENTRY_EXT: &str = "kv";

/// Marker in the names of temporary files (scratch state files and unfinished writes).
const TMP_MARKER: &str = ".tmp-";

/// Temporary files older than this belong to a process that died; eviction may delete them.
const STALE_TMP_AGE: Duration = Duration::from_secs(60 * 60);

/// Bytes hashed at each end of a model file for its fingerprint.
const FINGERPRINT_SPAN: u64 = 4 * 1024 * 1024;

/// FNV-1a 64-bit, streaming.
///
/// Not cryptographic. It is only used to name and check cache entries, which are verified further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv64(u64);

impl Fnv64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    pub fn new() -> Self {
        Fnv64(Self::OFFSET_BASIS)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(Self::PRIME);
        }
        self.0 = h;
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv64 {
    fn default() -> Self {
        Self::new()
    }
}

/// Cheap, stable fingerprint of a model file: size + first 4 MiB + last 4 MiB, hashed with Fnv64.
///
/// Hashing a multi-gigabyte model in full would cost seconds at every start. The GGUF header and
/// metadata sit at the start and the size changes with almost any edit, so this is enough to tell
/// models apart.
pub fn model_fingerprint(path: &Path) -> io::Result<u64> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut hasher = Fnv64::new();
    hasher.write(&len.to_le_bytes());
    let mut buf = vec![0u8; 64 * 1024];
    if len <= 2 * FINGERPRINT_SPAN {
        // Small files are hashed whole; the two spans would overlap anyway.
        hash_span(&mut file, len, &mut hasher, &mut buf)?;
    } else {
        hash_span(&mut file, FINGERPRINT_SPAN, &mut hasher, &mut buf)?;
        file.seek(SeekFrom::Start(len - FINGERPRINT_SPAN))?;
        hash_span(&mut file, FINGERPRINT_SPAN, &mut hasher, &mut buf)?;
    }
    Ok(hasher.finish())
}

/// Feeds exactly `n` bytes from the reader's position into the hasher.
fn hash_span(file: &mut File, n: u64, hasher: &mut Fnv64, buf: &mut [u8]) -> io::Result<()> {
    let mut left = n;
    while left > 0 {
        let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        let chunk = &mut buf[..want];
        // A file that shrinks under us fails here instead of giving a silently different hash.
        file.read_exact(chunk)?;
        hasher.write(chunk);
        left -= want as u64;
    }
    Ok(())
}

/// Key of a prefix: Fnv64 over the model fingerprint (le bytes) and the token ids (i32 le bytes).
pub fn prefix_key(model_fp: u64, tokens: &[i32]) -> u64 {
    let mut hasher = Fnv64::new();
    hasher.write(&model_fp.to_le_bytes());
    for t in tokens {
        hasher.write(&t.to_le_bytes());
    }
    hasher.finish()
}

/// What an entry claims to hold; checked on load against what the caller expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryHeader {
    pub model_fp: u64,
    pub n_tokens: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum KvStoreError {
    #[error("kv cache io: {0}")]
    Io(#[from] io::Error),
    #[error("invalid kv cache file: {0}")]
    Invalid(String),
}

/// A directory of KV-cache entries with a size cap.
///
/// Several processes may share the directory: writes are atomic renames and eviction tolerates
/// files that vanish under it.
#[derive(Debug, Clone)]
pub struct KvStore {
    dir: PathBuf,
    cap_bytes: u64,
}

/// Makes scratch paths unique within this process.
static SCRATCH_COUNTER: AtomicU64 = AtomicU64::new(0);

impl KvStore {
    /// Does not touch the disk; the directory is created by the first save.
    pub fn new(dir: PathBuf, cap_bytes: u64) -> Self {
        KvStore { dir, cap_bytes }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the entry for `key`: `<dir>/<key as 16 lowercase hex>.kv`.
    pub fn path_of(&self, key: u64) -> PathBuf {
        self.dir.join(format!("{key:016x}.{ENTRY_EXT}"))
    }

    /// A scratch path inside the directory for llama.cpp to write or read its own state file.
    ///
    /// The pid and a counter make it unique per call. Callers delete it when done; leftovers are
    /// swept by eviction once they are stale.
    pub fn scratch_path(&self) -> PathBuf {
        let n = SCRATCH_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join(format!("{TMP_MARKER}{}-{n}.seq", std::process::id()))
    }

    /// Writes an entry atomically, then evicts least recently used entries down to the cap.
    ///
    /// The entry just written is never evicted, even when it alone is over the cap. Returns the
    /// bytes written.
    pub fn save(
        &self,
        key: u64,
        header: &EntryHeader,
        payload: &[u8],
    ) -> Result<u64, KvStoreError> {
        fs::create_dir_all(&self.dir)?;
        let path = self.path_of(key);
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(format!("{TMP_MARKER}{}", std::process::id()));
        let tmp = PathBuf::from(tmp_name);

        let head = encode_header(header, payload);
        let written = write_file(&tmp, &head, payload).and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        self.evict(&path);
        Ok((HEADER_LEN + payload.len()) as u64)
    }

    /// Reads and verifies an entry; `Ok(None)` when there is none.
    ///
    /// A corrupt, truncated or mismatched file is deleted, logged and answered with
    /// [`KvStoreError::Invalid`]. A good entry gets its mtime set to now, which marks the use for
    /// eviction.
    pub fn load(&self, key: u64, expect: &EntryHeader) -> Result<Option<Vec<u8>>, KvStoreError> {
        let path = self.path_of(key);
        // Only a regular file is opened: a FIFO or device in its place would block or never end.
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                tracing::warn!(path = %path.display(), "discarding a kv cache entry that is not a regular file");
                self.remove_path(&path);
                return Err(KvStoreError::Invalid("not a regular file".into()));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        match read_entry(&mut file, Some(expect)) {
            Ok((_, payload)) => {
                touch(&file, &path);
                Ok(Some(payload))
            }
            Err(ReadError::Io(e)) => Err(e.into()),
            Err(ReadError::Invalid(reason)) => {
                drop(file);
                tracing::warn!(path = %path.display(), %reason, "discarding invalid kv cache file");
                self.remove_path(&path);
                Err(KvStoreError::Invalid(reason))
            }
        }
    }

    /// Deletes the entry; a missing entry is fine.
    pub fn remove(&self, key: u64) {
        self.remove_path(&self.path_of(key));
    }

    /// Total bytes of `*.kv` entries; 0 when the directory does not exist.
    pub fn total_bytes(&self) -> u64 {
        self.scan().entries.iter().map(|e| e.len).sum()
    }

    fn remove_path(&self, path: &Path) {
        if let Err(e) = fs::remove_file(path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::debug!(path = %path.display(), error = %e, "could not delete kv cache file");
        }
    }

    /// Deletes the oldest entries (by mtime) until the total is within the cap, sparing `keep`.
    /// Stale temporary files go too.
    fn evict(&self, keep: &Path) {
        let Scan {
            mut entries,
            stale_tmp,
        } = self.scan();
        for path in stale_tmp {
            self.remove_path(&path);
        }
        let mut total: u64 = entries.iter().map(|e| e.len).sum();
        if total <= self.cap_bytes {
            return;
        }
        // Oldest first; the path breaks ties so the order does not depend on the directory's.
        entries.sort_by(|a, b| a.mtime.cmp(&b.mtime).then_with(|| a.path.cmp(&b.path)));
        for entry in entries {
            if total <= self.cap_bytes {
                break;
            }
            if entry.path == keep {
                continue;
            }
            match fs::remove_file(&entry.path) {
                Ok(()) => {
                    tracing::debug!(path = %entry.path.display(), bytes = entry.len, "evicted kv cache entry");
                    total -= entry.len;
                }
                // Another process evicted it first; it no longer counts.
                Err(e) if e.kind() == io::ErrorKind::NotFound => total -= entry.len,
                Err(e) => {
                    tracing::debug!(path = %entry.path.display(), error = %e, "could not evict kv cache entry");
                }
            }
        }
    }

    /// Lists the entries and the stale temporary files; unreadable items are skipped.
    fn scan(&self) -> Scan {
        let mut scan = Scan {
            entries: Vec::new(),
            stale_tmp: Vec::new(),
        };
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return scan;
        };
        let now = SystemTime::now();
        for item in dir.flatten() {
            let Ok(meta) = item.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let path = item.path();
            let name = item.file_name();
            let name = name.to_string_lossy();
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            if name.contains(TMP_MARKER) {
                // A clock in the future counts as fresh.
                let age = now.duration_since(mtime).unwrap_or(Duration::ZERO);
                if age > STALE_TMP_AGE {
                    scan.stale_tmp.push(path);
                }
            } else if path.extension().is_some_and(|ext| ext == ENTRY_EXT) {
                scan.entries.push(Entry {
                    path,
                    len: meta.len(),
                    mtime,
                });
            }
        }
        scan
    }
}

struct Entry {
    path: PathBuf,
    len: u64,
    mtime: SystemTime,
}

struct Scan {
    entries: Vec<Entry>,
    stale_tmp: Vec<PathBuf>,
}

/// Why a read failed: the disk (kept) or the content (deleted).
enum ReadError {
    Io(io::Error),
    Invalid(String),
}

/// The checksum of an entry: the header fields after the magic, then the payload.
fn checksum(model_fp: u64, n_tokens: u32, payload_len: u64, payload: &[u8]) -> u64 {
    let mut h = Fnv64::new();
    h.write(&FORMAT_VERSION.to_le_bytes());
    h.write(&model_fp.to_le_bytes());
    h.write(&n_tokens.to_le_bytes());
    h.write(&payload_len.to_le_bytes());
    h.write(payload);
    h.finish()
}

fn encode_header(header: &EntryHeader, payload: &[u8]) -> [u8; HEADER_LEN] {
    let sum = checksum(
        header.model_fp,
        header.n_tokens,
        payload.len() as u64,
        payload,
    );
    let mut out = [0u8; HEADER_LEN];
    let fields: [&[u8]; 6] = [
        MAGIC,
        &FORMAT_VERSION.to_le_bytes(),
        &header.model_fp.to_le_bytes(),
        &header.n_tokens.to_le_bytes(),
        &(payload.len() as u64).to_le_bytes(),
        &sum.to_le_bytes(),
    ];
    let mut at = 0;
    for field in fields {
        out[at..at + field.len()].copy_from_slice(field);
        at += field.len();
    }
    out
}

/// Writes a fresh file. No fsync: a file cut short by a crash fails the checks on load.
fn write_file(path: &Path, head: &[u8], payload: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(head)?;
    file.write_all(payload)?;
    Ok(())
}

/// Reads the header, checks it (against `expect`, when given) before reading the payload, then
/// checks the payload.
fn read_entry(
    file: &mut File,
    expect: Option<&EntryHeader>,
) -> Result<(EntryHeader, Vec<u8>), ReadError> {
    let invalid = |s: String| Err(ReadError::Invalid(s));
    let file_len = file.metadata().map_err(ReadError::Io)?.len();
    if file_len < HEADER_LEN as u64 {
        return invalid(format!(
            "truncated: {file_len} bytes, header needs {HEADER_LEN}"
        ));
    }
    let mut head = [0u8; HEADER_LEN];
    file.read_exact(&mut head).map_err(eof_is_invalid)?;

    let mut at = 0;
    let mut take = |n: usize| {
        let field = &head[at..at + n];
        at += n;
        field
    };
    let magic = take(8);
    if magic != MAGIC {
        return invalid("wrong magic".to_owned());
    }
    let version = u32::from_le_bytes(take(4).try_into().unwrap());
    let model_fp = u64::from_le_bytes(take(8).try_into().unwrap());
    let n_tokens = u32::from_le_bytes(take(4).try_into().unwrap());
    let payload_len = u64::from_le_bytes(take(8).try_into().unwrap());
    let sum = u64::from_le_bytes(take(8).try_into().unwrap());

    if version != FORMAT_VERSION {
        return invalid(format!(
            "format version {version}, expected {FORMAT_VERSION}"
        ));
    }
    // The length check comes before any allocation, so a corrupt length cannot ask for huge memory.
    let expected_len = (HEADER_LEN as u64).checked_add(payload_len);
    if expected_len != Some(file_len) {
        return invalid(format!(
            "length {file_len} does not match payload length {payload_len}"
        ));
    }
    if let Some(expect) = expect {
        if model_fp != expect.model_fp {
            return invalid(format!(
                "model fingerprint {model_fp:016x}, expected {:016x}",
                expect.model_fp
            ));
        }
        if n_tokens != expect.n_tokens {
            return invalid(format!("{n_tokens} tokens, expected {}", expect.n_tokens));
        }
    }
    let Ok(payload_len) = usize::try_from(payload_len) else {
        return invalid(format!(
            "payload length {payload_len} does not fit in memory"
        ));
    };
    let mut payload = vec![0u8; payload_len];
    file.read_exact(&mut payload).map_err(eof_is_invalid)?;
    if checksum(model_fp, n_tokens, payload_len as u64, &payload) != sum {
        return invalid("checksum mismatch".to_owned());
    }
    Ok((EntryHeader { model_fp, n_tokens }, payload))
}

/// Checks a whole entry file (header, length, checksum) without a cache around it; what it
/// claims to hold when it is sound. For tests and tools: a process killed while writing must
/// never leave an entry that passes for sound.
pub fn verify(path: &Path) -> Result<EntryHeader, KvStoreError> {
    if !fs::symlink_metadata(path)?.is_file() {
        return Err(KvStoreError::Invalid("not a regular file".into()));
    }
    let mut file = File::open(path)?;
    match read_entry(&mut file, None) {
        Ok((header, _)) => Ok(header),
        Err(ReadError::Io(e)) => Err(e.into()),
        Err(ReadError::Invalid(r)) => Err(KvStoreError::Invalid(r)),
    }
}

/// A file that ends early (cut after the length check) is bad content, not a disk failure.
fn eof_is_invalid(e: io::Error) -> ReadError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        ReadError::Invalid("truncated while reading".to_owned())
    } else {
        ReadError::Io(e)
    }
}

/// Sets the mtime to now so eviction sees the use. Failure only costs LRU accuracy.
fn touch(file: &File, path: &Path) {
    let now = SystemTime::now();
    // Some platforms need write access to change times; retry through a writable handle.
    let result = file.set_modified(now).or_else(|_| {
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(now))
    });
    if let Err(e) = result {
        tracing::debug!(path = %path.display(), error = %e, "could not refresh kv cache entry time");
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
