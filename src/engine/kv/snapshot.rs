//! Repo-prefix snapshots: the KV of a prompt prefix saved to the [`KvStore`] and loaded back, so
//! that a restarted engine does not evaluate the repo context again.
//!
//! llama.cpp saves and loads sequence state only through files of its own format, so each
//! transfer goes through a scratch file inside the store's directory: the store then wraps those
//! bytes in its own header and checksum, and only checked bytes ever reach llama.cpp.

use llama_cpp_2::token::LlamaToken;

use super::store::{EntryHeader, KvStore, prefix_key};
use super::{KvSeq, PROMPT_CHUNK, as_ids, common_prefix};

/// Where prefix snapshots persist, and the model they belong to.
#[derive(Clone)]
pub(in crate::engine) struct Store {
    pub kv: KvStore,
    pub model_fp: u64,
}

impl KvSeq<'_> {
    /// Loads a saved snapshot of `tokens` (a repo prefix) when the cache does not hold most of
    /// it already; returns how many tokens are now cached from it. A bad snapshot is deleted and
    /// the prefix evaluated instead.
    pub fn restore(&mut self, store: &Store, tokens: &[LlamaToken]) -> Option<usize> {
        if tokens.len() - common_prefix(&self.cached, tokens) <= PROMPT_CHUNK {
            return None;
        }
        let key = prefix_key(store.model_fp, &as_ids(tokens));
        let header = EntryHeader {
            model_fp: store.model_fp,
            n_tokens: tokens.len() as u32,
        };
        let payload = match store.kv.load(key, &header) {
            Ok(Some(p)) => p,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!("KV snapshot not used: {e}");
                return None;
            }
        };
        let scratch = store.kv.scratch_path();
        let written = std::fs::write(&scratch, &payload);
        self.reset();
        let loaded = written.map_err(|e| e.to_string()).and_then(|()| {
            self.ctx
                .state_seq_load_file(&scratch, 0, tokens.len() + 1)
                .map_err(|e| e.to_string())
        });
        let _ = std::fs::remove_file(&scratch);
        match loaded {
            Ok((saved, _)) if saved == tokens => {
                self.cached = saved;
                tracing::info!(tokens = tokens.len(), "KV snapshot loaded");
                Some(tokens.len())
            }
            other => {
                let why = match other {
                    Ok(_) => "its tokens differ from the prefix".to_string(),
                    Err(e) => e,
                };
                tracing::warn!("KV snapshot rejected ({why}); re-evaluating");
                self.reset();
                store.kv.remove(key);
                None
            }
        }
    }

    /// Saves the first `n` cached tokens (a repo prefix) as a snapshot, unless one exists.
    pub fn snapshot(&mut self, store: &Store, n: usize) {
        let n = n.min(self.cached.len());
        let prefix = self.cached[..n].to_vec();
        let key = prefix_key(store.model_fp, &as_ids(&prefix));
        if store.kv.path_of(key).exists() {
            return;
        }
        let header = EntryHeader {
            model_fp: store.model_fp,
            n_tokens: n as u32,
        };
        let scratch = store.kv.scratch_path();
        if let Some(dir) = scratch.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // llama.cpp saves whole sequences: a prefix of the cache goes through sequence 1.
        let seq = if n == self.cached.len() {
            0
        } else if self
            .ctx
            .kv_cache_seq_cp(0, 1, Some(0), Some(n as u32))
            .is_ok()
        {
            1
        } else {
            return;
        };
        let saved = self.ctx.state_seq_save_file(&scratch, seq, &prefix);
        if seq == 1 {
            self.drop_parked();
        }
        let result = saved
            .map_err(|e| e.to_string())
            .and_then(|_| std::fs::read(&scratch).map_err(|e| e.to_string()))
            .and_then(|bytes| {
                store
                    .kv
                    .save(key, &header, &bytes)
                    .map_err(|e| e.to_string())
            });
        let _ = std::fs::remove_file(&scratch);
        match result {
            Ok(n) => tracing::info!(tokens = header.n_tokens, bytes = n, "KV snapshot saved"),
            Err(e) => tracing::warn!("cannot save a KV snapshot: {e}"),
        }
    }
}
