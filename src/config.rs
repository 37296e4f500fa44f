//! Settings shared by the command line, the language server and the benchmark, and where the
//! default models live.
//!
//! Architecture Invariant: plain data and paths; no model, no LSP types.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::prompt::Budget;
// Speculation modes live with speculative decoding, below both config and the engine.
pub use crate::speculative::Speculation;

/// The default target model (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M), fetched by `scripts/fetch-models.sh`.
pub const TARGET_MODEL_FILE: &str = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";
/// The default draft model (Qwen2.5-Coder-0.5B-Instruct, Q4_K_M).
pub const DRAFT_MODEL_FILE: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";

/// `${XDG_CACHE_HOME:-~/.cache}/inkling`.
pub fn cache_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("inkling");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("inkling")
}

pub fn models_dir() -> PathBuf {
    cache_dir().join("models")
}

/// `$INKLING_KV_DIR`, else `${XDG_CACHE_HOME:-~/.cache}/inkling/kv`.
pub fn default_kv_dir() -> PathBuf {
    match std::env::var_os("INKLING_KV_DIR").filter(|x| !x.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => cache_dir().join("kv"),
    }
}

pub fn default_model() -> PathBuf {
    models_dir().join(TARGET_MODEL_FILE)
}

pub fn default_draft_model() -> PathBuf {
    models_dir().join(DRAFT_MODEL_FILE)
}

/// User settings; in LSP they come from `initializationOptions` and `workspace/didChangeConfiguration`
/// with the same camelCase keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    pub model: Option<PathBuf>,
    pub draft_model: Option<PathBuf>,
    pub threads: Option<usize>,
    pub context_size: u32,
    pub max_tokens: usize,
    pub enable: bool,
    /// Delay the server waits for more keystrokes before asking the model.
    pub debounce_ms: u64,
    pub speculation: Speculation,
    pub disabled_languages: Vec<String>,
    pub prefix_tokens: usize,
    pub suffix_tokens: usize,
    /// Once a suggestion spans lines, stop it after this many milliseconds.
    pub time_cap_ms: u64,
    pub gpu_layers: Option<u32>,
    /// Use the syntax tree (tree-sitter) to shape and trim suggestions.
    pub syntax: bool,
    /// Token budget of the repo context (other files of the workspace); 0 turns it off.
    pub context_tokens: usize,
    /// Keep KV snapshots of repo-context prefixes on disk, so a restart is warm.
    pub persist_kv: bool,
    /// Where the snapshots go [default: `$INKLING_KV_DIR`, else `${XDG_CACHE_HOME:-~/.cache}/inkling/kv`].
    pub kv_dir: Option<PathBuf>,
    /// Size cap of the snapshot directory, in MiB; least recently used go first.
    pub kv_cache_mb: u64,
    /// llama.cpp's flash attention for plain decoding (speculation runs without it, so that
    /// batched verification rounds like one-token passes; `auto` takes it back when it decodes
    /// plainly).
    pub flash_attention: bool,
    /// Answer a request early with what the model has written so far (whole tokens) and keep
    /// writing the same suggestion; typing through it, or asking again, gets the longer text.
    pub streaming: bool,
    /// With `streaming`: answer at most this long after a keystroke with whatever the model has
    /// (sooner when it has finished a word).
    pub answer_deadline_ms: u64,
    /// Evaluate the prompt at the cursor (and at a file's last known cursor on open) in idle
    /// engine time, so the first keystroke there costs its own tokens only.
    pub warm_cursor: bool,
}

impl Default for Settings {
    fn default() -> Self {
        let b = Budget::default();
        Settings {
            model: None,
            draft_model: None,
            threads: None,
            context_size: 4096,
            max_tokens: 64,
            enable: true,
            debounce_ms: 30,
            speculation: Speculation::default(),
            disabled_languages: Vec::new(),
            prefix_tokens: b.prefix_tokens,
            suffix_tokens: b.suffix_tokens,
            time_cap_ms: 2000,
            gpu_layers: None,
            syntax: true,
            context_tokens: 1024,
            persist_kv: true,
            kv_dir: None,
            kv_cache_mb: 1024,
            flash_attention: true,
            streaming: true,
            answer_deadline_ms: 80,
            warm_cursor: true,
        }
    }
}

