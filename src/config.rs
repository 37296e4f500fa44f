//! Settings shared by the command line, the language server and the benchmark, and where the
//! default models live.
//!
//! Architecture Invariant: plain data and paths; no model, no LSP types.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::prompt::Budget;

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

/// How speculative decoding is used. Every mode returns exactly the plain greedy text: verified
/// tokens are decided on logits that the engine checks, at start-up, to be bit-identical to
/// one-token passes (see `BatchProbe`).
///
/// `auto`, the default, measures at start-up whether a three-token pass costs little enough
/// for drafting to pay; where it does not (a 2-core CPU: about 2 one-token passes) it decodes
/// plainly, with flash attention, and does not load the draft model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Speculation {
    Off,
    Lookup,
    Draft,
    #[default]
    Auto,
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

#[cfg(test)]
mod tests {
    use super::*;

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
