//! Where a file lives and what the model is told about it: the workspace's name and the file's
//! path relative to its root. Both are inside the prompt's stable prefix, and therefore inside
//! the KV snapshot key, so every door (`inkling complete`, the language server, the benchmark)
//! uses this one rule: the same file gets the same prefix and the same snapshot.
//!
//! The rule: a workspace is a directory (the editor's root, `--repo`, the git root above a file,
//! a benchmark repository), named after that directory as it is on disk (canonical, so `.` and
//! symlinked paths give the real name). A file inside it is named by its relative path with `/`
//! separators; a file outside any workspace belongs to the git root above it, else to its own
//! directory.
//!
//! Architecture Invariant: paths and names only; no LSP types, no model.

use std::path::{Component, Path, PathBuf};

/// A workspace: its root directory, when it has one, and the name the model sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    root: Option<PathBuf>,
    name: String,
}

/// The name of a workspace whose directory has none (the file system root).
const UNNAMED: &str = "workspace";

impl Workspace {
    /// The workspace rooted at `dir`.
    pub fn at(dir: &Path) -> Workspace {
        let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let name = root
            .file_name()
            .map_or_else(|| UNNAMED.to_string(), |n| n.to_string_lossy().into_owned());
        Workspace {
            root: Some(root),
            name,
        }
    }

    /// A workspace known by name only (benchmark tasks without their repository on disk).
    pub fn named(name: &str) -> Workspace {
        Workspace {
            root: None,
            name: name.to_string(),
        }
    }

    /// The workspace of a file opened on its own: the git root above it, else its directory.
    pub fn containing(file: &Path) -> Workspace {
        let abs = absolute(file);
        match git_root(&abs) {
            Some(root) => Workspace::at(&root),
            None => Workspace::at(abs.parent().unwrap_or(Path::new("/"))),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// `file`'s path relative to the root (with `/` separators), when it is inside.
    pub fn relative(&self, file: &Path) -> Option<String> {
        let root = self.root.as_deref()?;
        let abs = absolute(file);
        let rel = abs.strip_prefix(root).ok()?;
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        (!parts.is_empty()).then(|| parts.join("/"))
    }

    /// The workspace and relative path under which `file` is shown to the model: this workspace
    /// when the file is inside it, else the workspace containing the file.
    pub fn locate(&self, file: &Path) -> (Workspace, String) {
        if let Some(rel) = self.relative(file) {
            return (self.clone(), rel);
        }
        let other = Workspace::containing(file);
        let rel = other.relative(file).unwrap_or_else(|| file_name(file));
        (other, rel)
    }
}

/// The nearest directory above `file` (absolute) with a `.git`.
pub fn git_root(file: &Path) -> Option<PathBuf> {
    absolute(file)
        .ancestors()
        .skip(1)
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// `path` made absolute and canonical where it exists; a file that does not exist (yet) keeps
/// its canonical directory and its own name, and `..` is resolved lexically.
fn absolute(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    match (out.parent(), out.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .map(|d| d.join(name))
            .unwrap_or(out.clone()),
        _ => out,
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway directory tree under the system temp dir.
    struct Tree(PathBuf);

    impl Tree {
        fn new(name: &str) -> Tree {
            let dir =
                std::env::temp_dir().join(format!("inkling-ws-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("proj/.git")).unwrap();
            std::fs::create_dir_all(dir.join("proj/src")).unwrap();
            std::fs::write(dir.join("proj/src/lib.rs"), "fn a() {}\n").unwrap();
            std::fs::create_dir_all(dir.join("loose")).unwrap();
            std::fs::write(dir.join("loose/notes.py"), "x = 1\n").unwrap();
            Tree(dir)
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn one_name_per_file_whichever_door() {
        let t = Tree::new("doors");
        let file = t.0.join("proj/src/lib.rs");
        // The server: the editor's root is the project.
        let editor = Workspace::at(&t.0.join("proj"));
        // The command line: the git root above the file, or `--repo` given as a relative path.
        let cli = Workspace::containing(&file);
        let flag = Workspace::at(&t.0.join("proj/src/.."));
        for ws in [&editor, &cli, &flag] {
            let (w, rel) = ws.locate(&file);
            assert_eq!((w.name(), rel.as_str()), ("proj", "src/lib.rs"));
        }
        assert_eq!(editor, cli);
        // The same file through a path with `..` in it.
        let (w, rel) = editor.locate(&t.0.join("proj/src/../src/lib.rs"));
        assert_eq!((w.name(), rel.as_str()), ("proj", "src/lib.rs"));
    }

    #[test]
    fn files_outside_the_workspace_belong_to_their_own() {
        let t = Tree::new("outside");
        let editor = Workspace::at(&t.0.join("proj"));
        let loose = t.0.join("loose/notes.py");
        let (w, rel) = editor.locate(&loose);
        assert_eq!((w.name(), rel.as_str()), ("loose", "notes.py"));
        assert_eq!(Workspace::containing(&loose).locate(&loose), (w, rel));
        // A file that does not exist yet (an unsaved buffer) is placed the same way.
        let (w, rel) = editor.locate(&t.0.join("proj/src/new.rs"));
        assert_eq!((w.name(), rel.as_str()), ("proj", "src/new.rs"));
    }

    #[test]
    fn named_workspaces_have_no_files() {
        let ws = Workspace::named("bench");
        assert_eq!(ws.name(), "bench");
        assert_eq!(ws.relative(Path::new("/x/y.rs")), None);
        assert_eq!(Workspace::at(Path::new("/")).name(), UNNAMED);
    }
}