impl Settings {
    pub fn model_path(&self) -> PathBuf {
        self.model.clone().unwrap_or_else(default_model)
    }

    pub fn budget(&self) -> Budget {
        Budget {
            prefix_tokens: self.prefix_tokens,
            suffix_tokens: self.suffix_tokens,
            ..Budget::default()
        }
    }

    /// The draft model to load: the one named, else the default one in auto mode when it is there.
    pub fn draft_path(&self) -> Option<PathBuf> {
        match (&self.draft_model, self.speculation) {
            (Some(p), Speculation::Auto | Speculation::Draft) => Some(p.clone()),
            (None, Speculation::Draft) => Some(default_draft_model()),
            (None, Speculation::Auto) => {
                let d = default_draft_model();
                (d.exists() && self.model.is_none()).then_some(d)
            }
            _ => None,
        }
    }

    /// The KV snapshot directory, or `None` when snapshots are off.
    pub fn kv_dir(&self) -> Option<PathBuf> {
        if !self.persist_kv {
            return None;
        }
        self.kv_dir.clone().or_else(|| Some(default_kv_dir()))
    }

    pub fn engine_config(&self) -> crate::engine::EngineConfig {
        let mut c = crate::engine::EngineConfig::new(self.model_path());
        c.kv_dir = self.kv_dir();
        c.kv_cap_bytes = self.kv_cache_mb.saturating_mul(1 << 20);
        c.draft_model = self.draft_path();
        c.flash_attention = self.flash_attention;
        c.speculation = self.speculation;
        if let Some(t) = self.threads {
            c.threads = t.max(1);
        }
        c.ctx_size = self.context_size;
        if let Some(g) = self.gpu_layers {
            c.gpu_layers = g;
        }
        c
    }

    /// Loading a different model or context needs a new engine; other settings apply at once.
    pub fn needs_reload(&self, other: &Settings) -> bool {
        self.model_path() != other.model_path()
            || self.threads != other.threads
            || self.context_size != other.context_size
            || self.gpu_layers != other.gpu_layers
            || self.draft_path() != other.draft_path()
            || self.kv_dir() != other.kv_dir()
            || self.kv_cache_mb != other.kv_cache_mb
            || self.flash_attention != other.flash_attention
            || self.speculation != other.speculation
    }
}

/// Largest context a setting may ask for: the default models were trained on 32k tokens, and
/// the KV cache of larger contexts takes gigabytes.
pub const MAX_CONTEXT_SIZE: u32 = 32_768;
/// Smallest context llama.cpp is given.
pub const MIN_CONTEXT_SIZE: u32 = 256;

impl Settings {
    /// Applies `changes` (a JSON object with camelCase keys) key by key: a key whose value does
    /// not fit its setting is refused on its own, and the others are taken. Returns what was
    /// refused, one line per key. Unknown keys are ignored (clients send their own, too).
    pub fn merged(
        &self,
        changes: &serde_json::Map<String, serde_json::Value>,
    ) -> (Settings, Vec<String>) {
        let mut current = serde_json::to_value(self).unwrap_or_default();
        let known: Vec<String> = current
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        let mut refused = Vec::new();
        for (key, value) in changes {
            if !known.contains(key) {
                tracing::info!(key, "unknown setting ignored");
                continue;
            }
            let mut candidate = current.clone();
            candidate[key] = value.clone();
            match serde_json::from_value::<Settings>(candidate.clone()) {
                Ok(_) => current = candidate,
                Err(e) => refused.push(format!("{key}: {e}")),
            }
        }
        let settings = serde_json::from_value(current).unwrap_or_else(|_| self.clone());
        (settings, refused)
    }

