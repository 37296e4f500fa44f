//! Loading: llama.cpp's backend (once per process), the model file (checked before llama.cpp sees
//! it, so the user gets a precise message), its FIM tokens, and context parameters.

use std::io::Read;
use std::num::NonZeroU32;
use std::sync::OnceLock;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;

use super::fim;
use super::{EngineConfig, EngineError, ModelInfo};

/// llama.cpp's backend may be initialised once per process.
pub(super) fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| EngineError::Load(format!("cannot initialise llama.cpp: {e}")))
}

/// Checks the file before llama.cpp sees it, so the user gets a precise message.
pub(super) fn check_model_file(path: &std::path::Path) -> Result<(), EngineError> {
    let shown = path.display();
    let mut f = std::fs::File::open(path).map_err(|e| {
        EngineError::Load(format!(
            "cannot open model {shown}: {e} (run scripts/setup.sh to fetch the default models, or pass --model)"
        ))
    })?;
    let mut magic = [0u8; 4];
    if f.read_exact(&mut magic).is_err() || &magic != b"GGUF" {
        return Err(EngineError::Load(format!(
            "{shown} is not a GGUF model file"
        )));
    }
    Ok(())
}

/// Loads the target model and reads its FIM tokens.
pub(super) fn load_target(config: &EngineConfig) -> Result<(LlamaModel, ModelInfo), EngineError> {
    check_model_file(&config.model)?;
    let backend = backend()?;
    let name = config.model.file_name().map_or_else(
        || config.model.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut params = LlamaModelParams::default().with_n_gpu_layers(config.gpu_layers);
    if let Some(progress) = config.progress.clone() {
        params = params.with_progress_callback(move |p| {
            progress(p);
            true
        });
    }
    let model = LlamaModel::load_from_file(backend, &config.model, &params).map_err(|e| {
        EngineError::Load(format!(
            "cannot load model {}: {e} (corrupt file or unsupported architecture)",
            config.model.display()
        ))
    })?;
    let vocab = model.vocab();
    let texts: Vec<(i32, String)> = vocab
        .tokens()
        .filter_map(|t| {
            let text = vocab.text(t)?.to_str().ok()?;
            fim::looks_special(text).then(|| (t.0, text.to_string()))
        })
        .collect();
    let fim = fim::detect(texts.iter().map(|(i, t)| (*i, t.as_str())), &name)
        .map_err(|e| EngineError::Load(e.to_string()))?;
    let info = ModelInfo {
        path: config.model.clone(),
        name,
        fim,
        n_ctx: config.ctx_size,
        n_ctx_train: model.n_ctx_train(),
        n_vocab: model.n_vocab(),
        draft: None,
        batch_probe: None,
    };
    Ok((model, info))
}

/// Context parameters for `config`, with or without flash attention.
pub(super) fn context_params(config: &EngineConfig, flash: bool) -> LlamaContextParams {
    let threads = i32::try_from(config.threads.max(1)).unwrap_or(1);
    let p = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(config.ctx_size.max(256)))
        .with_n_batch(512)
        .with_n_ubatch(512)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        // Sequence 1 parks the KV of chunks being moved while a changed chunk is re-evaluated;
        // moving cells between sequences needs one unified cache.
        .with_n_seq_max(2)
        .with_kv_unified(true);
    // A flash-attention pass over one token reduces in another order than over several, so
    // speculation (which must match plain decoding exactly) runs without it.
    if flash {
        p
    } else {
        p.with_flash_attention_policy(llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED)
    }
}