    /// The settings with absurd values brought into range, and one line per value changed.
    pub fn clamped(mut self) -> (Settings, Vec<String>) {
        let mut notes = Vec::new();
        let cores = crate::engine::default_threads();
        let mut clamp = |name: &str, v: &mut usize, lo: usize, hi: usize| {
            let c = (*v).clamp(lo, hi);
            if c != *v {
                notes.push(format!(
                    "{name} {} is out of range {lo}..={hi}; using {c}",
                    *v
                ));
                *v = c;
            }
        };
        let mut ctx = self.context_size as usize;
        clamp(
            "contextSize",
            &mut ctx,
            MIN_CONTEXT_SIZE as usize,
            MAX_CONTEXT_SIZE as usize,
        );
        self.context_size = u32::try_from(ctx).unwrap_or(MAX_CONTEXT_SIZE);
        if let Some(t) = self.threads.as_mut() {
            clamp("threads", t, 1, cores.max(1) * 4);
        }
        clamp("maxTokens", &mut self.max_tokens, 1, 1024);
        clamp("prefixTokens", &mut self.prefix_tokens, 0, 8192);
        clamp("suffixTokens", &mut self.suffix_tokens, 0, 4096);
        clamp("contextTokens", &mut self.context_tokens, 0, 16_384);
        // The prompt and the suggestion must fit the context.
        let room = ctx.saturating_sub(self.max_tokens + 64);
        let wanted = self.prefix_tokens + self.suffix_tokens + self.context_tokens;
        if wanted > room {
            let scale = room as f64 / wanted as f64;
            let (p, s, c) = (self.prefix_tokens, self.suffix_tokens, self.context_tokens);
            self.prefix_tokens = (p as f64 * scale) as usize;
            self.suffix_tokens = (s as f64 * scale) as usize;
            self.context_tokens = (c as f64 * scale) as usize;
            notes.push(format!(
                "prefixTokens {p} + suffixTokens {s} + contextTokens {c} do not fit contextSize {ctx} with maxTokens {}; using {}, {} and {}",
                self.max_tokens, self.prefix_tokens, self.suffix_tokens, self.context_tokens
            ));
        }
        let mut ms = |name: &str, v: &mut u64, lo: u64, hi: u64| {
            let c = (*v).clamp(lo, hi);
            if c != *v {
                notes.push(format!(
                    "{name} {} is out of range {lo}..={hi}; using {c}",
                    *v
                ));
                *v = c;
            }
        };
        ms("debounceMs", &mut self.debounce_ms, 0, 5_000);
        ms("timeCapMs", &mut self.time_cap_ms, 1, 600_000);
        ms("answerDeadlineMs", &mut self.answer_deadline_ms, 0, 10_000);
        (self, notes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bad_key_does_not_discard_the_others() {
        let changes = serde_json::json!({"model": "/m.gguf", "maxTokens": "many", "contextSize": -1, "speculation": "off", "editorOnly": true});
        let (s, refused) = Settings::default().merged(changes.as_object().unwrap());
        assert_eq!(s.model_path(), PathBuf::from("/m.gguf"));
        assert_eq!(s.speculation, Speculation::Off);
        assert_eq!(s.max_tokens, Settings::default().max_tokens);
        assert_eq!(s.context_size, Settings::default().context_size);
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(refused[0].starts_with("contextSize") || refused[1].starts_with("contextSize"));
        assert!(refused.iter().any(|r| r.starts_with("maxTokens")));
    }

    #[test]
    fn absurd_values_are_clamped_with_a_note() {
        let s = Settings {
            context_size: 4_000_000_000,
            threads: Some(100_000),
            max_tokens: 0,
            time_cap_ms: 0,
            ..Settings::default()
        };
        let (c, notes) = s.clamped();
        assert_eq!(c.context_size, MAX_CONTEXT_SIZE);
        assert!(c.threads.unwrap() <= crate::engine::default_threads() * 4);
        assert_eq!(c.max_tokens, 1);
        assert_eq!(c.time_cap_ms, 1);
        assert!(notes.len() >= 4, "{notes:?}");
        // A small context shrinks the budgets to fit.
        let (small, notes) = Settings {
            context_size: 512,
            ..Settings::default()
        }
        .clamped();
        assert!(
            small.prefix_tokens + small.suffix_tokens + small.context_tokens + small.max_tokens
                <= 512
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
        // The defaults are in range.
        assert!(Settings::default().clamped().1.is_empty());
    }

    #[test]
    fn settings_from_camel_case_json() {
        let s: Settings = serde_json::from_str(
            r#"{"model": "/m.gguf", "maxTokens": 12, "disabledLanguages": ["markdown"], "speculation": "off"}"#,
        )
        .unwrap();
        assert_eq!(s.model_path(), PathBuf::from("/m.gguf"));
        assert_eq!(s.max_tokens, 12);
        assert_eq!(s.speculation, Speculation::Off);
        assert_eq!(s.context_size, Settings::default().context_size);
    }
}
